import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../../emulator/billingScenario';
import {
  currentVersion,
  describeInvoices,
  findInvoice,
  INVOICE_CURRENCIES,
  INVOICE_MONTHS,
  invoiceCatalogue,
  lookUpInvoice,
  REISSUED_INVOICE_ID,
} from '../../emulator/invoices';

describe('invoiceCatalogue', () => {
  const now = new Date('2026-12-10T12:00:00Z');
  const invoices = invoiceCatalogue(now);

  it('numbers invoices from the newest: G000000001 is last month in EUR once its invoice is out', () => {
    expect(invoices).toHaveLength(INVOICE_MONTHS * INVOICE_CURRENCIES.length);
    expect(invoices[0]).toEqual({ id: 'G000000001', billingMonth: '2026-11', currency: 'EUR', issuedAt: '2026-12-06T04:00:00.000Z', versions: 1 });
    expect(invoices.find((invoice) => invoice.id === 'G000000004')).toMatchObject({ billingMonth: '2026-10', currency: 'EUR' });
    expect(new Set(invoices.map((invoice) => invoice.id)).size).toBe(invoices.length);
    for (const invoice of invoices) {
      expect(invoice.id).toMatch(/^G\d{9}$/);
      expect(Date.parse(invoice.issuedAt)).toBeLessThan(now.getTime());
    }
  });

  it('before the 8th the newest invoice is for the month before last', () => {
    expect(invoiceCatalogue(new Date('2026-12-03T00:00:00Z'))[0]).toMatchObject({ id: 'G000000001', billingMonth: '2026-10' });
  });

  it('has one re-issued invoice with two versions', () => {
    expect(invoices.filter((invoice) => invoice.versions === 2).map((invoice) => invoice.id)).toEqual([REISSUED_INVOICE_ID]);
  });

  it('finds an invoice the partner has, and nothing for an unknown or malformed id', () => {
    expect(findInvoice('G000000003', now)).toMatchObject({ currency: 'GBP', billingMonth: '2026-11' });
    expect(findInvoice('G999999999', now)).toBeUndefined();
    expect(findInvoice('g000000001', now)).toBeUndefined();
    expect(findInvoice('G00000001', now)).toBeUndefined();
  });

  it('tells an exportable invoice from an older one of the partner and from one it never had', () => {
    const oldest = invoices.at(-1)!;
    const olderId = `G${String(invoices.length + 1).padStart(9, '0')}`;

    expect(lookUpInvoice('G000000001', now)).toEqual({ kind: 'found', invoice: invoices[0] });
    expect(lookUpInvoice(olderId, now)).toEqual({
      kind: 'tooOld',
      invoice: expect.objectContaining({ id: olderId, currency: 'EUR', billingMonth: '2025-11' }),
      firstBillingMonth: oldest.billingMonth,
    });
    expect(oldest.billingMonth).toBe('2025-12');
    expect(lookUpInvoice('G999999999', now)).toEqual({ kind: 'unknown' });
    expect(lookUpInvoice('G-1', now)).toEqual({ kind: 'unknown' });
  });

  it('holds no invoice before September 2023, when billed data begins: those are too old', () => {
    const early = new Date('2024-01-10T00:00:00Z');
    const catalogue = invoiceCatalogue(early);

    expect(catalogue.map((invoice) => invoice.billingMonth).at(-1)).toBe('2023-09');
    expect(catalogue).toHaveLength(4 * INVOICE_CURRENCIES.length);
    expect(lookUpInvoice(`G${String(catalogue.length + 1).padStart(9, '0')}`, early)).toMatchObject({
      kind: 'tooOld',
      invoice: { billingMonth: '2023-08' },
      firstBillingMonth: '2023-09',
    });
  });

  it('serves the re-issued invoice in its second version, issued a day later, only once re-issued', () => {
    const reissued = findInvoice(REISSUED_INVOICE_ID, now)!;
    const other = findInvoice('G000000001', now)!;

    expect(currentVersion(reissued, false)).toMatchObject({ version: 1, versionIssuedAt: reissued.issuedAt });
    expect(currentVersion(reissued, true)).toMatchObject({ version: 2, versionIssuedAt: '2026-12-07T04:00:00.000Z' });
    expect(currentVersion(other, true)).toMatchObject({ version: 1, versionIssuedAt: other.issuedAt });
  });
});

describe('describeInvoices', () => {
  it("names the range of invoice ids and months, and the newest month's invoices with the re-issued one marked", () => {
    expect(describeInvoices(new Date('2026-12-10T12:00:00Z'))).toBe(
      'Billed exports: invoices G000000001 to G000000036, billing months 2025-12 to 2026-11, newest first (2026-11: G000000001 EUR, G000000002 USD (re-issued), G000000003 GBP).',
    );
    expect(describeInvoices(new Date('2023-10-01T00:00:00Z'))).toBe('Billed exports: no invoices yet (billed data starts with 2023-09).');
  });
});

describe('resolveScenario, invoice and no-data knobs', () => {
  it('defaults to asynchronous invoice errors, the first version of the re-issued invoice and data in every currency', () => {
    expect(resolveScenario()).toMatchObject({ invoiceErrors: 'failedOperation', invoiceReissued: false, noDataCurrencies: [] });
  });

  it.each([
    [{ invoiceErrors: 'sync' as never }, "invoiceErrors is 'sync': expected 'failedOperation' or 'badRequest'"],
    [{ invoiceReissued: 'yes' as never }, 'invoiceReissued is "yes": expected true or false'],
    [{ noDataCurrencies: ['NOK', 'nok'] }, 'noDataCurrencies has ["nok"]: expected upper-case 3-letter ISO 4217 codes'],
  ])('refuses %j', (overrides, message) => {
    expect(() => resolveScenario(overrides)).toThrow(message);
  });
});
