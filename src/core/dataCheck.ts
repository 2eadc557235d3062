/**
 * The data check of a landed export: per file, the rows counted and their cost columns summed
 * per customer and currency in exact decimals, and the problems found (a count and the first
 * few, each naming file and line); over the run, the files' results merged. Pure: the adapter
 * feeds it lines as it streams a file (../adapters/dataFile.ts).
 */
import { DataFileError, asError } from '../errors';
import { addDecimal, decimalText, sumDecimalTexts, ZERO, type Decimal } from './decimal';
import { parseExactJson, rowReader, type CheckedRow } from './dataRow';
import type { FamilySchema } from './dataSchema';

/** How many problems are kept as examples, per file and per run. */
export const MAX_PROBLEM_EXAMPLES = 10;

export interface ProblemExample {
  readonly file: string;
  /** 1-based line number in the decompressed file. */
  readonly line: number;
  readonly problem: string;
}

/**
 * One customer's rows in one currency (usage: and one pricing currency, which PricingPreTaxTotal
 * is in); `sums` by the summed column's camelCase name, as decimal strings.
 */
export interface CustomerTotal {
  readonly customerId: string;
  readonly customerName: string;
  readonly currency: string;
  readonly pricingCurrency?: string;
  readonly rowCount: number;
  readonly sums: Readonly<Record<string, string>>;
}

export interface FileCheckResult {
  readonly file: string;
  readonly rowCount: number;
  readonly totals: readonly CustomerTotal[];
  readonly problems: number;
  readonly examples: readonly ProblemExample[];
}

export interface DataCheck {
  /**
   * Checks one line (1-based `line`; a blank line is a problem, not a row) and returns the row
   * typed, or undefined when the line holds no object. Throws DataFileError for a line that is
   * not JSON.
   */
  addLine(text: string, line: number): CheckedRow | undefined;
  result(): FileCheckResult;
}

interface Running {
  readonly total: Omit<CustomerTotal, 'rowCount' | 'sums'>;
  rowCount: number;
  sums: Decimal[];
}

/** Totals are kept apart per customer, currency and (usage) pricing currency. */
const totalKey = (total: Pick<CustomerTotal, 'customerId' | 'currency' | 'pricingCurrency'>) =>
  `${total.customerId}|${total.currency}|${total.pricingCurrency ?? ''}`;

export function startFileCheck(schema: FamilySchema, file: string): DataCheck {
  const reader = rowReader(schema);
  const indexOf = (name: string) => schema.columns.findIndex((column) => column.name === name);
  const customerIdAt = indexOf('CustomerId');
  const customerNameAt = indexOf('CustomerName');
  const currencyAt = indexOf(schema.currencyColumn);
  const pricingCurrencyAt = schema.pricingCurrencyColumn ? indexOf(schema.pricingCurrencyColumn) : undefined;
  const summedAt = schema.summed.map(({ column }) => indexOf(column));
  const totals = new Map<string, Running>();
  let rowCount = 0;
  let problems = 0;
  const examples: ProblemExample[] = [];
  const note = (line: number, problem: string) => {
    problems++;
    if (examples.length < MAX_PROBLEM_EXAMPLES) examples.push({ file, line, problem });
  };

  return {
    addLine(text, line) {
      if (text.trim() === '') {
        note(line, 'the line is blank: expected a JSON object');
        return undefined;
      }
      let parsed: unknown;
      try {
        parsed = parseExactJson(text);
      } catch (thrown) {
        throw new DataFileError(file, line, `is not JSON (${asError(thrown).message})`);
      }
      const row = reader.check(parsed);
      for (const problem of row.problems) note(line, problem);
      if (row.values.length === 0) return undefined;
      rowCount++;
      const textAt = (index: number) => (index < 0 ? '' : ((row.values[index] as string | null) ?? ''));
      const customer = {
        customerId: textAt(customerIdAt).toLowerCase(),
        currency: textAt(currencyAt).toUpperCase(),
        ...(pricingCurrencyAt === undefined ? {} : { pricingCurrency: textAt(pricingCurrencyAt).toUpperCase() }),
      };
      const key = totalKey(customer);
      let running = totals.get(key);
      if (!running) {
        running = { total: { ...customer, customerName: textAt(customerNameAt) }, rowCount: 0, sums: summedAt.map(() => ZERO) };
        totals.set(key, running);
      }
      running.rowCount++;
      summedAt.forEach((index, i) => {
        const value = index < 0 ? null : row.values[index];
        if (value && typeof value === 'object' && 'digits' in value) running.sums[i] = addDecimal(running.sums[i]!, value);
      });
      return row;
    },
    result() {
      return {
        file,
        rowCount,
        totals: sortTotals(
          [...totals.values()].map((running) => ({
            ...running.total,
            rowCount: running.rowCount,
            sums: Object.fromEntries(schema.summed.map(({ as }, i) => [as, decimalText(running.sums[i]!)])),
          })),
        ),
        problems,
        examples,
      };
    },
  };
}

export interface RunDataSummary {
  readonly rowCount: number;
  readonly totals: readonly CustomerTotal[];
  readonly check: { readonly problems: number; readonly examples: readonly ProblemExample[] };
}

/** The run's figures from its files' results: totals added per customer and currency (and pricing currency), exactly. */
export function mergeFileResults(results: readonly FileCheckResult[]): RunDataSummary {
  const merged = new Map<string, { first: CustomerTotal; rowCount: number; sums: Map<string, string[]> }>();
  for (const result of results) {
    for (const total of result.totals) {
      const key = totalKey(total);
      let entry = merged.get(key);
      if (!entry) {
        entry = { first: total, rowCount: 0, sums: new Map() };
        merged.set(key, entry);
      }
      entry.rowCount += total.rowCount;
      for (const [name, value] of Object.entries(total.sums)) entry.sums.set(name, [...(entry.sums.get(name) ?? []), value]);
    }
  }
  return {
    rowCount: results.reduce((sum, result) => sum + result.rowCount, 0),
    totals: sortTotals(
      [...merged.values()].map(({ first: { sums: _firstSums, rowCount: _firstRows, ...first }, rowCount, sums }) => ({
        ...first,
        rowCount,
        sums: Object.fromEntries([...sums].map(([name, values]) => [name, sumDecimalTexts(values)])),
      })),
    ),
    check: {
      problems: results.reduce((sum, result) => sum + result.problems, 0),
      examples: results.flatMap((result) => result.examples).slice(0, MAX_PROBLEM_EXAMPLES),
    },
  };
}

/** By customer name, then id, currency and pricing currency: a stable order for manifest.json and the report. */
function sortTotals(totals: CustomerTotal[]): CustomerTotal[] {
  return totals.sort(
    (a, b) =>
      a.customerName.localeCompare(b.customerName, 'en') ||
      a.customerId.localeCompare(b.customerId) ||
      a.currency.localeCompare(b.currency) ||
      (a.pricingCurrency ?? '').localeCompare(b.pricingCurrency ?? ''),
  );
}
