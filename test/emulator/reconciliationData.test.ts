import { describe, expect, it } from 'vitest';
import { reconciliationRows, type ReconciliationRowsOptions } from '../../emulator/reconciliationData';
import { usageRows } from '../../emulator/usageData';
import { RECONCILIATION_BASIC, RECONCILIATION_FULL } from '../support/referenceAttributes';

const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
const OPTIONS: ReconciliationRowsOptions = {
  seed: 5,
  billingMonth: '2026-10',
  currency: 'EUR',
  attributeSet: 'full',
  usageRowCount: 800,
  partnerTenantId: TENANT,
};
const rows = reconciliationRows(OPTIONS);
const usage = usageRows({ seed: 5, billingMonth: '2026-10', currency: 'EUR', attributeSet: 'full', count: 800, partnerTenantId: TENANT });
const isAzure = (row: Record<string, unknown>): boolean => row.ProductCategory === 'Azure';

describe('reconciliationRows', () => {
  it('emits exactly the documented full attributes, and for basic the basic ones with the same values', () => {
    expect(RECONCILIATION_FULL).toHaveLength(47);
    expect(RECONCILIATION_BASIC).toHaveLength(35);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual([...RECONCILIATION_FULL].sort());

    const basic = reconciliationRows({ ...OPTIONS, attributeSet: 'basic' });
    expect(basic).toHaveLength(rows.length);
    basic.forEach((row, index) => {
      expect(Object.keys(row).sort()).toEqual([...RECONCILIATION_BASIC].sort());
      for (const attribute of RECONCILIATION_BASIC) expect(row[attribute]).toEqual(rows[index]![attribute]);
    });
  });

  it('holds licences and Azure plan usage for the same customers as the usage export', () => {
    const customers = (items: ReadonlyArray<Record<string, unknown>>): Set<unknown> => new Set(items.map((row) => row.CustomerId));

    expect(customers(rows.filter(isAzure))).toEqual(customers(usage));
    expect(customers(rows.filter((row) => !isAzure(row)))).toEqual(customers(usage));
    expect(new Set(rows.filter(isAzure).map((row) => row.SubscriptionId))).toEqual(new Set(usage.map((row) => row.SubscriptionId)));
  });

  it("agrees with usage: each Azure plan line's billable quantity is the summed usage of its subscription, meter and price", () => {
    const usageByKey = new Map<string, number>();
    for (const row of usage) {
      const key = `${String(row.CustomerId)}|${String(row.ProductId)}|${String(row.SkuId)}|${String(row.EffectiveUnitPrice)}|${String(row.MeterName)}`;
      usageByKey.set(key, (usageByKey.get(key) ?? 0) + (row.Quantity as number));
    }
    const reconciledByKey = new Map<string, number>();
    for (const row of rows.filter(isAzure)) {
      const meterName = String(row.TermAndBillingCycle).replace(/ \(.*\)$/, '');
      const key = `${String(row.CustomerId)}|${String(row.ProductId)}|${String(row.SkuId)}|${String(row.EffectiveUnitPrice)}|${meterName}`;
      reconciledByKey.set(key, (reconciledByKey.get(key) ?? 0) + (row.BillableQuantity as number));
    }

    expect([...reconciledByKey.keys()].sort()).toEqual([...usageByKey.keys()].sort());
    for (const [key, quantity] of usageByKey) expect(reconciledByKey.get(key)).toBeCloseTo(quantity, 4);
  });

  it("follows Partner Center's subtotal rules, and Total is Subtotal plus TaxTotal", () => {
    const roundDown2 = (value: number): number => Math.floor(Number((value * 100).toFixed(6))) / 100;
    for (const row of rows) {
      const number = (attribute: string): number => row[attribute] as number;
      const expected = isAzure(row)
        ? roundDown2(roundDown2(number('EffectiveUnitPrice') * number('BillableQuantity')) * number('PCToBCExchangeRate'))
        : roundDown2(number('EffectiveUnitPrice') * number('PCToBCExchangeRate')) * number('BillableQuantity');
      expect(number('Subtotal')).toBeCloseTo(expected, 2);
      expect(number('Total')).toBeCloseTo(number('Subtotal') + number('TaxTotal'), 2);
      expect(row).toMatchObject({
        Currency: 'EUR',
        PricingCurrency: 'USD',
        InvoiceNumber: '',
        ChargeStartDate: '2026-10-01T00:00:00Z',
        ChargeEndDate: '2026-10-31T00:00:00Z',
      });
    }
    expect(rows.some((row) => (row.TaxTotal as number) > 0)).toBe(true);
  });

  it('carries the invoice number on billed line items, and is deterministic', () => {
    const billed = reconciliationRows({ ...OPTIONS, invoiceNumber: 'G000000004' });

    expect(billed.every((row) => row.InvoiceNumber === 'G000000004')).toBe(true);
    expect(reconciliationRows(OPTIONS)).toEqual(rows);
    expect(reconciliationRows({ ...OPTIONS, seed: 6 })).not.toEqual(rows);
  });

  it("adds the re-issue's customerCredit line, and only that, to version 2 of an invoice", () => {
    const first = reconciliationRows({ ...OPTIONS, invoiceNumber: 'G000000002' });
    const second = reconciliationRows({ ...OPTIONS, invoiceNumber: 'G000000002', invoiceVersion: 2 });
    const credits = second.filter((row) => row.ChargeType === 'customerCredit');

    expect(credits).toHaveLength(1);
    expect(second.filter((row) => row.ChargeType !== 'customerCredit')).toEqual(first);
    const [credit] = credits;
    const credited = first.find((row) => row.CustomerId === credit!.CustomerId && row.ProductId === credit!.ProductId)!;
    expect(credit).toMatchObject({ InvoiceNumber: 'G000000002', CreditReasonCode: 'Seat count correction', SubscriptionId: credited.SubscriptionId });
    expect(credit!.BillableQuantity as number).toBeLessThan(0);
    expect(credit!.Subtotal as number).toBeLessThan(0);
    expect(credit!.Total as number).toBeCloseTo((credit!.Subtotal as number) + (credit!.TaxTotal as number), 2);
    expect(credit!.ReferenceId).not.toBe(credited.ReferenceId);
  });

  it('never shares a customer between currencies', () => {
    const usd = new Set(reconciliationRows({ ...OPTIONS, currency: 'USD' }).map((row) => row.CustomerId));

    expect(rows.filter((row) => usd.has(row.CustomerId))).toEqual([]);
  });

  it.each([
    [{ usageRowCount: -1 }, 'usageRowCount is -1'],
    [{ billingMonth: '2026-13' }, "billingMonth is '2026-13'"],
  ])('refuses %j', (override, message) => {
    expect(() => reconciliationRows({ ...OPTIONS, ...override })).toThrow(message);
  });
});
