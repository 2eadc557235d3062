/**
 * Checks the body of the four export actions the way Graph checks action parameters: required
 * parameters present, enum members spelled exactly, no unknown parameters (reference 1.1, 1.2).
 * Unbilled kinds take {currencyCode, billingPeriod, attributeSet}, billed kinds {invoiceId, attributeSet}.
 * https://learn.microsoft.com/graph/api/partners-billing-unbilledusage-export
 * https://learn.microsoft.com/graph/api/partners-billing-billedusage-export
 * https://learn.microsoft.com/graph/api/partners-billing-billedreconciliation-export
 * https://learn.microsoft.com/graph/api/partners-billing-unbilledreconciliation-export
 */
import type { BillingScenario } from './billingScenario';
import type { ExportSubject } from './exportFiles';
import type { OperationError } from './exportOperation';
import { currentVersion, INVOICE_MONTHS, lookUpInvoice } from './invoices';
import type { AttributeSet } from './usageData';

export type UnbilledExportKind = 'unbilled-usage' | 'unbilled-reconciliation';
export type BilledExportKind = 'billed-usage' | 'billed-reconciliation';
export type ExportKind = UnbilledExportKind | BilledExportKind;

export type BillingPeriod = 'current' | 'last';

/** The body of an unbilled export as accepted: currencyCode upper-cased, attributeSet defaulted. */
export interface UnbilledExportRequest {
  currencyCode: string;
  billingPeriod: BillingPeriod;
  attributeSet: AttributeSet;
  // Absent members of the other shape, so `request.invoiceId` reads as undefined on either.
  invoiceId?: never;
}

/** The body of a billed export as accepted: attributeSet defaulted. */
export interface BilledExportRequest {
  invoiceId: string;
  attributeSet: AttributeSet;
  currencyCode?: never;
  billingPeriod?: never;
}

export type ExportRequest = UnbilledExportRequest | BilledExportRequest;

/** What was asked for: the kind (from the route) with its body. */
export type ExportOrder = { kind: UnbilledExportKind; request: UnbilledExportRequest } | { kind: BilledExportKind; request: BilledExportRequest };

export type ParsedExportRequest = { ok: true; order: ExportOrder } | { ok: false; message: string };

const BILLING_PERIODS: readonly BillingPeriod[] = ['current', 'last'];
const ATTRIBUTE_SETS: readonly AttributeSet[] = ['full', 'basic'];
const UNBILLED_PARAMETERS = ['currencyCode', 'billingPeriod', 'attributeSet'];
const BILLED_PARAMETERS = ['invoiceId', 'attributeSet'];

export function isBilledKind(kind: ExportKind): kind is BilledExportKind {
  return kind === 'billed-usage' || kind === 'billed-reconciliation';
}

/** Parses the body POSTed to the export action of `kind`; the message names every problem. */
export function parseExportRequest(kind: ExportKind, body: unknown): ParsedExportRequest {
  const parameters = isBilledKind(kind) ? BILLED_PARAMETERS : UNBILLED_PARAMETERS;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: `The request body must be a JSON object with ${parameters.join(', ')}.` };
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];

  const unknown = Object.keys(fields).filter((name) => !parameters.includes(name));
  for (const name of unknown) {
    const expected = parameters.join(', ');
    problems.push(`The parameter '${name}' in the request payload is not a valid parameter for the operation 'export' (expected ${expected}).`);
  }

  const { attributeSet = 'full' } = fields;
  const set = isOneOf(attributeSet, ATTRIBUTE_SETS) ? attributeSet : undefined;
  if (!set) problems.push(`attributeSet is ${describe(attributeSet)}: expected one of ${quoted(ATTRIBUTE_SETS)} (optional, default "full").`);

  if (isBilledKind(kind)) {
    const { invoiceId } = fields;
    // Graph types invoiceId as a String; whether it names an invoice is the export's business, not the parameter check's.
    const invoice = typeof invoiceId === 'string' && invoiceId.trim() !== '' ? invoiceId : undefined;
    if (invoice === undefined) problems.push(`invoiceId is ${describe(invoiceId)}: expected a Partner Center invoice number such as "G016907411".`);
    if (invoice !== undefined && set && problems.length === 0) return { ok: true, order: { kind, request: { invoiceId: invoice, attributeSet: set } } };
    return { ok: false, message: problems.join(' ') };
  }

  const { currencyCode, billingPeriod } = fields;
  const currency = typeof currencyCode === 'string' && /^[A-Za-z]{3}$/.test(currencyCode) ? currencyCode.toUpperCase() : undefined;
  if (!currency) problems.push(`currencyCode is ${describe(currencyCode)}: expected a 3-letter ISO 4217 currency code such as "USD".`);
  const period = isOneOf(billingPeriod, BILLING_PERIODS) ? billingPeriod : undefined;
  if (!period) problems.push(`billingPeriod is ${describe(billingPeriod)}: expected one of ${quoted(BILLING_PERIODS)}.`);

  if (currency && period && set && problems.length === 0) {
    return { ok: true, order: { kind, request: { currencyCode: currency, billingPeriod: period, attributeSet: set } } };
  }
  return { ok: false, message: problems.join(' ') };
}

function isOneOf<T extends string>(value: unknown, allowed: readonly T[]): value is T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value);
}

function describe(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function quoted(values: readonly string[]): string {
  return values.map((value) => `"${value}"`).join(', ');
}

/** The documented failedOperation error (reference 2.4, 5.6). */
export const NO_DATA_AVAILABLE: Readonly<OperationError> = Object.freeze({ code: '5000', message: 'No data available' });

/**
 * What Graph makes of an accepted order: an export of some data, or a failure. `synchronous`
 * failures are answered 400 at once (no operation); the others by a failedOperation.
 */
export type ResolvedExport = ({ kind: 'export'; subject: ExportSubject } | { kind: 'failed'; error: OperationError; synchronous: boolean }) & {
  /** YYYY-MM of the data; '' for an unknown invoice. */
  billingMonth: string;
  /** ISO 4217 of the data; '' for an unknown invoice. */
  currency: string;
  invoiceId?: string;
};

/** Resolves the order against the invoice catalogue at `now` and the scenario's outcome. */
export function resolveExport(order: ExportOrder, now: Date, scenario: BillingScenario): ResolvedExport {
  const { attributeSet } = order.request;
  if (!isUnbilledOrder(order)) {
    const { invoiceId } = order.request;
    const lookup = lookUpInvoice(invoiceId, now);
    // How Graph answers an invoice it cannot export is not documented (reference 8): the scenario picks.
    const synchronous = scenario.invoiceErrors === 'badRequest';
    if (lookup.kind === 'unknown') {
      const error = { code: 'InvoiceNotFound', message: `Invoice '${invoiceId}' was not found for this partner.`, target: 'invoiceId' };
      return { kind: 'failed', error, synchronous, billingMonth: '', currency: '', invoiceId };
    }
    if (lookup.kind === 'tooOld') {
      const { billingMonth, currency } = lookup.invoice;
      const message =
        `Invoice '${invoiceId}' bills ${billingMonth}, before ${lookup.firstBillingMonth}, the first billing month billed data can be exported for ` +
        `(invoices from September 2023 onwards, within the last ${INVOICE_MONTHS} invoiced months).`;
      return { kind: 'failed', error: { code: 'InvoiceNotAvailable', message, target: 'invoiceId' }, synchronous, billingMonth, currency, invoiceId };
    }
    const invoice = currentVersion(lookup.invoice, scenario.invoiceReissued);
    if (scenario.outcome === 'failed') return noData(scenario.failure, invoice.billingMonth, invoice.currency, invoiceId);
    return { kind: 'export', subject: { kind: order.kind, invoice, attributeSet }, billingMonth: invoice.billingMonth, currency: invoice.currency, invoiceId };
  }

  const { currencyCode, billingPeriod } = order.request;
  const billingMonth = billingMonthOf(billingPeriod, now);
  if (scenario.outcome === 'failed') return noData(scenario.failure, billingMonth, currencyCode);
  if (scenario.noDataCurrencies.includes(currencyCode)) return noData(NO_DATA_AVAILABLE, billingMonth, currencyCode);
  return { kind: 'export', subject: { kind: order.kind, currencyCode, billingPeriod, attributeSet }, billingMonth, currency: currencyCode };
}

function isUnbilledOrder(order: ExportOrder): order is Extract<ExportOrder, { kind: UnbilledExportKind }> {
  return !isBilledKind(order.kind);
}

function noData(error: OperationError, billingMonth: string, currency: string, invoiceId?: string): ResolvedExport {
  return { kind: 'failed', error: { ...error }, synchronous: false, billingMonth, currency, ...(invoiceId ? { invoiceId } : {}) };
}

/** 'current' is the month of `at` (UTC); 'last' the month before. */
export function billingMonthOf(period: BillingPeriod, at: Date): string {
  const monthsBack = period === 'last' ? 1 : 0;
  const month = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - monthsBack, 1));
  return month.toISOString().slice(0, 7);
}
