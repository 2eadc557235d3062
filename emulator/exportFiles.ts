/**
 * The files of one unbilled-usage export and where they live: the "Microsoft side" storage
 * account, in the layout observed in real manifests (reference 3.2), e.g.
 *   unbilledusagefastpath/v1/202410080035/PartnerTenantId=<tid>/BillingMonth=202410/Currency=INR/
 *     Fragment=full/PartitionType=default/part-00000-<guid>.c000.json.gz
 */
import { createHash } from 'node:crypto';
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
  content: Buffer;
  contentMD5: Buffer;
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
  scenario: Pick<BillingScenario, 'seed' | 'fileCount' | 'rowsPerFile'>;
  partnerTenantId: string;
  /** When the export was requested: picks the billing month and names the snapshot folder. */
  requestedAt: Date;
}

/** Builds every file of the export in memory; names, bytes and eTag depend only on the inputs. */
export function planExport({ request, scenario, partnerTenantId, requestedAt }: ExportPlanOptions): ExportPlan {
  const { seed, fileCount, rowsPerFile } = scenario;
  const { currencyCode, attributeSet } = request;
  const billingMonth = billingMonthOf(request.billingPeriod, requestedAt);
  const directory = [
    'v1',
    snapshotFolder(requestedAt),
    `PartnerTenantId=${partnerTenantId}`,
    `BillingMonth=${billingMonth.replace('-', '')}`,
    `Currency=${currencyCode}`,
    `Fragment=${attributeSet}`,
    'PartitionType=default',
  ].join('/');

  const files = Array.from({ length: fileCount }, (_, index): ExportFile => {
    const startIndex = index * rowsPerFile;
    const rows = usageRows({ seed, billingMonth, currency: currencyCode, attributeSet, count: rowsPerFile, startIndex, partnerTenantId });
    const content = gzipJsonLines(rows);
    const name = `part-${String(index).padStart(5, '0')}-${deterministicUuid(seed, billingMonth, currencyCode, attributeSet, index)}.c000.json.gz`;
    return { name, blobName: `${directory}/${name}`, content, contentMD5: createHash('md5').update(content).digest() };
  });

  return {
    billingMonth,
    directory,
    eTag: deterministicAlphanumeric(17, 'eTag', seed, billingMonth, currencyCode, attributeSet, fileCount, rowsPerFile),
    files,
    totalBytes: files.reduce((sum, file) => sum + file.content.length, 0),
  };
}

/** 'current' is the month of `at` (UTC); 'last' the month before. */
export function billingMonthOf(period: BillingPeriod, at: Date): string {
  const monthsBack = period === 'last' ? 1 : 0;
  const month = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - monthsBack, 1));
  return month.toISOString().slice(0, 7);
}

/** yyyyMMddHHmm, like the snapshot folder of real unbilled exports. */
function snapshotFolder(at: Date): string {
  return at.toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

export async function uploadExport(container: ContainerClient, files: readonly ExportFile[], abortSignal: AbortSignal): Promise<void> {
  await container.createIfNotExists({ abortSignal });
  await Promise.all(
    files.map((file) =>
      container.getBlockBlobClient(file.blobName).uploadData(file.content, {
        blobHTTPHeaders: { blobContentType: 'application/gzip', blobContentMD5: file.contentMD5 },
        abortSignal,
      }),
    ),
  );
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
