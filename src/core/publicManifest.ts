/**
 * `manifest.json`: what a landing writes last into the run's folder, for the partner's consumers
 * (who trigger on it). A declared format, built by a pure function from the run, Graph's manifest
 * and the files as verified in the destination.
 */
import type { CustomerTotal, ProblemExample, RunDataSummary } from './dataCheck';
import type { Manifest, ManifestBlob } from './manifest';
import { isBilled } from './naming';
import type { BilledRun, Run, UnbilledRun } from './run';

/** Our manifest.json format. */
export const MANIFEST_FORMAT = 'partner-billing-export/1';

export interface PublicManifestBlob {
  readonly name: string;
  readonly partitionValue: ManifestBlob['partitionValue'];
  readonly byteCount: number;
  /** Base64 MD5 of the copy, when the source has one. */
  readonly contentMD5?: string;
  /** Rows in the file, once the data check has read it. */
  readonly rowCount?: number;
}

/** A Parquet copy of a source file, in the run's folder. */
export interface PublicManifestParquet {
  /** Relative to the run's folder: `parquet/<source name>.parquet`. */
  readonly name: string;
  readonly source: string;
  readonly rowCount: number;
  readonly byteCount: number;
}

/**
 * One customer's rows in one currency (usage: and pricing currency) over the run, with each summed
 * cost column (camelCase) as an exact decimal string.
 */
export type PublicCustomerTotal = Pick<CustomerTotal, 'customerId' | 'customerName' | 'currency' | 'pricingCurrency' | 'rowCount'> &
  Readonly<Record<string, string | number | undefined>>;

/** What was exported: a month in a currency (unbilled kinds), or an invoice (billed kinds). */
export type PublicManifestSubject =
  | { readonly kind: UnbilledRun['kind']; readonly billingPeriod: UnbilledRun['billingPeriod']; readonly billingMonth: string; readonly currency: string }
  | { readonly kind: BilledRun['kind']; readonly invoiceId: string };

export type PublicManifest = PublicManifestSubject & PublicManifestDetails;

export interface PublicManifestDetails {
  readonly manifestFormat: typeof MANIFEST_FORMAT;
  readonly runId: string;
  readonly attributeSet: Run['attributeSet'];
  readonly operationId: string | undefined;
  readonly manifestId: string;
  readonly eTag: string;
  readonly partnerTenantId: string;
  readonly schemaVersion: Manifest['schemaVersion'];
  readonly dataFormat: Manifest['dataFormat'];
  readonly partitionType: Manifest['partitionType'];
  /** When Graph created the export. */
  readonly exportedAt: Manifest['createdDateTime'];
  /** When the files were verified in the destination. */
  readonly copiedAt: string;
  readonly blobCount: number;
  readonly byteCount: number;
  readonly blobs: readonly PublicManifestBlob[];
  /** The data check's figures (../core/dataCheck.ts), over every file. */
  readonly rowCount?: number;
  readonly totals?: readonly PublicCustomerTotal[];
  readonly check?: { readonly problems: number; readonly examples: readonly ProblemExample[] };
  /** The Parquet copies, when OUTPUT_FORMATS includes parquet. */
  readonly parquet?: readonly PublicManifestParquet[];
}

/** A file as landed: Graph's entry for it, and the copy's length and MD5 as verified. */
export interface LandedFile {
  readonly blob: ManifestBlob;
  readonly facts: { readonly contentLength: number; readonly contentMD5?: string; readonly etag?: string };
}

/** What manifest.json needs of Graph's manifest besides the files: never the SAS or the source folder. */
export type ManifestFacts = Pick<Manifest, 'id' | 'eTag' | 'schemaVersion' | 'dataFormat' | 'createdDateTime' | 'partnerTenantId' | 'partitionType'>;

export function buildPublicManifest(run: Run, manifest: ManifestFacts, landed: readonly LandedFile[], copiedAt: string): PublicManifest {
  return {
    manifestFormat: MANIFEST_FORMAT,
    runId: run.runId,
    ...subjectOf(run),
    attributeSet: run.attributeSet,
    operationId: run.operationId,
    manifestId: manifest.id,
    eTag: manifest.eTag,
    partnerTenantId: manifest.partnerTenantId,
    schemaVersion: manifest.schemaVersion,
    dataFormat: manifest.dataFormat,
    partitionType: manifest.partitionType,
    exportedAt: manifest.createdDateTime,
    copiedAt,
    blobCount: landed.length,
    byteCount: landed.reduce((sum, { facts }) => sum + facts.contentLength, 0),
    blobs: landed.map(({ blob, facts }) => ({
      name: blob.name,
      partitionValue: blob.partitionValue,
      byteCount: facts.contentLength,
      ...(facts.contentMD5 ? { contentMD5: facts.contentMD5 } : {}),
    })),
  };
}

function subjectOf(run: Run): PublicManifestSubject {
  if (isBilled(run)) return { kind: run.kind, invoiceId: run.invoiceId };
  return { kind: run.kind, billingPeriod: run.billingPeriod, billingMonth: run.billingMonth, currency: run.currency };
}

/**
 * Whether a manifest.json already in the folder describes the same verified files as ours (same
 * format, data version, names, lengths and MD5s): then it is left as it is, so consumers get one
 * blob-created event per data version. Anything unreadable is not the same.
 */
export function describesSameFiles(existing: unknown, ours: PublicManifest): boolean {
  if (typeof existing !== 'object' || existing === null) return false;
  const other = existing as Partial<PublicManifest>;
  const key = (blobs: unknown) =>
    JSON.stringify(
      (Array.isArray(blobs) ? (blobs as PublicManifestBlob[]) : []).map(({ name, byteCount, contentMD5 }) => [name, byteCount, contentMD5 ?? null]),
    );
  return other.manifestFormat === MANIFEST_FORMAT && other.eTag === ours.eTag && key(other.blobs) === key(ours.blobs);
}

/** A file's share of the data check, for manifest.json. */
export interface CheckedFile {
  readonly name: string;
  readonly rowCount: number;
  readonly parquet?: { readonly name: string; readonly rowCount: number; readonly byteCount: number };
}

/**
 * manifest.json with the data check's figures: rows per file and in total, per-customer totals
 * (each summed column under its camelCase name), the problems, and the Parquet copies.
 */
export function withDataCheck(manifest: PublicManifest, files: readonly CheckedFile[], summary: RunDataSummary): PublicManifest {
  const byName = new Map(files.map((file) => [file.name, file]));
  const parquet = files.flatMap((file) =>
    file.parquet ? [{ name: file.parquet.name, source: file.name, rowCount: file.parquet.rowCount, byteCount: file.parquet.byteCount }] : [],
  );
  return {
    ...manifest,
    blobs: manifest.blobs.map((blob) => {
      const checked = byName.get(blob.name);
      return checked ? { ...blob, rowCount: checked.rowCount } : blob;
    }),
    rowCount: summary.rowCount,
    totals: publicTotals(summary.totals),
    check: summary.check,
    ...(parquet.length > 0 ? { parquet } : {}),
  };
}

/** Per-customer totals as manifest.json and the run API show them: each summed column beside the customer's fields. */
export function publicTotals(totals: readonly CustomerTotal[]): PublicCustomerTotal[] {
  return totals.map(({ sums, ...total }) => ({ ...sums, ...total }));
}
