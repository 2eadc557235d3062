import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { planExport } from '../../emulator/exportFiles';
import { gzipJsonLines, usageRows, type UsageRowsOptions } from '../../emulator/usageData';
import { USAGE_BASIC, USAGE_FULL } from '../support/referenceAttributes';

const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
const OPTIONS: UsageRowsOptions = { seed: 7, billingMonth: '2024-02', currency: 'EUR', attributeSet: 'full', count: 300, partnerTenantId: TENANT };

describe('usageRows', () => {
  it('emits exactly the documented full attributes plus PCToBCExchangeRateDate', () => {
    const rows = usageRows(OPTIONS);

    expect(USAGE_FULL).toHaveLength(55);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual([...USAGE_FULL].sort());
  });

  it('emits only the basic attributes for attributeSet basic, with the same values as full', () => {
    const full = usageRows({ ...OPTIONS, count: 20 });
    const basic = usageRows({ ...OPTIONS, count: 20, attributeSet: 'basic' });

    expect(USAGE_BASIC).toHaveLength(30);
    basic.forEach((row, index) => {
      expect(Object.keys(row).sort()).toEqual([...USAGE_BASIC].sort());
      for (const attribute of USAGE_BASIC) expect(row[attribute]).toEqual(full[index]![attribute]);
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

  it('spreads usage over several customers with one to three Azure subscriptions each', () => {
    const subscriptionsByCustomer = new Map<unknown, Set<unknown>>();
    for (const row of usageRows({ ...OPTIONS, count: 2000 })) {
      const subscriptions = subscriptionsByCustomer.get(row.CustomerId) ?? new Set();
      subscriptionsByCustomer.set(row.CustomerId, subscriptions.add(row.EntitlementId));
    }

    const subscriptionCounts = [...subscriptionsByCustomer.values()].map((subscriptions) => subscriptions.size);
    expect(subscriptionCounts.length).toBeGreaterThanOrEqual(3);
    expect(subscriptionCounts.every((count) => count >= 1 && count <= 3)).toBe(true);
    expect(new Set(subscriptionCounts).size).toBeGreaterThan(1);
  });

  it('bills each customer in one currency: the exports of two currencies never share a customer', () => {
    const currenciesByCustomer = new Map<unknown, Set<unknown>>();
    for (const currency of ['EUR', 'USD', 'GBP', 'JPY', 'SEK', 'BRL']) {
      for (const row of usageRows({ ...OPTIONS, currency, count: 500 })) {
        expect(row.BillingCurrency).toBe(currency);
        currenciesByCustomer.set(row.CustomerId, (currenciesByCustomer.get(row.CustomerId) ?? new Set()).add(currency));
      }
    }

    expect(currenciesByCustomer.size).toBeGreaterThanOrEqual(10);
    for (const [customer, currencies] of currenciesByCustomer) expect([customer, [...currencies]]).toEqual([customer, [expect.any(String)]]);
  });

  it('gives each meter id one region and one list price, so a meter id names a regional meter', () => {
    const meters = new Map<unknown, string>();
    for (const currency of ['EUR', 'USD', 'GBP', 'JPY', 'AUD', 'INR']) {
      for (const row of usageRows({ ...OPTIONS, currency, count: 500 })) {
        const regionAndPrice = `${String(row.MeterRegion)} @ ${String(row.UnitPrice)}`;
        expect([row.MeterId, meters.get(row.MeterId) ?? regionAndPrice]).toEqual([row.MeterId, regionAndPrice]);
        meters.set(row.MeterId, regionAndPrice);
      }
    }

    const regionsByMeterName = new Map<unknown, Set<unknown>>();
    for (const currency of ['EUR', 'USD']) {
      for (const row of usageRows({ ...OPTIONS, currency, count: 500 })) {
        regionsByMeterName.set(row.MeterName, (regionsByMeterName.get(row.MeterName) ?? new Set()).add(row.MeterRegion));
      }
    }
    // The same kind of meter in several regions has several ids (and prices), not one.
    expect(regionsByMeterName.get('D2s v5')?.size).toBeGreaterThan(1);
    expect(new Set([...meters.keys()]).size).toBeGreaterThan(regionsByMeterName.size);
  });

  it('has no usage after usageThrough, the last day of a month-to-date export', () => {
    const rows = usageRows({ ...OPTIONS, count: 400, usageThrough: '2024-02-09' });

    const days = rows.map((row) => String(row.UsageDate).slice(0, 10));
    expect(days.every((day) => day >= '2024-02-01' && day <= '2024-02-09')).toBe(true);
    expect(days).toContain('2024-02-09');
    expect(usageRows({ ...OPTIONS, count: 50, usageThrough: '2024-02-01' }).every((row) => row.UsageDate === '2024-02-01T00:00:00Z')).toBe(true);
  });

  it.each([
    [{ usageThrough: '2024-03-01' }, "usageThrough is '2024-03-01': expected a day of 2024-02"],
    [{ usageThrough: '2024-02-30' }, "usageThrough is '2024-02-30'"],
    [{ usageThrough: 'yesterday' }, "usageThrough is 'yesterday'"],
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

describe('the rows of an emulated export', () => {
  const daysIn = (plan: ReturnType<typeof planExport>): string[] =>
    plan.files.flatMap((file) =>
      gunzipSync(Buffer.concat(file.parts))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => String((JSON.parse(line) as Record<string, unknown>).UsageDate).slice(0, 10)),
    );
  const plan = (billingPeriod: 'current' | 'last', requestedAt: string): ReturnType<typeof planExport> =>
    planExport({
      request: { kind: 'unbilled-usage', currencyCode: 'EUR', billingPeriod, attributeSet: 'full' },
      scenario: { seed: 4, fileCount: 2, rowsPerFile: 300 },
      partnerTenantId: TENANT,
      requestedAt: new Date(requestedAt),
    });

  it('month to date: no usage after the day before the export (usage appears a day late)', () => {
    const days = daysIn(plan('current', '2024-02-10T08:00:00Z'));

    expect(days.every((day) => day >= '2024-02-01' && day <= '2024-02-09')).toBe(true);
    expect(days).toContain('2024-02-09');
  });

  it('month to date on the 1st: only the 1st', () => {
    expect(new Set(daysIn(plan('current', '2024-03-01T06:00:00Z')))).toEqual(new Set(['2024-03-01']));
  });

  it('last month: the whole month', () => {
    const days = daysIn(plan('last', '2024-03-03T06:00:00Z'));

    expect(days.every((day) => day >= '2024-02-01' && day <= '2024-02-29')).toBe(true);
    expect(days).toContain('2024-02-29');
  });
});
