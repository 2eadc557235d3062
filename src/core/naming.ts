/**
 * Deterministic names: the four kinds of export, the key that makes one export per kind and
 * subject (month and currency for unbilled data, the invoice for billed data) and attribute set,
 * and where its files land. Queue and timer deliveries are at least once, so the same export
 * always maps to the same place and a retry overwrites instead of duplicating. Layout, as Cost
 * Management exports do it, manifest last:
 *   {container}/{unbilled kind}/{YYYY-MM}/{CURRENCY}/{attributeSet}/{manifest eTag}/{file}
 *   {container}/{billed kind}/{invoiceId}/{attributeSet}/{manifest eTag}/{file}
 */
import { PARQUET_FOLDER } from './dataOutputs';
import { createHash } from 'node:crypto';
import type { AttributeSet, BillingPeriod } from './settings';

/** Graph's four partner billing exports, one list: unbilled kinds by month and currency, billed kinds by invoice. */
export const EXPORT_KINDS = ['unbilled-usage', 'unbilled-reconciliation', 'billed-usage', 'billed-reconciliation'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];
export const UNBILLED_KINDS = ['unbilled-usage', 'unbilled-reconciliation'] as const satisfies readonly ExportKind[];
export const BILLED_KINDS = ['billed-usage', 'billed-reconciliation'] as const satisfies readonly ExportKind[];
export type UnbilledKind = (typeof UNBILLED_KINDS)[number];
export type BilledKind = (typeof BILLED_KINDS)[number];

export function isExportKind(value: unknown): value is ExportKind {
  return typeof value === 'string' && (EXPORT_KINDS as readonly string[]).includes(value);
}

export function isBilledKind(kind: ExportKind): kind is BilledKind {
  return (BILLED_KINDS as readonly string[]).includes(kind);
}

/** Whether a key, run or request is of a billed kind (keyed by invoice), narrowing it. */
export function isBilled<T extends { readonly kind: ExportKind }>(value: T): value is Extract<T, { readonly kind: BilledKind }> {
  return isBilledKind(value.kind);
}

/** What each kind exports, for people (logs, the CLI, the README). */
export const KIND_DESCRIPTIONS: Readonly<Record<ExportKind, string>> = {
  'unbilled-usage': 'unbilled Azure usage',
  'unbilled-reconciliation': 'unbilled invoice reconciliation',
  'billed-usage': 'billed Azure usage',
  'billed-reconciliation': 'billed invoice reconciliation',
};

export const MANIFEST_FILE_NAME = 'manifest.json';

/**
 * Whether a file name from Graph's manifest could pass for a file this app writes: consumers
 * trigger on `manifest.json`, so a listed file called that (in any casing, in any subfolder, or
 * with the trailing dots and spaces some tools drop) could overwrite ours or fire their trigger
 * before every file is verified. The same goes for a file in `parquet/`, beside which the Parquet
 * copies land. Such a manifest is refused.
 */
export function isAppFileName(blobName: string): boolean {
  const last = blobName.split('/').pop() ?? '';
  return last.replace(/[. ]+$/, '').toLowerCase() === MANIFEST_FILE_NAME || isInParquetFolder(blobName);
}

/** Whether a name lies in the run folder's `parquet/` (in any casing), where the app writes its Parquet copies. */
export function isInParquetFolder(blobName: string): boolean {
  return blobName.replace(/^\/+/, '').toLowerCase().startsWith(PARQUET_FOLDER);
}

/** Unbilled data: one month in one currency. */
export interface UnbilledExportKey {
  readonly kind: UnbilledKind;
  readonly billingMonth: string;
  readonly currency: string;
  readonly attributeSet: AttributeSet;
}

/** Billed data: one invoice (its month and currency are the invoice's). */
export interface BilledExportKey {
  readonly kind: BilledKind;
  readonly invoiceId: string;
  readonly attributeSet: AttributeSet;
}

export type ExportKey = UnbilledExportKey | BilledExportKey;

/** How an invoice id looks, for every message that refuses one. */
export const INVOICE_ID_FORM = "a Partner Center invoice id: 'G' and 9 digits, such as G016907411";
/**
 * `G` and nine digits: the form of every invoice of the modern billing platform, which Graph's
 * billed exports cover (the reference's every example: G016907411, G031809528, G058476717).
 * Legacy-platform invoices cannot be exported by these APIs, so their ids are refused.
 */
const INVOICE_ID = /^G\d{9}$/;

/**
 * The one check of an invoice id, wherever it comes from (API body, CLI flag, webhook event,
 * backfill list): the id, or undefined if it is not one. It becomes part of a ledger key and a
 * blob path, so nothing but `G` and digits passes.
 */
export function parseInvoiceId(value: unknown): string | undefined {
  return typeof value === 'string' && INVOICE_ID.test(value) ? value : undefined;
}

/** `current` is the month in progress, `last` the month before it (UTC, as Graph bills). */
export function billingMonthFor(period: BillingPeriod, now: Date): string {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth() - (period === 'last' ? 1 : 0);
  const first = new Date(Date.UTC(year, month, 1));
  return `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * A table-safe key (no '/', '\\', '#', '?'): `unbilled-usage|2026-10|EUR|full` (the form every
 * ledger has used, so existing keys keep working) or `billed-usage|G016907411|full`.
 */
export function exportKeyString(key: ExportKey): string {
  return isBilled(key) ? [key.kind, key.invoiceId, key.attributeSet].join('|') : [key.kind, key.billingMonth, key.currency, key.attributeSet].join('|');
}

/** Only the fields of the key, whatever else the value carries (a run, a request). */
export function exportKeyOf(value: ExportKey): ExportKey {
  return isBilled(value)
    ? { kind: value.kind, invoiceId: value.invoiceId, attributeSet: value.attributeSet }
    : { kind: value.kind, billingMonth: value.billingMonth, currency: value.currency, attributeSet: value.attributeSet };
}

/**
 * The manifest eTag as one path segment. Graph's are alphanumeric; anything else is made safe
 * and suffixed with a short hash, so two different eTags never share a folder.
 */
export function eTagSegment(eTag: string): string {
  if (/^[A-Za-z0-9._-]{1,100}$/.test(eTag) && !/^\.+$/.test(eTag)) return eTag;
  const readable = eTag
    .replace(/[^A-Za-z0-9_]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  const hash = createHash('sha256').update(eTag).digest('hex').slice(0, 12);
  return readable ? `${readable}-${hash}` : hash;
}

/** The run's folder inside the destination container, with a trailing slash. */
export function destinationFolder(key: ExportKey, eTag: string): string {
  const subject = isBilled(key) ? key.invoiceId : `${key.billingMonth}/${key.currency}`;
  return `${key.kind}/${subject}/${key.attributeSet}/${eTagSegment(eTag)}/`;
}

/** What Graph is asked for: the kind's export action and its documented body. */
export type ExportRequest =
  | {
      readonly kind: UnbilledKind;
      readonly body: { readonly currencyCode: string; readonly billingPeriod: BillingPeriod; readonly attributeSet: AttributeSet };
    }
  | { readonly kind: BilledKind; readonly body: { readonly invoiceId: string; readonly attributeSet: AttributeSet } };

/** The export request of a key: `{invoiceId, attributeSet}` for billed kinds, `{currencyCode, billingPeriod, attributeSet}` for unbilled ones. */
export function exportRequestFor(key: BilledExportKey | (UnbilledExportKey & { readonly billingPeriod: BillingPeriod })): ExportRequest {
  if (isBilled(key)) return { kind: key.kind, body: { invoiceId: key.invoiceId, attributeSet: key.attributeSet } };
  return { kind: key.kind, body: { currencyCode: key.currency, billingPeriod: key.billingPeriod, attributeSet: key.attributeSet } };
}
