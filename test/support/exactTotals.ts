/**
 * The tests' own exact per-customer sums of the emulator's rows, independent of
 * src/core/decimal.ts: the emulator writes at most 6 decimal places, so each value's JSON text is
 * a whole number of millionths, summed here as BigInt.
 */
import { camelCase } from '../../src/core/dataSchema';

export function millionths(value: unknown): bigint {
  const text = JSON.stringify(value);
  const [whole, fraction = ''] = text.replace('-', '').split('.');
  if (fraction.length > 6 || !/^\d+$/.test(whole ?? '')) throw new RangeError(`${text}: expected a number with at most 6 decimal places`);
  const magnitude = BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
  return text.startsWith('-') ? -magnitude : magnitude;
}

function millionthsText(value: bigint): string {
  const sign = value < 0n ? '-' : '';
  const digits = (value < 0n ? -value : value).toString().padStart(7, '0');
  return `${sign}${digits.slice(0, -6)}.${digits.slice(-6)}`.replace(/\.?0+$/, '');
}

/** Per `${customerId}|${currency}` (lower-case id, as the check keys them): rows and each summed column's sum, by camelCase name. */
export function expectedTotals(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[], currencyColumn: string) {
  const totals = new Map<string, { rowCount: number; sums: bigint[] }>();
  for (const row of rows) {
    const key = `${String(row.CustomerId).toLowerCase()}|${String(row[currencyColumn])}`;
    const entry = totals.get(key) ?? { rowCount: 0, sums: columns.map(() => 0n) };
    entry.rowCount++;
    columns.forEach((column, i) => (entry.sums[i]! += millionths(row[column])));
    totals.set(key, entry);
  }
  return new Map(
    [...totals].map(([key, { rowCount, sums }]) => [
      key,
      { rowCount, sums: Object.fromEntries(columns.map((column, i) => [camelCase(column), millionthsText(sums[i]!)])) },
    ]),
  );
}
