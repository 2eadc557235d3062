import { describe, expect, it } from 'vitest';
import { reconciliationRows } from '../../emulator/reconciliationData';
import { usageRows } from '../../emulator/usageData';
import { MAX_PROBLEM_EXAMPLES, mergeFileResults, startFileCheck, type FileCheckResult } from '../../src/core/dataCheck';
import { epochDay, epochMillis } from '../../src/core/dataRow';
import { camelCase, rowFamilyOf, schemaFor, type RowFamily } from '../../src/core/dataSchema';
import { addDecimal, decimalText, parseDecimal, toScaledInteger } from '../../src/core/decimal';
import { DataFileError } from '../../src/errors';
import { expectedTotals, SUMMED, totalsByKey } from '../support/exactTotals';
import { RECONCILIATION_BASIC, RECONCILIATION_FULL, USAGE_BASIC, USAGE_FULL } from '../support/referenceAttributes';
import { rowBase } from '../support/rows';

const usage = (attributeSet: 'full' | 'basic', count = 600) => usageRows({ ...rowBase, attributeSet, count });
const reconciliation = (attributeSet: 'full' | 'basic') => reconciliationRows({ ...rowBase, attributeSet, usageRowCount: 600 });

/** The check of rows written as the files hold them: one JSON object per line. */
function checkRows(family: RowFamily, attributeSet: 'full' | 'basic', rows: readonly unknown[], file = 'part-00000.json.gz'): FileCheckResult {
  const check = startFileCheck(schemaFor(family, attributeSet), file);
  rows.forEach((row, index) => check.addLine(typeof row === 'string' ? row : JSON.stringify(row), index + 1));
  return check.result();
}

describe('rowFamilyOf: the one mapping from a run kind to its rows', () => {
  it.each([
    ['unbilled-usage', 'usage'],
    ['billed-usage', 'usage'],
    ['unbilled-reconciliation', 'reconciliation'],
    ['billed-reconciliation', 'reconciliation'],
  ] as const)('%s rows are %s rows', (kind, family) => expect(rowFamilyOf(kind)).toBe(family));
});

describe('schemaFor: the columns are the documented attributes of the set', () => {
  it.each([
    ['usage', 'full', USAGE_FULL],
    ['usage', 'basic', USAGE_BASIC],
    ['reconciliation', 'full', RECONCILIATION_FULL],
    ['reconciliation', 'basic', RECONCILIATION_BASIC],
  ] as const)('%s %s', (family, attributeSet, attributes) => {
    expect(
      schemaFor(family, attributeSet)
        .columns.map((column) => column.name)
        .sort(),
    ).toEqual([...attributes].sort());
  });

  it.each([
    ['BillingPreTaxTotal', 'billingPreTaxTotal'],
    ['Quantity', 'quantity'],
    ['TaxTotal', 'taxTotal'],
    ['PCToBCExchangeRate', 'pcToBCExchangeRate'],
  ])('%s is %s in manifest.json', (name, camel) => expect(camelCase(name)).toBe(camel));
});

describe('exact decimals', () => {
  it.each([
    ['0.1', '0.2', '0.3'],
    ['0.0409275', '-0.0409275', '0'],
    ['1.50', '2', '3.5'],
    ['1e3', '1.5E-7', '1000.00000015'],
    ['-12.000001', '0.000001', '-12'],
    ['99999999999999999999.999999', '0.000001', '100000000000000000000'],
  ])('%s + %s = %s', (a, b, sum) => expect(decimalText(addDecimal(parseDecimal(a)!, parseDecimal(b)!))).toBe(sum));

  it.each(['', 'abc', '1,5', '0x10', '1.2.3', 'NaN', 'Infinity', '1e-999999', '1e999999'])('%j is not a decimal', (text) =>
    expect(parseDecimal(text)).toBeUndefined(),
  );

  it('a thousand times 0.1 is exactly 100 (a double sum is 99.9999999999986)', () => {
    const exact = Array.from({ length: 1000 }, () => parseDecimal('0.1')!).reduce(addDecimal);
    expect(decimalText(exact)).toBe('100');
  });

  it.each([
    ['0.846202666', 28, 12, 846202666000n],
    ['-1.5', 9, 4, -15000n],
    ['0.0000000000001', 28, 12, 0n],
    ['0.0000000000005', 28, 12, 1n],
    ['-0.0000000000005', 28, 12, -1n],
    ['0.0024749999999999998', 28, 12, 2475000000n],
    ['9999999999999999.9999999999995', 28, 12, 'has more than 16 integer digits'],
    ['12345678901234567', 28, 12, 'has more than 16 integer digits'],
    ['100000', 9, 4, 'has more than 5 integer digits'],
  ] as const)('%s as DECIMAL(%i,%i) is %s', (text, precision, scale, expected) =>
    expect(toScaledInteger(parseDecimal(text)!, precision, scale)).toBe(expected),
  );
});

describe('dates and instants', () => {
  it.each([
    ['2026-10-14', Date.UTC(2026, 9, 14) / 86_400_000],
    ['2026-10-14T00:00:00Z', Date.UTC(2026, 9, 14) / 86_400_000],
    ['2026-10-14T00:00:00.0000000Z', Date.UTC(2026, 9, 14) / 86_400_000],
    ['10/3/2020', Date.UTC(2020, 9, 3) / 86_400_000],
    // Read leniently (§4.5): the day as written, whatever time and zone follow it.
    ['2026-10-14T13:00:00Z', Date.UTC(2026, 9, 14) / 86_400_000],
    ['2026-10-14T23:30:00-08:00', Date.UTC(2026, 9, 14) / 86_400_000],
    ['2026-10-14 00:00:00', Date.UTC(2026, 9, 14) / 86_400_000],
    ['10/14/2026 12:00:00 AM', Date.UTC(2026, 9, 14) / 86_400_000],
    ['2026-02-30', undefined],
    ['2026-10-14T25:00:00Z', undefined],
    ['14.10.2026', undefined],
  ])('day %s is %s', (text, day) => expect(epochDay(text)).toBe(day));

  it.each([
    ['2026-10-31T00:00:00Z', Date.UTC(2026, 9, 31)],
    ['2026-10-31T23:59:59.123Z', Date.UTC(2026, 9, 31, 23, 59, 59, 123)],
    ['2026-10-31T10:00:00+02:00', Date.UTC(2026, 9, 31, 8)],
    ['2026-10-31T10:00:00', Date.UTC(2026, 9, 31, 10)],
    ['2026-10-31', Date.UTC(2026, 9, 31)],
    ['9/30/2020', Date.UTC(2020, 8, 30)],
    // .NET's seven digits (§2.4 writes 2023-03-09T08:37:48.5046691Z): cut to the millisecond TIMESTAMP(ms) keeps.
    ['2023-03-09T08:37:48.5046691Z', Date.UTC(2023, 2, 9, 8, 37, 48, 504)],
    ['2026-10-31T23:59:59.9999999Z', Date.UTC(2026, 9, 31, 23, 59, 59, 999)],
    ['2026-10-31T10:00:00+0200', Date.UTC(2026, 9, 31, 8)],
    ['2026-10-31T10:00:00-05', Date.UTC(2026, 9, 31, 15)],
    ['2026-10-31T10:00:00+05:30', Date.UTC(2026, 9, 31, 4, 30)],
    ['2026-10-31 10:00:00', Date.UTC(2026, 9, 31, 10)],
    ['10/31/2026 1:05:09 PM', Date.UTC(2026, 9, 31, 13, 5, 9)],
    ['10/31/2026 12:00:00 AM', Date.UTC(2026, 9, 31, 0)],
    ['10/31/2026 12:30 PM', Date.UTC(2026, 9, 31, 12, 30)],
    ['10/31/2026 13:00:00 PM', undefined],
    ['2026-10-31T24:00:00Z', undefined],
    ['2026-10-31T10:00:00+25:00', undefined],
    ['2026-10-31T10:00:00+05:75', undefined],
    ['yesterday', undefined],
  ])('instant %s is %s', (text, millis) => expect(epochMillis(text)).toBe(millis));
});

describe('startFileCheck on the emulator rows', () => {
  it.each([
    ['usage', 'full', () => usage('full')],
    ['usage', 'basic', () => usage('basic')],
    ['reconciliation', 'full', () => reconciliation('full')],
    ['reconciliation', 'basic', () => reconciliation('basic')],
  ] as const)('%s %s: every row counted, no problem, totals per customer equal an independent exact sum', (family, attributeSet, rowsOf) => {
    const rows = rowsOf();
    const result = checkRows(family, attributeSet, rows);
    expect(result.rowCount).toBe(rows.length);
    expect(result.examples).toEqual([]);
    expect(result.problems).toBe(0);
    expect(totalsByKey(result.totals)).toEqual(expectedTotals(rows, SUMMED[family]));
    expect(result.totals.length).toBeGreaterThan(1);
    for (const total of result.totals) expect(total.customerName).toBe(rows.find((row) => row.CustomerId === total.customerId)!.CustomerName);
  });

  it('keys in camelCase and any casing, and the documented renames, read the same (§4.5)', () => {
    const rows = reconciliation('full');
    const renamed = rows.map((row) =>
      Object.fromEntries(
        Object.entries(row).map(([key, value]) => (key === 'Total' ? ['totalForCustomer', value] : [key.charAt(0).toLowerCase() + key.slice(1), value])),
      ),
    );
    expect(checkRows('reconciliation', 'full', renamed)).toEqual(checkRows('reconciliation', 'full', rows));
    const shouting = usage('full', 50).map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key.toUpperCase(), value])));
    expect(checkRows('usage', 'full', shouting)).toEqual(checkRows('usage', 'full', usage('full', 50)));
  });

  it('a rate (0.15) stands for its percentage column (15)', () => {
    const [row] = usage('full', 1);
    const { PartnerEarnedCreditPercentage: _pec, ...rest } = row!;
    const check = startFileCheck(schemaFor('usage', 'full'), 'f');
    const typed = check.addLine(JSON.stringify({ ...rest, rateOfPartnerEarnedCredit: 0.15 }), 1)!;
    const at = schemaFor('usage', 'full').columns.findIndex((column) => column.name === 'PartnerEarnedCreditPercentage');
    expect(decimalText(typed.values[at] as never)).toBe('15');
    expect(check.result().problems).toBe(0);
  });

  it('usage totals are kept apart by pricing currency too: PricingPreTaxTotal is in it, not in the billing currency', () => {
    const [row] = usage('full', 1);
    const rows = [
      { ...row, BillingCurrency: 'EUR', PricingCurrency: 'USD', BillingPreTaxTotal: 1, PricingPreTaxTotal: 1.1, Quantity: 1 },
      { ...row, BillingCurrency: 'EUR', PricingCurrency: 'EUR', BillingPreTaxTotal: 2, PricingPreTaxTotal: 2, Quantity: 1 },
      { ...row, BillingCurrency: 'EUR', PricingCurrency: 'usd', BillingPreTaxTotal: 3, PricingPreTaxTotal: 3.3, Quantity: 1 },
    ];
    const totals = checkRows('usage', 'full', rows).totals;
    expect(totals.map(({ currency, pricingCurrency, rowCount, sums }) => ({ currency, pricingCurrency, rowCount, sums }))).toEqual([
      { currency: 'EUR', pricingCurrency: 'EUR', rowCount: 1, sums: { billingPreTaxTotal: '2', pricingPreTaxTotal: '2', quantity: '1' } },
      { currency: 'EUR', pricingCurrency: 'USD', rowCount: 2, sums: { billingPreTaxTotal: '4', pricingPreTaxTotal: '4.4', quantity: '2' } },
    ]);
    const merged = mergeFileResults([checkRows('usage', 'full', rows.slice(0, 1)), checkRows('usage', 'full', rows.slice(1))]).totals;
    expect(merged).toEqual(totals);
    // Reconciliation sums are all in the one currency.
    expect(checkRows('reconciliation', 'basic', reconciliation('basic')).totals.every((total) => total.pricingCurrency === undefined)).toBe(true);
  });

  it('sums exactly what a double would not: 0.1 ten times is 1', () => {
    const [row] = usage('full', 1);
    const rows = Array.from({ length: 10 }, () => ({ ...row, BillingPreTaxTotal: 0.1, Quantity: 0.7, PricingPreTaxTotal: 1e-7 }));
    const [total] = checkRows('usage', 'full', rows).totals;
    expect(total!.sums).toEqual({ billingPreTaxTotal: '1', pricingPreTaxTotal: '0.000001', quantity: '7' });
  });
});

describe('parseExactJson: every number read at its exact value, on the fast path and the exact one', () => {
  const [row] = usage('full', 1) as [Record<string, unknown>];
  const schema = schemaFor('usage', 'full');
  const at = (name: string) => schema.columns.findIndex((column) => column.name === name);
  const typedLine = (line: string) => startFileCheck(schema, 'f').addLine(line, 1)!;

  it('numbers of up to 15 significant digits (read through a double) keep their exact decimal value', () => {
    // Deterministic spread: 1 to 15 digits, 0 to 12 of them after the point, either sign.
    for (let i = 0; i < 2_000; i++) {
      const digits = String((BigInt(i) * 7_919_123_456_791n) % 10n ** BigInt(1 + (i % 15))).padStart(1 + (i % 15), '0');
      const places = Math.min(i % 13, digits.length - 1);
      const whole = digits.slice(0, digits.length - places).replace(/^0+(?=\d)/, '');
      const text = `${i % 2 ? '-' : ''}${whole}${places ? `.${digits.slice(-places)}` : ''}`;
      const typed = typedLine(JSON.stringify(row).replace(/"Quantity":[^,]+/, `"Quantity":${text}`));
      expect(decimalText(typed.values[at('Quantity')] as never), text).toBe(decimalText(parseDecimal(text)!));
    }
  });

  it.each([
    ['0.0024749999999999998', '0.0024749999999999998'],
    ['12345678.123456789012', '12345678.123456789012'],
    ['2.5E3', '2500'],
  ])('%s, which a double would not keep, is read from its source text', (source, value) => {
    const typed = typedLine(JSON.stringify(row).replace(/"Quantity":[^,]+/, `"Quantity":${source}`));
    expect(decimalText(typed.values[at('Quantity')] as never)).toBe(value);
  });

  it('1e-400 (0 as a double) is no decimal the check keeps: a problem, not a zero', () => {
    const typed = typedLine(JSON.stringify(row).replace(/"Quantity":[^,]+/, '"Quantity":1e-400'));
    expect(typed.problems).toEqual(["Quantity is '1e-400': expected a decimal number"]);
    expect(typed.values[at('Quantity')]).toBeNull();
  });

  it('a number nested in a string column is written back as its source text', () => {
    const line = JSON.stringify({ ...row, AdditionalInfo: 'x' }).replace('"AdditionalInfo":"x"', '"AdditionalInfo":{"a":0.0024749999999999998,"b":[1.5,2]}');
    expect(typedLine(line).values[at('AdditionalInfo')]).toBe('{"a":0.0024749999999999998,"b":[1.5,2]}');
  });

  it.each([
    ['first in an array', '{"b":[0.12345678901234567890]}'],
    ['later in an array', '{"b":[1,0.12345678901234567890]}'],
    ['in a top-level array', '[2, 12345678901234567890]'],
  ])('a long number %s is written back as its source text, not through a double', (_where, nested) => {
    const line = JSON.stringify({ ...row, AdditionalInfo: 'x' }).replace('"AdditionalInfo":"x"', `"AdditionalInfo":${nested}`);
    expect(typedLine(line).values[at('AdditionalInfo')]).toBe(nested.replace(', ', ','));
  });

  it.each([['{"rate":"hourly"}'], ['{"rate":0.5}']])(
    'a string column written as an object with a key "rate" (Tags: %s) is that JSON text, not a rate',
    (tags) => {
      const typed = typedLine(JSON.stringify({ ...row, Tags: JSON.parse(tags) as unknown }));
      expect(typed.values[at('Tags')]).toBe(tags);
      expect(typed.problems).toEqual([]);
    },
  );

  it('a line sent down the exact path by a long digit run in a string checks the same as one that is not', () => {
    const rows = usage('full', 200);
    const marked = rows.map((one) => ({ ...one, SubscriptionDescription: 'order:12345678901234567890' }));
    expect(checkRows('usage', 'full', marked)).toEqual(checkRows('usage', 'full', rows));
  });

  it('a file whose rows change key spelling midway reads each row by its own keys', () => {
    const rows = usage('full', 40);
    const mixed = rows.map((one, index) => (index % 2 ? Object.fromEntries(Object.entries(one).map(([key, value]) => [key.toLowerCase(), value])) : one));
    expect(checkRows('usage', 'full', mixed)).toEqual(checkRows('usage', 'full', rows));
  });
});

describe('startFileCheck: each problem is found, named with file and line, and counted', () => {
  const [usageRow] = usage('full', 1) as [Record<string, unknown>];
  const [reconciliationRow] = reconciliation('basic') as [Record<string, unknown>];
  const without = (row: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(row).filter(([name]) => name !== key));

  it.each([
    ['usage', 'full', without(usageRow, 'CustomerId'), 'CustomerId is missing'],
    ['usage', 'full', { ...usageRow, BillingPreTaxTotal: null }, 'BillingPreTaxTotal is missing'],
    ['usage', 'full', { ...usageRow, CustomerName: '' }, 'CustomerName is missing'],
    ['usage', 'full', without(usageRow, 'MeterId'), 'MeterId is missing'],
    ['usage', 'full', { ...usageRow, Quantity: 'lots' }, "Quantity is 'lots': expected a decimal number"],
    [
      'usage',
      'full',
      { ...usageRow, UnitPrice: 0.0000000000001 },
      "UnitPrice is '1e-13': more than 12 decimal places; the Parquet copy keeps it rounded to 12 (DECIMAL(28,12))",
    ],
    ['usage', 'full', { ...usageRow, UsageDate: '2026-13-14' }, "UsageDate is '2026-13-14': expected a date (ISO 8601 or M/D/YYYY)"],
    ['usage', 'full', { ...usageRow, ChargeStartDate: 'soon' }, "ChargeStartDate is 'soon': expected a date-time (ISO 8601 or M/D/YYYY)"],
    ['usage', 'full', { ...usageRow, customerid: 'e0c1b3f5-0000-0000-0000-000000000000' }, "'customerid' repeats CustomerId in another spelling"],
    ['usage', 'full', [usageRow], 'the line is an array: expected a JSON object'],
    ['usage', 'full', 42, 'the line is a number: expected a JSON object'],
    ['usage', 'full', '   ', 'the line is blank: expected a JSON object'],
    ['reconciliation', 'basic', without(reconciliationRow, 'Subtotal'), 'Subtotal is missing'],
    ['reconciliation', 'basic', { ...reconciliationRow, Total: '12,50' }, "Total is '12,50': expected a decimal number"],
  ] as const)('%s %s, bad line %#', (family, attributeSet, bad, problem) => {
    const good = family === 'usage' ? usageRow : reconciliationRow;
    const lines = [JSON.stringify(good), typeof bad === 'string' ? bad : JSON.stringify(bad), JSON.stringify(good)];
    const result = checkRows(family, attributeSet, lines, 'part-7.json.gz');
    expect(result.examples).toEqual([{ file: 'part-7.json.gz', line: 2, problem }]);
    expect(result.problems).toBe(1);
  });

  it('the same rows without the bad one have no problem (the check above is not always failing)', () => {
    expect(checkRows('usage', 'full', [usageRow, usageRow]).problems).toBe(0);
    expect(checkRows('reconciliation', 'basic', [reconciliationRow]).problems).toBe(0);
  });

  it('a basic row is not asked for full-only key fields', () => {
    const [basic] = usage('basic', 1);
    expect(checkRows('usage', 'basic', [basic]).problems).toBe(0);
    expect(checkRows('usage', 'full', [basic]).examples.map((example) => example.problem)).toEqual(
      expect.arrayContaining(['MeterId is missing', 'Unit is missing']),
    );
  });

  it('counts every problem but keeps the first few as examples', () => {
    const rows = Array.from({ length: 25 }, () => without(usageRow, 'CustomerId'));
    const result = checkRows('usage', 'full', rows);
    expect(result.problems).toBe(25);
    expect(result.examples).toHaveLength(MAX_PROBLEM_EXAMPLES);
    expect(result.examples.map((example) => example.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(result.rowCount).toBe(25);
  });

  it.each(['{"CustomerId": "x"', 'not json', '{"a":1}{"b":2}'])('a line that is not JSON fails, naming the file and line: %j', (line) => {
    const check = startFileCheck(schemaFor('usage', 'full'), 'part-3.json.gz');
    check.addLine(JSON.stringify(usageRow), 1);
    let thrown: unknown;
    try {
      check.addLine(line, 2);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DataFileError);
    expect((thrown as DataFileError).message).toMatch(/^'part-3\.json\.gz' line 2 is not JSON \(/);
    expect(thrown).toMatchObject({ file: 'part-3.json.gz', line: 2 });
  });
});

describe('mergeFileResults', () => {
  it("the run's totals are the sum of its files', the same as one check over all rows", () => {
    const rows = usage('full', 900);
    const files = [rows.slice(0, 300), rows.slice(300, 650), rows.slice(650)].map((part, i) => checkRows('usage', 'full', part, `part-${i}`));
    const merged = mergeFileResults(files);
    const whole = checkRows('usage', 'full', rows);
    expect(merged.rowCount).toBe(900);
    expect(merged.totals).toEqual(whole.totals);
    expect(merged.check).toEqual({ problems: 0, examples: [] });
  });

  it('problems add up across files; examples keep file order and are capped', () => {
    const [row] = usage('full', 1) as [Record<string, unknown>];
    const bad = { ...row, Quantity: 'x' };
    const first = checkRows(
      'usage',
      'full',
      Array.from({ length: 8 }, () => bad),
      'a',
    );
    const second = checkRows(
      'usage',
      'full',
      Array.from({ length: 5 }, () => bad),
      'b',
    );
    const merged = mergeFileResults([first, second]);
    expect(merged.check.problems).toBe(13);
    expect(merged.check.examples.map((example) => `${example.file}:${example.line}`)).toEqual([
      'a:1',
      'a:2',
      'a:3',
      'a:4',
      'a:5',
      'a:6',
      'a:7',
      'a:8',
      'b:1',
      'b:2',
    ]);
  });
});
