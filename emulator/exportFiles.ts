/**
 * The files of one export and where they live: the "Microsoft side" storage account, in the
 * layouts observed in real manifests (reference 3.2), one container per kind, e.g.
 *   unbilledusagefastpath/v1/202410080035/PartnerTenantId=<tid>/BillingMonth=202410/Currency=INR/
 *     Fragment=full/PartitionType=default/part-00000-<guid>.c000.json.gz
 *   billedusagefastpath/v1/PartnerTenantId=<tid>/BillingMonth=202408/InvoiceId=G058476717/
 *     InvoiceVersion=202409080713/Fragment=full/PartitionType=default/part-00000-<guid>.c000.json.gz
 * No real reconciliation rootDirectory is known, so those follow the usage layouts in containers
 * of their own.
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
import { billingMonthOf, type BilledExportKind, type BillingPeriod, type ExportKind, type UnbilledExportKind } from './exportRequest';
import type { InvoiceVersion } from './invoices';
import { reconciliationRows } from './reconciliationData';
import { gzipJsonLines, usageRows, type AttributeSet } from './usageData';

/** The container each kind's files are written to in the source account. */
export const EXPORT_CONTAINERS: Readonly<Record<ExportKind, string>> = {
  'unbilled-usage': 'unbilledusagefastpath',
  'billed-usage': 'billedusagefastpath',
  'unbilled-reconciliation': 'unbilledreconfastpath',
  'billed-reconciliation': 'billedreconfastpath',
};

/** The unbilled usage container. */
export const EXPORT_CONTAINER = EXPORT_CONTAINERS['unbilled-usage'];

/** What one export holds: the unbilled data of a month and currency, or one version of an invoice. */
export type ExportSubject =
  | { kind: UnbilledExportKind; currencyCode: string; billingPeriod: BillingPeriod; attributeSet: AttributeSet }
  | { kind: BilledExportKind; invoice: InvoiceVersion; attributeSet: AttributeSet };

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
  kind: ExportKind;
  /** The source account's container holding the files. */
  container: string;
  /** YYYY-MM */
  billingMonth: string;
  /** ISO 4217: the request's, or the invoice's. */
  currency: string;
  /** The folder in the container holding the files, without a trailing slash. */
  directory: string;
  eTag: string;
  files: ExportFile[];
  totalBytes: number;
}

export interface ExportPlanOptions {
  request: ExportSubject;
  scenario: Pick<BillingScenario, 'seed' | 'fileCount' | 'rowsPerFile'> & Partial<Pick<BillingScenario, 'fileSizeBytes'>>;
  partnerTenantId: string;
  /** When the export was requested: picks an unbilled export's billing month and names its snapshot folder. */
  requestedAt: Date;
}

type Rows = Array<Record<string, unknown>>;

/** Where a kind's rows come from: each file's own rows, and further rows for the filler. */
interface RowSource {
  /** How many files there are: fileCount, or fewer when the export has fewer rows than that. */
  fileCount: number;
  ownRows: (fileIndex: number) => Rows;
  /** `count` rows that come after every file's own rows. */
  fillerRows: (count: number) => Rows;
}

/**
 * Builds every file of the export in memory; names, bytes and eTag depend only on the inputs.
 * Usage kinds hold fileCount x rowsPerFile usage rows; reconciliation kinds hold the line items
 * that reconcile that much usage (plus licences), spread over at most fileCount files.
 */
export function planExport({ request, scenario, partnerTenantId, requestedAt }: ExportPlanOptions): ExportPlan {
  const { seed, fileCount, rowsPerFile } = scenario;
  const fileSizeBytes = scenario.fileSizeBytes ?? null;
  const { kind, attributeSet } = request;
  const billed = 'invoice' in request ? request.invoice : undefined;
  const { billingMonth, currency, usageThrough } = periodOf(request, requestedAt);
  const scope: RowScope = {
    seed,
    billingMonth,
    currency,
    attributeSet,
    partnerTenantId,
    ...(usageThrough ? { usageThrough } : {}),
    ...(billed ? { invoiceNumber: billed.id, invoiceVersion: billed.version } : {}),
  };
  const source =
    kind === 'unbilled-usage' || kind === 'billed-usage' ? usageSource(scope, fileCount, rowsPerFile) : reconciliationSource(scope, fileCount, rowsPerFile);
  const folders = billed
    ? [
        'v1',
        `PartnerTenantId=${partnerTenantId}`,
        `BillingMonth=${compactMonth(billingMonth)}`,
        `InvoiceId=${billed.id}`,
        `InvoiceVersion=${minuteStamp(new Date(billed.versionIssuedAt))}`,
      ]
    : ['v1', minuteStamp(requestedAt), `PartnerTenantId=${partnerTenantId}`, `BillingMonth=${compactMonth(billingMonth)}`, `Currency=${currency}`];
  const directory = [...folders, `Fragment=${attributeSet}`, 'PartitionType=default'].join('/');
  // What names this data version. Unbilled usage keeps the key it always had; a month-to-date usage
  // export also names the day its usage runs to, so the next day's data is a new version (reconciliation
  // sums the month's usage whatever its days, so its line items, and eTag, stay the same).
  const invoiceKey = billed ? `${billed.id}/${billed.version}` : '';
  const dataKey = kind === 'unbilled-usage' ? [billingMonth, currency, attributeSet] : [kind, billingMonth, currency, invoiceKey, attributeSet];

  // The filler rows come after every file's own rows, so no row is used twice.
  const filler = fileSizeBytes === null ? undefined : new Filler(fileSizeBytes, source.fillerRows(FILLER_SAMPLE_ROWS), source.fillerRows);

  const files = Array.from({ length: source.fileCount }, (_, index): ExportFile => {
    const own = gzipJsonLines(source.ownRows(index));
    const name = `part-${String(index).padStart(5, '0')}-${deterministicUuid(seed, ...dataKey, index)}.c000.json.gz`;
    return filledFile(name, `${directory}/${name}`, filler ? filler.fill(own) : [own]);
  });

  // The size knob is part of the eTag only when set, so defaults keep theirs.
  const dayKey = usageThrough && kind === 'unbilled-usage' ? [usageThrough] : [];
  const eTagKey = [...(fileSizeBytes === null ? [] : [fileSizeBytes]), ...dayKey];
  return {
    kind,
    container: EXPORT_CONTAINERS[kind],
    billingMonth,
    currency,
    directory,
    eTag: deterministicAlphanumeric(17, 'eTag', seed, ...dataKey, fileCount, rowsPerFile, ...eTagKey),
    files,
    totalBytes: files.reduce((sum, file) => sum + file.size, 0),
  };
}

/** The month and currency the export covers, and for a month-to-date export the last day with usage. */
function periodOf(request: ExportSubject, requestedAt: Date): { billingMonth: string; currency: string; usageThrough?: string } {
  if ('invoice' in request) return { billingMonth: request.invoice.billingMonth, currency: request.invoice.currency };
  const billingMonth = billingMonthOf(request.billingPeriod, requestedAt);
  return request.billingPeriod === 'current'
    ? { billingMonth, currency: request.currencyCode, usageThrough: monthToDateUsageThrough(requestedAt) }
    : { billingMonth, currency: request.currencyCode };
}

interface RowScope {
  seed: number;
  billingMonth: string;
  currency: string;
  attributeSet: AttributeSet;
  partnerTenantId: string;
  usageThrough?: string;
  invoiceNumber?: string;
  invoiceVersion?: 1 | 2;
}

/** Usage rows by index: file i holds rows i*rowsPerFile onwards, the filler those after the last file's. */
function usageSource(scope: RowScope, fileCount: number, rowsPerFile: number): RowSource {
  // The re-issue corrects the reconciliation; the usage of the month stays what it was.
  const { invoiceVersion: _version, ...usageScope } = scope;
  const rows = (count: number, startIndex: number): Rows => usageRows({ ...usageScope, count, startIndex });
  return {
    fileCount,
    ownRows: (index) => rows(rowsPerFile, index * rowsPerFile),
    fillerRows: (count) => rows(count, fileCount * rowsPerFile),
  };
}

/**
 * The month's reconciliation line items (those of fileCount x rowsPerFile usage rows), split in
 * order into nearly equal files; the filler repeats them, as reconciliation has no further rows.
 */
function reconciliationSource(scope: RowScope, fileCount: number, rowsPerFile: number): RowSource {
  const lines = reconciliationRows({ ...scope, usageRowCount: fileCount * rowsPerFile });
  const files = Math.min(fileCount, lines.length);
  const boundary = (index: number): number => Math.floor((index * lines.length) / files);
  return {
    fileCount: files,
    ownRows: (index) => lines.slice(boundary(index), boundary(index + 1)),
    fillerRows: (count) => Array.from({ length: count }, (_, index) => lines[index % lines.length]!),
  };
}

/** "2024-10" -> "202410", as the BillingMonth= folder spells it. */
function compactMonth(billingMonth: string): string {
  return billingMonth.replace('-', '');
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

/**
 * The last day a month-to-date export made at `at` has usage for: daily-rated usage takes about
 * 24 hours to appear, so the day before, but never before the 1st of the month.
 */
export function monthToDateUsageThrough(at: Date): string {
  const day = Math.max(1, at.getUTCDate() - 1);
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), day)).toISOString().slice(0, 10);
}

/** yyyyMMddHHmm, like the snapshot folder of real unbilled exports and the InvoiceVersion of billed ones. */
function minuteStamp(at: Date): string {
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
