/**
 * The files of one unbilled-usage export and where they live: the "Microsoft side" storage
 * account, in the layout observed in real manifests (reference 3.2), e.g.
 *   unbilledusagefastpath/v1/202410080035/PartnerTenantId=<tid>/BillingMonth=202410/Currency=INR/
 *     Fragment=full/PartitionType=default/part-00000-<guid>.c000.json.gz
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Readable } from 'node:stream';
import {
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  type ContainerClient,
  type StorageSharedKeyCredential,
} from '@azure/storage-blob';
import type { BillingScenario } from './billingScenario';
import { deterministicAlphanumeric, deterministicUuid } from './deterministic';
import { gzipJsonLines, usageRows, type AttributeSet } from './usageData';

export const EXPORT_CONTAINER = 'unbilledusagefastpath';

export type BillingPeriod = 'current' | 'last';

export interface UnbilledUsageExportRequest {
  currencyCode: string;
  billingPeriod: BillingPeriod;
  attributeSet: AttributeSet;
}

export interface ExportFile {
  /** The manifest's blobs[].name: part-NNNNN-<guid>.c000.json.gz */
  name: string;
  /** The full blob name inside the container. */
  blobName: string;
  /** The whole file; for a filled file (fileSizeBytes) it is assembled from `parts` on each read. */
  readonly content: Buffer;
  readonly contentMD5: Buffer;
  /** content.length */
  readonly size: number;
  /**
   * The content as consecutive gzip members: just [content] for an ordinary file; a filled file's
   * parts share the export's filler block, so a large export costs little memory until uploaded.
   */
  readonly parts: readonly Buffer[];
}

export interface ExportPlan {
  /** YYYY-MM */
  billingMonth: string;
  /** The folder in the container holding the files, without a trailing slash. */
  directory: string;
  eTag: string;
  files: ExportFile[];
  totalBytes: number;
}

export interface ExportPlanOptions {
  request: UnbilledUsageExportRequest;
  scenario: Pick<BillingScenario, 'seed' | 'fileCount' | 'rowsPerFile'> & Partial<Pick<BillingScenario, 'fileSizeBytes'>>;
  partnerTenantId: string;
  /** When the export was requested: picks the billing month and names the snapshot folder. */
  requestedAt: Date;
}

/** Builds every file of the export in memory; names, bytes and eTag depend only on the inputs. */
export function planExport({ request, scenario, partnerTenantId, requestedAt }: ExportPlanOptions): ExportPlan {
  const { seed, fileCount, rowsPerFile } = scenario;
  const fileSizeBytes = scenario.fileSizeBytes ?? null;
  const { currencyCode, attributeSet } = request;
  const billingMonth = billingMonthOf(request.billingPeriod, requestedAt);
  const usageThrough = request.billingPeriod === 'current' ? monthToDateUsageThrough(requestedAt) : undefined;
  const rowsOf = (count: number, startIndex: number): Array<Record<string, unknown>> =>
    usageRows({ seed, billingMonth, currency: currencyCode, attributeSet, count, startIndex, partnerTenantId, ...(usageThrough ? { usageThrough } : {}) });
  const directory = [
    'v1',
    snapshotFolder(requestedAt),
    `PartnerTenantId=${partnerTenantId}`,
    `BillingMonth=${billingMonth.replace('-', '')}`,
    `Currency=${currencyCode}`,
    `Fragment=${attributeSet}`,
    'PartitionType=default',
  ].join('/');

  // The filler rows come after every file's own rows, so no row index is used twice.
  const filler =
    fileSizeBytes === null
      ? undefined
      : new Filler(fileSizeBytes, rowsOf(FILLER_SAMPLE_ROWS, fileCount * rowsPerFile), (count) => rowsOf(count, fileCount * rowsPerFile));

  const files = Array.from({ length: fileCount }, (_, index): ExportFile => {
    const startIndex = index * rowsPerFile;
    const rows = rowsOf(rowsPerFile, startIndex);
    const own = gzipJsonLines(rows);
    const name = `part-${String(index).padStart(5, '0')}-${deterministicUuid(seed, billingMonth, currencyCode, attributeSet, index)}.c000.json.gz`;
    return filledFile(name, `${directory}/${name}`, filler ? filler.fill(own) : [own]);
  });

  // The eTag names the data version; the size knob is part of it only when set, so defaults keep theirs.
  const eTagKey = fileSizeBytes === null ? [] : [fileSizeBytes];
  return {
    billingMonth,
    directory,
    eTag: deterministicAlphanumeric(17, 'eTag', seed, billingMonth, currencyCode, attributeSet, fileCount, rowsPerFile, ...eTagKey),
    files,
    totalBytes: files.reduce((sum, file) => sum + file.size, 0),
  };
}

/** Rows gzipped once to learn how many compressed bytes a filler row takes. */
const FILLER_SAMPLE_ROWS = 256;
/** The filler block's compressed size: an eighth of a file, between 4 KiB and 1 MiB. */
const FILLER_BLOCK_MIN_BYTES = 4 * 1024;
const FILLER_BLOCK_MAX_BYTES = 1024 * 1024;
/** zlib's fastest level, so a large export is produced in moments; still a realistic ratio. */
const FILLER_GZIP_LEVEL = 1;

/**
 * Fills files up to about `targetBytes`: after a file's own gzip member come whole copies of one
 * export-wide block (a gzip member of `blockRows` rows), then a member of the block's first rows
 * that takes the file to within about a row of the target. Depends only on its inputs.
 */
class Filler {
  private readonly block: Buffer;
  private readonly blockRows: ReadonlyArray<Record<string, unknown>>;
  private readonly tails = new Map<number, Buffer>();

  constructor(
    private readonly targetBytes: number,
    sample: ReadonlyArray<Record<string, unknown>>,
    rows: (count: number) => ReadonlyArray<Record<string, unknown>>,
  ) {
    const bytesPerRow = gzipJsonLines(sample, FILLER_GZIP_LEVEL).length / sample.length;
    const blockBytes = Math.min(FILLER_BLOCK_MAX_BYTES, Math.max(FILLER_BLOCK_MIN_BYTES, Math.floor(targetBytes / 8)));
    const count = Math.max(1, Math.round(blockBytes / bytesPerRow));
    this.blockRows = count <= sample.length ? sample.slice(0, count) : rows(count);
    this.block = gzipJsonLines(this.blockRows, FILLER_GZIP_LEVEL);
  }

  fill(own: Buffer): Buffer[] {
    const parts = [own];
    let missing = this.targetBytes - own.length;
    for (; missing >= this.block.length; missing -= this.block.length) parts.push(this.block);
    const tailRows = Math.min(this.blockRows.length - 1, Math.floor((missing / this.block.length) * this.blockRows.length));
    if (tailRows > 0) parts.push(this.tail(tailRows));
    return parts;
  }

  private tail(rows: number): Buffer {
    let tail = this.tails.get(rows);
    if (!tail) {
      tail = gzipJsonLines(this.blockRows.slice(0, rows), FILLER_GZIP_LEVEL);
      this.tails.set(rows, tail);
    }
    return tail;
  }
}

/** An export file over its parts; the whole content and its MD5 are computed only when read. */
function filledFile(name: string, blobName: string, parts: readonly Buffer[]): ExportFile {
  let md5: Buffer | undefined;
  return {
    name,
    blobName,
    parts,
    size: parts.reduce((sum, part) => sum + part.length, 0),
    get content() {
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    get contentMD5() {
      if (!md5) {
        const hash = createHash('md5');
        for (const part of parts) hash.update(part);
        md5 = hash.digest();
      }
      return md5;
    },
  };
}

/** 'current' is the month of `at` (UTC); 'last' the month before. */
export function billingMonthOf(period: BillingPeriod, at: Date): string {
  const monthsBack = period === 'last' ? 1 : 0;
  const month = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - monthsBack, 1));
  return month.toISOString().slice(0, 7);
}

/**
 * The last day a month-to-date export made at `at` has usage for: daily-rated usage takes about
 * 24 hours to appear, so the day before, but never before the 1st of the month.
 */
export function monthToDateUsageThrough(at: Date): string {
  const day = Math.max(1, at.getUTCDate() - 1);
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), day)).toISOString().slice(0, 10);
}

/** yyyyMMddHHmm, like the snapshot folder of real unbilled exports. */
function snapshotFolder(at: Date): string {
  return at.toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

/** Uploads in flight at once: thousands at a time would only make Azurite drop connections. */
export const UPLOAD_CONCURRENCY = 16;

export async function uploadExport(container: ContainerClient, files: readonly ExportFile[], abortSignal: AbortSignal): Promise<void> {
  await container.createIfNotExists({ abortSignal });
  // Every upload in flight listens for the abort; that many listeners are expected, not a leak.
  setMaxListeners(Math.max(10, UPLOAD_CONCURRENCY * 4), abortSignal);
  let next = 0;
  const uploadNext = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      const blob = container.getBlockBlobClient(file.blobName);
      const options = { blobHTTPHeaders: { blobContentType: 'application/gzip', blobContentMD5: file.contentMD5 }, abortSignal };
      // A filled file is streamed from its shared parts in one Put Blob, never assembled in memory.
      await (file.parts.length === 1 ? blob.uploadData(file.content, options) : blob.upload(() => Readable.from(file.parts), file.size, options));
    }
  };
  await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, uploadNext));
}

/**
 * A container-scoped read+list service SAS, as a query string without '?'. Microsoft issues a
 * directory-scoped user-delegation SAS (sr=d); Azurite has no hierarchical namespace, so the
 * container is the narrowest scope that covers the export's folder.
 */
export function readListSas(credential: StorageSharedKeyCredential, containerName: string, expiresOn: Date): string {
  return generateBlobSASQueryParameters(
    { containerName, permissions: ContainerSASPermissions.parse('rl'), expiresOn, protocol: SASProtocol.HttpsAndHttp },
    credential,
  ).toString();
}
