/**
 * The emulator's invoice catalogue: the invoices a partner has, by billing month and currency,
 * as Partner Center issues them (ids are `G` and nine digits; an invoice appears between the
 * 6th and the 8th of the month after its billing month). Numbered from the newest: G000000001
 * is always the newest invoice in EUR, so a demo can name it without looking it up.
 *
 * The catalogue holds the invoices Graph can export: the last INVOICE_MONTHS billing months, and
 * none before September 2023 (Microsoft's sample: "Invoices from September 2023 onwards are only
 * available"). The numbering goes on into older invoices the partner had (lookUpInvoice: tooOld).
 */

export interface Invoice {
  /** `G` + nine digits, e.g. G000000001. */
  readonly id: string;
  /** The month it bills, YYYY-MM. */
  readonly billingMonth: string;
  /** ISO 4217 billing currency. */
  readonly currency: string;
  /** When it was issued (ISO 8601). */
  readonly issuedAt: string;
  /**
   * How many versions it has. A re-issued invoice has two: exports see the first until the
   * billing scenario says it was re-issued (invoiceReissued), then the second, with a new eTag.
   */
  readonly versions: 1 | 2;
}

/** One version of an invoice: what a billed export of it holds. */
export interface InvoiceVersion extends Invoice {
  readonly version: 1 | 2;
  /** When this version was issued (ISO 8601): the first issue, or the re-issue a day later. */
  readonly versionIssuedAt: string;
}

/** The currencies the emulated partner is invoiced in, in numbering order. */
export const INVOICE_CURRENCIES = ['EUR', 'USD', 'GBP'] as const;
/** How many billing months back the catalogue goes (Graph's billed data has a limited history). */
export const INVOICE_MONTHS = 12;
/** The day of the month after the billing month by which its invoice is out. */
export const INVOICE_DAY = 8;
/** The one re-issued invoice: the newest in USD. */
export const REISSUED_INVOICE_ID = 'G000000002';
/** The first billing month Graph exports billed data for. */
export const FIRST_BILLED_MONTH = '2023-09';
/** How many billing months of older invoices the partner had before the catalogue's first. */
export const OLDER_INVOICE_MONTHS = 24;
/** Days between an invoice's issue and its re-issue: a day, so the re-issue is out whenever the invoice is. */
const REISSUE_AFTER_DAYS = 1;

export const INVOICE_ID_PATTERN = /^G\d{9}$/;

/** Every invoice issued by `now` that Graph can export, newest first. */
export function invoiceCatalogue(now: Date): Invoice[] {
  return exportable(invoicesIssued(now, INVOICE_MONTHS));
}

/** Of the invoices `issued` (newest first), those of the catalogue's INVOICE_MONTHS that Graph can export. */
function exportable(issued: readonly Invoice[]): Invoice[] {
  return issued.slice(0, INVOICE_MONTHS * INVOICE_CURRENCIES.length).filter((invoice) => invoice.billingMonth >= FIRST_BILLED_MONTH);
}

/** The invoices of the `months` newest invoiced billing months, newest first. */
function invoicesIssued(now: Date, months: number): Invoice[] {
  // The newest invoiced month: last month once its invoice day has come, else the month before.
  const monthsBack = now.getUTCDate() >= INVOICE_DAY ? 1 : 2;
  const invoices: Invoice[] = [];
  for (let age = 0; age < months; age++) {
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - monthsBack - age, 1));
    const issuedAt = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, INVOICE_DAY - 2, 4)).toISOString();
    INVOICE_CURRENCIES.forEach((currency, index) => {
      const id = `G${String(age * INVOICE_CURRENCIES.length + index + 1).padStart(9, '0')}`;
      invoices.push({ id, billingMonth: month.toISOString().slice(0, 7), currency, issuedAt, versions: id === REISSUED_INVOICE_ID ? 2 : 1 });
    });
  }
  return invoices;
}

/** The invoice with `id` issued by `now` that Graph can export, or undefined. */
export function findInvoice(id: string, now: Date): Invoice | undefined {
  return INVOICE_ID_PATTERN.test(id) ? invoiceCatalogue(now).find((invoice) => invoice.id === id) : undefined;
}

export type InvoiceLookup =
  | { kind: 'found'; invoice: Invoice }
  /** An invoice the partner had, older than the billed data Graph exports. */
  | { kind: 'tooOld'; invoice: Invoice; firstBillingMonth: string }
  | { kind: 'unknown' };

/** What Graph knows of invoice `id` at `now`: exportable, too old, or not the partner's. */
export function lookUpInvoice(id: string, now: Date): InvoiceLookup {
  if (!INVOICE_ID_PATTERN.test(id)) return { kind: 'unknown' };
  const issued = invoicesIssued(now, INVOICE_MONTHS + OLDER_INVOICE_MONTHS);
  const invoice = issued.find((candidate) => candidate.id === id);
  if (!invoice) return { kind: 'unknown' };
  const catalogue = exportable(issued);
  if (catalogue.some((candidate) => candidate.id === id)) return { kind: 'found', invoice };
  return { kind: 'tooOld', invoice, firstBillingMonth: catalogue.at(-1)?.billingMonth ?? FIRST_BILLED_MONTH };
}

/** The version of `invoice` exports see: the second of the re-issued invoice once `reissued`. */
export function currentVersion(invoice: Invoice, reissued: boolean): InvoiceVersion {
  const version = invoice.versions === 2 && reissued ? 2 : 1;
  const issuedAt = new Date(invoice.issuedAt);
  const versionIssuedAt = version === 1 ? invoice.issuedAt : new Date(issuedAt.getTime() + REISSUE_AFTER_DAYS * 86_400_000).toISOString();
  return { ...invoice, version, versionIssuedAt };
}

/** One line naming the invoices a billed export can be asked for at `now`, for people starting the emulator. */
export function describeInvoices(now: Date): string {
  const catalogue = invoiceCatalogue(now);
  const first = catalogue[0];
  const last = catalogue.at(-1);
  if (!first || !last) return `Billed exports: no invoices yet (billed data starts with ${FIRST_BILLED_MONTH}).`;
  const newest = catalogue
    .filter((invoice) => invoice.billingMonth === first.billingMonth)
    .map((invoice) => `${invoice.id} ${invoice.currency}${invoice.versions === 2 ? ' (re-issued)' : ''}`)
    .join(', ');
  return (
    `Billed exports: invoices ${first.id} to ${last.id}, billing months ${last.billingMonth} to ${first.billingMonth}, ` +
    `newest first (${first.billingMonth}: ${newest}).`
  );
}
