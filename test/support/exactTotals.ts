/**
 * The tests' own exact per-customer sums of the emulator's rows, independent of
 * src/core/decimal.ts: the emulator writes at most 6 decimal places, so each value's JSON text is
 * a whole number of millionths, summed here as BigInt.
 */
import { camelCase } from '../../src/core/dataSchema';

/**
 * The columns the check sums per customer, and the currency columns they are kept apart by, of
 * each row family (written out here, not taken from src's schema): usage's PricingPreTaxTotal is
 * in PricingCurrency, the rest in the billing currency.
 */
export const SUMMED = {
  usage: { columns: ['BillingPreTaxTotal', 'PricingPreTaxTotal', 'Quantity'], currency: 'BillingCurrency', pricingCurrency: 'PricingCurrency' },
  reconciliation: { columns: ['Subtotal', 'TaxTotal', 'Total'], currency: 'Currency' },
} as const;

type Summed = { readonly columns: readonly string[]; readonly currency: string; readonly pricingCurrency?: string };

/** The exact sum of decimal texts of at most `scale` places (BigInt in units of 10^-scale), as decimal text. */
export function scaledSum(texts: readonly string[], scale: number): string {
  let sum = 0n;
  for (const text of texts) {
    const [whole, fraction = ''] = text.replace('-', '').split('.');
    if (fraction.length > scale || !/^\d+$/.test(whole ?? '')) throw new RangeError(`${text}: expected a number with at most ${scale} decimal places`);
    const magnitude = BigInt(whole! + fraction.padEnd(scale, '0'));
    sum += text.startsWith('-') ? -magnitude : magnitude;
  }
  const sign = sum < 0n ? '-' : '';
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0');
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`.replace(/\.?0+$/, '');
}

/**
 * Per `${customerId}|${currency}|${pricingCurrency}` (lower-case id, as the check keys them; no
 * pricing currency for reconciliation): rows and each summed column's sum, by camelCase name.
 */
export function expectedTotals(rows: ReadonlyArray<Record<string, unknown>>, { columns, currency, pricingCurrency }: Summed) {
  const byKey = new Map<string, Array<Record<string, unknown>>>();
  for (const row of rows) {
    const key = `${String(row.CustomerId).toLowerCase()}|${String(row[currency])}|${pricingCurrency ? String(row[pricingCurrency]) : ''}`;
    const keyed = byKey.get(key) ?? [];
    keyed.push(row);
    byKey.set(key, keyed);
  }
  return new Map(
    [...byKey].map(([key, keyed]) => [
      key,
      {
        rowCount: keyed.length,
        sums: Object.fromEntries(
          columns.map((column) => [
            camelCase(column),
            scaledSum(
              keyed.map((row) => JSON.stringify(row[column])),
              6,
            ),
          ]),
        ),
      },
    ]),
  );
}

/** Totals as the app reports them, keyed and shaped like expectedTotals: their `sums`, or (manifest.json, `report`) the summed columns' own fields. */
export function totalsByKey(totals: readonly object[], flatColumns?: readonly string[]) {
  return new Map(
    totals.map((total) => {
      const fields = total as Record<string, unknown>;
      const sums = flatColumns ? Object.fromEntries(flatColumns.map((column) => [camelCase(column), fields[camelCase(column)]])) : fields.sums;
      return [
        `${String(fields.customerId)}|${String(fields.currency)}|${typeof fields.pricingCurrency === 'string' ? fields.pricingCurrency : ''}`,
        { rowCount: fields.rowCount, sums },
      ];
    }),
  );
}
