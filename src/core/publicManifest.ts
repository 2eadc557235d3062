/**
 * `manifest.json`: what a landing writes last into the run's folder, for the partner's consumers
 * (who trigger on it). A declared format, built by a pure function from the run, Graph's manifest
 * and the files as verified in the destination.
 */
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
}

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
}

/** A file as landed: Graph's entry for it, and the copy's length and MD5 as verified. */
export interface LandedFile {
  readonly blob: ManifestBlob;
  readonly facts: { readonly contentLength: number; readonly contentMD5?: string };
}

export function buildPublicManifest(run: Run, manifest: Manifest, landed: readonly LandedFile[], copiedAt: string): PublicManifest {
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
  const key = (blobs: unknown) => JSON.stringify((Array.isArray(blobs) ? (blobs as PublicManifestBlob[]) : []).map(({ name, byteCount, contentMD5 }) => [name, byteCount, contentMD5 ?? null]));
  return other.manifestFormat === MANIFEST_FORMAT && other.eTag === ours.eTag && key(other.blobs) === key(ours.blobs);
}
