/**
 * The emulator's invoice catalogue: the invoices a partner has, by billing month and currency,
 * as Partner Center issues them (ids are `G` and nine digits; an invoice appears between the
 * 6th and the 8th of the month after its billing month). Numbered from the newest: G000000001
 * is always the newest invoice in EUR, so a demo can name it without looking it up.
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
   * How many versions it has. A re-issued invoice has two: an export made before the partner ever
   * exported it sees the first (eTag of version 1), every later one the second.
   */
  readonly versions: 1 | 2;
}

/** The currencies the emulated partner is invoiced in, in numbering order. */
export const INVOICE_CURRENCIES = ['EUR', 'USD', 'GBP'] as const;
/** How many billing months back the catalogue goes (Graph's billed data has a limited history). */
export const INVOICE_MONTHS = 12;
/** The day of the month after the billing month by which its invoice is out. */
export const INVOICE_DAY = 8;
/** The one re-issued invoice: the newest in USD. */
export const REISSUED_INVOICE_ID = 'G000000002';

export const INVOICE_ID_PATTERN = /^G\d{9}$/;

/** Every invoice issued by `now`, newest first. */
export function invoiceCatalogue(now: Date): Invoice[] {
  // The newest invoiced month: last month once its invoice day has come, else the month before.
  const monthsBack = now.getUTCDate() >= INVOICE_DAY ? 1 : 2;
  const invoices: Invoice[] = [];
  for (let age = 0; age < INVOICE_MONTHS; age++) {
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - monthsBack - age, 1));
    const issuedAt = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, INVOICE_DAY - 2, 4)).toISOString();
    INVOICE_CURRENCIES.forEach((currency, index) => {
      const id = `G${String(age * INVOICE_CURRENCIES.length + index + 1).padStart(9, '0')}`;
      invoices.push({ id, billingMonth: month.toISOString().slice(0, 7), currency, issuedAt, versions: id === REISSUED_INVOICE_ID ? 2 : 1 });
    });
  }
  return invoices;
}

/** The invoice with `id` issued by `now`, or undefined for one the partner does not have. */
export function findInvoice(id: string, now: Date): Invoice | undefined {
  return INVOICE_ID_PATTERN.test(id) ? invoiceCatalogue(now).find((invoice) => invoice.id === id) : undefined;
}
