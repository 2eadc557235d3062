/**
 * Deterministic names: the billing month an export covers, the key that makes one export per
 * month, currency and attribute set, and where its files land. Queue and timer deliveries are
 * at least once, so the same export always maps to the same place and a retry overwrites
 * instead of duplicating. Layout, as Cost Management exports do it, manifest last:
 *   {container}/unbilled-usage/{YYYY-MM}/{CURRENCY}/{attributeSet}/{manifest eTag}/{file}
 */
import { createHash } from 'node:crypto';
import type { AttributeSet, BillingPeriod } from './settings';

export const EXPORT_KIND = 'unbilled-usage';
export const MANIFEST_FILE_NAME = 'manifest.json';

/**
 * Whether a file name from Graph's manifest could pass for a file this app writes: consumers
 * trigger on `manifest.json`, so a listed file called that (in any casing, in any subfolder, or
 * with the trailing dots and spaces some tools drop) could overwrite ours or fire their trigger
 * before every file is verified. Such a manifest is refused.
 */
export function isAppFileName(blobName: string): boolean {
  const last = blobName.split('/').pop() ?? '';
  return last.replace(/[. ]+$/, '').toLowerCase() === MANIFEST_FILE_NAME;
}

export interface ExportKey {
  readonly kind: typeof EXPORT_KIND;
  readonly billingMonth: string;
  readonly currency: string;
  readonly attributeSet: AttributeSet;
}

/** `current` is the month in progress, `last` the month before it (UTC, as Graph bills). */
export function billingMonthFor(period: BillingPeriod, now: Date): string {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth() - (period === 'last' ? 1 : 0);
  const first = new Date(Date.UTC(year, month, 1));
  return `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** A table-safe key (no '/', '\\', '#', '?'): unbilled-usage|2026-10|EUR|full */
export function exportKeyString(key: ExportKey): string {
  return [key.kind, key.billingMonth, key.currency, key.attributeSet].join('|');
}

/**
 * The manifest eTag as one path segment. Graph's are alphanumeric; anything else is made safe
 * and suffixed with a short hash, so two different eTags never share a folder.
 */
export function eTagSegment(eTag: string): string {
  if (/^[A-Za-z0-9._-]{1,100}$/.test(eTag) && !/^\.+$/.test(eTag)) return eTag;
  const readable = eTag.replace(/[^A-Za-z0-9_]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  const hash = createHash('sha256').update(eTag).digest('hex').slice(0, 12);
  return readable ? `${readable}-${hash}` : hash;
}

/** The run's folder inside the destination container, with a trailing slash. */
export function destinationFolder(key: ExportKey, eTag: string): string {
  return `${key.kind}/${key.billingMonth}/${key.currency}/${key.attributeSet}/${eTagSegment(eTag)}/`;
}
