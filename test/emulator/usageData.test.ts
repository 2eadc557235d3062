import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BASIC_USAGE_ATTRIBUTES, FULL_USAGE_ATTRIBUTES, gzipJsonLines, usageRows, type UsageRowsOptions } from '../../emulator/usageData';

const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
const OPTIONS: UsageRowsOptions = { seed: 7, billingMonth: '2024-02', currency: 'EUR', attributeSet: 'full', count: 300, partnerTenantId: TENANT };

describe('usageRows', () => {
  it('emits exactly the documented full attributes plus PCToBCExchangeRateDate', () => {
    const rows = usageRows(OPTIONS);

    expect(FULL_USAGE_ATTRIBUTES).toHaveLength(55);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual([...FULL_USAGE_ATTRIBUTES].sort());
  });

  it('emits only the basic attributes for attributeSet basic, with the same values as full', () => {
    const full = usageRows({ ...OPTIONS, count: 20 });
    const basic = usageRows({ ...OPTIONS, count: 20, attributeSet: 'basic' });

    expect(BASIC_USAGE_ATTRIBUTES).toHaveLength(30);
    basic.forEach((row, index) => {
      expect(Object.keys(row).sort()).toEqual([...BASIC_USAGE_ATTRIBUTES].sort());
      for (const attribute of BASIC_USAGE_ATTRIBUTES) expect(row[attribute]).toEqual(full[index]![attribute]);
    });
  });

  it('is a pure function of the seed and row index, whatever the chunking', () => {
    const whole = usageRows(OPTIONS);
    const pieces = [...usageRows({ ...OPTIONS, count: 100 }), ...usageRows({ ...OPTIONS, count: 200, startIndex: 100 })];

    expect(pieces).toEqual(whole);
    expect(usageRows({ ...OPTIONS, seed: 8 })).not.toEqual(whole);
  });

  it('describes unbilled usage inside the billing month, in the requested billing currency', () => {
    for (const row of usageRows(OPTIONS)) {
      expect(row).toMatchObject({
        PartnerId: TENANT,
        InvoiceNumber: '',
        BillingCurrency: 'EUR',
        PricingCurrency: 'USD',
        ChargeStartDate: '2024-02-01T00:00:00Z',
        ChargeEndDate: '2024-02-29T00:00:00Z',
      });
      expect(row.UsageDate).toMatch(/^2024-02-(0[1-9]|1\d|2\d)T00:00:00Z$/);
      expect([0, 15]).toContain(row.PartnerEarnedCreditPercentage);
      expect(row.ResourceURI).toContain(`/subscriptions/${String(row.EntitlementId)}/resourceGroups/`);
    }
  });

  it('prices consistently: effective price after PEC, totals converted at the exchange rate', () => {
    for (const row of usageRows(OPTIONS)) {
      const number = (attribute: string): number => row[attribute] as number;
      expect(number('EffectiveUnitPrice')).toBeCloseTo(number('UnitPrice') * (1 - number('PartnerEarnedCreditPercentage') / 100), 6);
      expect(number('PricingPreTaxTotal')).toBeCloseTo(number('EffectiveUnitPrice') * number('Quantity'), 5);
      expect(number('BillingPreTaxTotal')).toBeCloseTo(number('PricingPreTaxTotal') * number('PCToBCExchangeRate'), 5);
    }
  });

  it('spreads usage over at least five customers with one to three Azure subscriptions each', () => {
    const subscriptionsByCustomer = new Map<unknown, Set<unknown>>();
    for (const row of usageRows({ ...OPTIONS, count: 2000 })) {
      const subscriptions = subscriptionsByCustomer.get(row.CustomerId) ?? new Set();
      subscriptionsByCustomer.set(row.CustomerId, subscriptions.add(row.EntitlementId));
    }

    const subscriptionCounts = [...subscriptionsByCustomer.values()].map((subscriptions) => subscriptions.size);
    expect(subscriptionCounts.length).toBeGreaterThanOrEqual(5);
    expect(subscriptionCounts.every((count) => count >= 1 && count <= 3)).toBe(true);
    expect(new Set(subscriptionCounts).size).toBeGreaterThan(1);
  });

  it.each([
    [{ billingMonth: '2024-13' }, "billingMonth is '2024-13'"],
    [{ currency: 'euro' }, "currency is 'euro'"],
    [{ count: -1 }, 'count is -1'],
    [{ startIndex: 1.5 }, 'startIndex is 1.5'],
  ])('refuses %j', (override, message) => {
    expect(() => usageRows({ ...OPTIONS, ...override })).toThrow(message);
  });
});

describe('gzipJsonLines', () => {
  it('writes one JSON object per line, each ending in a newline', () => {
    const rows = [{ a: 1 }, { b: 'two' }];

    expect(gunzipSync(gzipJsonLines(rows)).toString('utf8')).toBe('{"a":1}\n{"b":"two"}\n');
  });

  it('produces identical bytes for identical rows', () => {
    const rows = usageRows({ ...OPTIONS, count: 50 });

    expect(gzipJsonLines(rows).equals(gzipJsonLines(usageRows({ ...OPTIONS, count: 50 })))).toBe(true);
  });
});
