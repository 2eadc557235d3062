/**
 * An independent reader for the Parquet files the app writes: DuckDB (its own C++ Parquet
 * reader, not hyparquet), reading a local copy. It reports what differs from what the test
 * expects, so a test can also show that a wrong expectation is caught.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FamilySchema } from '../../src/core/dataSchema';

export interface ExpectedParquet {
  readonly rowCount: number;
  /** Per `${customerId}|${currency}|${pricingCurrency}` (as test/support/exactTotals.ts): row count and each summed column's exact sum (camelCase name → decimal text). */
  readonly totals: ReadonlyMap<string, { readonly rowCount: number; readonly sums: Readonly<Record<string, string>> }>;
}

/** DuckDB's column type for each of the schema's columns. */
function duckDbTypes(schema: FamilySchema): Record<string, string> {
  return Object.fromEntries(
    schema.columns.map((column) => [
      column.name,
      column.type.kind === 'decimal'
        ? `DECIMAL(${column.type.precision},${column.type.scale})`
        : column.type.kind === 'date'
          ? 'DATE'
          : column.type.kind === 'timestamp'
            ? 'TIMESTAMP WITH TIME ZONE'
            : 'VARCHAR',
    ]),
  );
}

/** '00012.500000000000' → '12.5', as src/core/decimal.ts writes decimals. */
const canonical = (text: string) =>
  text
    .replace(/^(-?)0+(?=\d)/, '$1')
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '')
    .replace(/^-0$/, '0');

export interface ReadBack {
  readonly mismatches: string[];
  readonly rowGroups: number;
  readonly largestRowGroup: number;
  readonly codecs: string;
  /** What each of the caller's own queries returned. */
  readonly probes: Record<string, Record<string, unknown>[]>;
}

/** Reads `bytes` as Parquet with DuckDB and lists every way it differs from the schema and `expected`. */
export async function readBackParquet(
  bytes: Buffer,
  schema: FamilySchema,
  expected: ExpectedParquet,
  probeSql: Readonly<Record<string, string>> = {},
): Promise<ReadBack> {
  const folder = mkdtempSync(join(tmpdir(), 'parquet-read-back-'));
  const file = join(folder, 'data.parquet');
  writeFileSync(file, bytes);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const query = async (sql: string) => (await connection.runAndReadAll(sql.replaceAll('$file', `'${file}'`))).getRowObjectsJS() as Record<string, unknown>[];
  try {
    const mismatches: string[] = [];
    const [{ n }] = (await query('SELECT count(*)::INTEGER AS n FROM read_parquet($file)')) as [{ n: number }];
    if (n !== expected.rowCount) mismatches.push(`rows: ${n}, expected ${expected.rowCount}`);
    const want = duckDbTypes(schema);
    const described = await query('DESCRIBE SELECT * FROM read_parquet($file)');
    const got = Object.fromEntries(described.map((row) => [String(row.column_name), String(row.column_type)]));
    for (const [name, type] of Object.entries(want)) if (got[name] !== type) mismatches.push(`${name}: ${got[name] ?? 'missing'}, expected ${type}`);
    for (const name of Object.keys(got)) if (!(name in want)) mismatches.push(`${name}: not a column of the schema`);
    const customerColumn = 'CustomerId';
    const pricing = schema.pricingCurrencyColumn ? `upper(${schema.pricingCurrencyColumn})` : "''";
    const sums = schema.summed.map(({ column, as }) => `sum("${column}")::VARCHAR AS "${as}"`).join(', ');
    const rows = await query(
      `SELECT lower(${customerColumn}) || '|' || upper(${schema.currencyColumn}) || '|' || ${pricing} AS key, count(*)::INTEGER AS n, ${sums} FROM read_parquet($file) GROUP BY 1`,
    );
    const seen = new Set<string>();
    for (const row of rows) {
      const key = String(row.key);
      seen.add(key);
      const wanted = expected.totals.get(key);
      if (!wanted) {
        mismatches.push(`${key}: in the Parquet file, not expected`);
        continue;
      }
      if (row.n !== wanted.rowCount) mismatches.push(`${key}: ${String(row.n)} rows, expected ${wanted.rowCount}`);
      for (const { as } of schema.summed) {
        const value = canonical(typeof row[as] === 'string' ? row[as] : 'NULL');
        if (value !== wanted.sums[as]) mismatches.push(`${key} ${as}: ${value}, expected ${wanted.sums[as]}`);
      }
    }
    for (const key of expected.totals.keys()) if (!seen.has(key)) mismatches.push(`${key}: expected, not in the Parquet file`);
    const [meta] = (await query(
      "SELECT count(DISTINCT row_group_id)::INTEGER AS groups, max(row_group_num_rows)::INTEGER AS largest, string_agg(DISTINCT compression, ',') AS codecs FROM parquet_metadata($file)",
    )) as [{ groups: number; largest: number; codecs: string }];
    const probes: Record<string, Record<string, unknown>[]> = {};
    for (const [name, sql] of Object.entries(probeSql)) probes[name] = await query(sql);
    return { mismatches, rowGroups: meta.groups, largestRowGroup: meta.largest, codecs: meta.codecs, probes };
  } finally {
    connection.closeSync();
    instance.closeSync();
    rmSync(folder, { recursive: true, force: true });
  }
}
