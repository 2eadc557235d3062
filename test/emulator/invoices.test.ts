import { describe, expect, it } from 'vitest';
import { findInvoice, INVOICE_CURRENCIES, INVOICE_MONTHS, invoiceCatalogue, REISSUED_INVOICE_ID } from '../../emulator/invoices';

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
});
