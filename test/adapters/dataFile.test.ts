/**
 * The data check and the Parquet copy of a landed file, against real Azurite: the file streamed
 * back, checked, and converted; the Parquet read back by DuckDB (an independent reader) and
 * compared with exact sums the test computes itself from the emulator's rows.
 */
import { gzipSync } from 'node:zlib';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';
import { reconciliationRows } from '../../emulator/reconciliationData';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';
import { createDataFiles, type SourceBytes } from '../../src/adapters/dataFile';
import { PARQUET_ROW_GROUP_ROWS } from '../../src/adapters/parquetFile';
import { schemaFor } from '../../src/core/dataSchema';
import { DataFileError, StorageRequestError } from '../../src/errors';
import { expectedTotals, scaledSum, SUMMED, totalsByKey } from '../support/exactTotals';
import { readBackParquet } from '../support/parquetReadBack';
import { rejectionOf } from '../support/rejection';
import { rowBase } from '../support/rows';
import { sourceBytesOf } from '../support/sourceBytes';

let azurite: Azurite;
let container: ContainerClient;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [DEV_STORE_ACCOUNT] });
  container = BlobServiceClient.fromConnectionString(azurite.connectionString(DEV_STORE_ACCOUNT.name)).getContainerClient('landed');
  await container.create();
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
});

let folderCount = 0;
const newFolder = () => `unbilled-usage/2026-10/EUR/full/etag${++folderCount}/`;

/** Uploads the file as a landing would leave it; returns the source's length and MD5 its check reads it against. */
async function land(folder: string, name: string, bytes: Buffer): Promise<SourceBytes> {
  await container.getBlockBlobClient(`${folder}${name}`).uploadData(bytes);
  return sourceBytesOf(bytes);
}
async function exists(path: string): Promise<boolean> {
  return container.getBlobClient(path).exists();
}

describe('checkFile with Parquet: read back by DuckDB', () => {
  it.each([
    ['usage', 'full', () => usageRows({ ...rowBase, attributeSet: 'full', count: 20_000 })],
    ['usage', 'basic', () => usageRows({ ...rowBase, attributeSet: 'basic', count: 3_000 })],
    ['reconciliation', 'full', () => reconciliationRows({ ...rowBase, attributeSet: 'full', usageRowCount: 4_000 })],
    ['reconciliation', 'basic', () => reconciliationRows({ ...rowBase, attributeSet: 'basic', usageRowCount: 4_000 })],
  ] as const)(
    '%s %s: every row, every column typed, every per-customer total exact',
    async (family, attributeSet, rowsOf) => {
      const rows = rowsOf();
      const folder = newFolder();
      const name = 'part-00000-5d1c.c000.json.gz';
      // Two gzip members, as the emulator (and Spark) write large files.
      const source = await land(folder, name, Buffer.concat([gzipJsonLines(rows.slice(0, 1000)), gzipJsonLines(rows.slice(1000))]));
      const schema = schemaFor(family, attributeSet);

      const outcome = await createDataFiles(container).checkFile({ folder, name, schema, parquet: true, source });

      const expected = { rowCount: rows.length, totals: expectedTotals(rows, SUMMED[family]) };
      expect(outcome.check.rowCount).toBe(rows.length);
      expect(outcome.check.problems).toBe(0);
      expect(totalsByKey(outcome.check.totals)).toEqual(expected.totals);
      expect(outcome.parquet).toEqual({ name: `parquet/${name}.parquet`, rowCount: rows.length, byteCount: expect.any(Number) as number });
      const parquet = await container.getBlobClient(`${folder}parquet/${name}.parquet`).downloadToBuffer();
      expect(parquet.length).toBe(outcome.parquet!.byteCount);

      const firstDate = family === 'usage' ? 'UsageDate' : 'OrderDate';
      const readBack = await readBackParquet(parquet, schema, expected, {
        first: `SELECT strftime(${firstDate}, '%Y-%m-%d') AS d, CustomerName FROM read_parquet($file) LIMIT 1`,
      });
      expect(readBack.mismatches).toEqual([]);
      expect(readBack.codecs).toBe('SNAPPY');
      expect(readBack.largestRowGroup).toBeLessThanOrEqual(PARQUET_ROW_GROUP_ROWS);
      expect(readBack.rowGroups).toBe(Math.ceil(rows.length / PARQUET_ROW_GROUP_ROWS));
      expect(readBack.probes.first).toEqual([{ d: String(rows[0]![firstDate]).slice(0, 10), CustomerName: rows[0]!.CustomerName }]);
    },
    120_000,
  );

  it('the read-back catches a total that is off by one millionth, a missing row and a wrong type (it can fail)', async () => {
    const rows = usageRows({ ...rowBase, attributeSet: 'full', count: 500 });
    const folder = newFolder();
    const source = await land(folder, 'p.json.gz', gzipJsonLines(rows));
    const schema = schemaFor('usage', 'full');
    await createDataFiles(container).checkFile({ folder, name: 'p.json.gz', schema, parquet: true, source });
    const parquet = await container.getBlobClient(`${folder}parquet/p.json.gz.parquet`).downloadToBuffer();

    const nudged = rows.map((row, i) => (i === 7 ? { ...row, BillingPreTaxTotal: Number(((row.BillingPreTaxTotal as number) + 0.000001).toFixed(6)) } : row));
    const wrongTotals = { rowCount: rows.length, totals: expectedTotals(nudged, SUMMED.usage) };
    const fewerRows = { rowCount: rows.length - 1, totals: expectedTotals(rows.slice(1), SUMMED.usage) };
    const customer = `${String(rows[7]!.CustomerId)}|EUR`;

    expect((await readBackParquet(parquet, schema, wrongTotals)).mismatches).toEqual([expect.stringMatching(new RegExp(`^${customer} billingPreTaxTotal: `))]);
    expect((await readBackParquet(parquet, schema, fewerRows)).mismatches).toContain(`rows: ${rows.length}, expected ${rows.length - 1}`);
    const otherTypes = {
      ...schema,
      columns: schema.columns.map((column) => (column.name === 'UsageDate' ? { ...column, type: { kind: 'timestamp' as const } } : column)),
    };
    expect((await readBackParquet(parquet, otherTypes, { rowCount: rows.length, totals: expectedTotals(rows, SUMMED.usage) })).mismatches).toEqual([
      'UsageDate: DATE, expected TIMESTAMP WITH TIME ZONE',
    ]);
  }, 60_000);

  it('rows missing key fields are problems, not fatal: the Parquet holds them with nulls', async () => {
    const rows = usageRows({ ...rowBase, attributeSet: 'full', count: 50 }).map((row, i) => (i % 10 === 3 ? { ...row, MeterId: undefined } : row));
    const folder = newFolder();
    const source = await land(folder, 'm.json.gz', gzipJsonLines(rows));
    const outcome = await createDataFiles(container).checkFile({ folder, name: 'm.json.gz', schema: schemaFor('usage', 'full'), parquet: true, source });
    expect(outcome.check.problems).toBe(5);
    expect(outcome.check.examples[0]).toEqual({ file: 'm.json.gz', line: 4, problem: 'MeterId is missing' });
    expect(outcome.parquet?.rowCount).toBe(50);
  });

  it('lines end in CRLF or LF, with multi-byte characters across chunk boundaries, and the last line may lack its newline', async () => {
    const rows = usageRows({ ...rowBase, attributeSet: 'basic', count: 4000 }).map((row, i) => ({ ...row, CustomerName: `Müller & Söhne 株式会社 ${i % 3}` }));
    const text = rows.map((row) => JSON.stringify(row)).join('\r\n');
    const folder = newFolder();
    const source = await land(folder, 'crlf.json.gz', gzipSync(text));
    const outcome = await createDataFiles(container).checkFile({ folder, name: 'crlf.json.gz', schema: schemaFor('usage', 'basic'), parquet: false, source });
    expect(outcome.check.rowCount).toBe(4000);
    expect(outcome.check.problems).toBe(0);
    expect(new Set(outcome.check.totals.map((total) => total.customerName))).toEqual(new Set(rows.map((row) => row.CustomerName)));
  });
});

describe('checkFile: forms of a file the emulator does not write', () => {
  const rows = usageRows({ ...rowBase, attributeSet: 'full', count: 200 });

  it('a UTF-8 byte order mark at the start (the reference: tolerate a BOM) is not part of the first line', async () => {
    const folder = newFolder();
    const source = await land(
      folder,
      'bom.json.gz',
      gzipSync(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(rows.map((row) => JSON.stringify(row)).join('\n'))])),
    );
    const schema = schemaFor('usage', 'full');
    const outcome = await createDataFiles(container).checkFile({ folder, name: 'bom.json.gz', schema, parquet: true, source });
    expect(outcome.check.rowCount).toBe(rows.length);
    expect(outcome.check.problems).toBe(0);
    expect(totalsByKey(outcome.check.totals)).toEqual(expectedTotals(rows, SUMMED.usage));
    const parquet = await container.getBlobClient(`${folder}parquet/bom.json.gz.parquet`).downloadToBuffer();
    expect((await readBackParquet(parquet, schema, { rowCount: rows.length, totals: expectedTotals(rows, SUMMED.usage) })).mismatches).toEqual([]);
  });

  it('a file of no bytes at all holds no rows (not a cut gzip), with or without Parquet', async () => {
    const folder = newFolder();
    const source = await land(folder, 'empty.json.gz', Buffer.alloc(0));
    const schema = schemaFor('usage', 'full');
    for (const parquet of [false, true]) {
      const outcome = await createDataFiles(container).checkFile({ folder, name: 'empty.json.gz', schema, parquet, source });
      expect(outcome.check).toMatchObject({ rowCount: 0, problems: 0, totals: [] });
      expect(outcome.parquet?.rowCount).toBe(parquet ? 0 : undefined);
    }
    const parquet = await container.getBlobClient(`${folder}parquet/empty.json.gz.parquet`).downloadToBuffer();
    expect((await readBackParquet(parquet, schema, { rowCount: 0, totals: new Map() })).mismatches).toEqual([]);
  });
});

describe('checkFile: what fails names the file and the line, and leaves no Parquet', () => {
  const rows = usageRows({ ...rowBase, attributeSet: 'full', count: 3000 });

  it('a truncated gzip', async () => {
    const folder = newFolder();
    const whole = gzipJsonLines(rows);
    const source = await land(folder, 'cut.json.gz', whole.subarray(0, Math.floor(whole.length * 0.6)));
    const thrown = await rejectionOf(
      createDataFiles(container).checkFile({ folder, name: 'cut.json.gz', schema: schemaFor('usage', 'full'), parquet: true, source }),
    );
    expect(thrown).toBeInstanceOf(DataFileError);
    expect((thrown as Error).message).toMatch(/^'cut\.json\.gz' line \d+ does not decompress \(Z_BUF_ERROR: unexpected end of file\)$/);
    expect(await exists(`${folder}parquet/cut.json.gz.parquet`)).toBe(false);
  });

  it.each([
    [
      'length',
      (source: SourceBytes) => ({ ...source, byteCount: source.byteCount + 1 }),
      /^'unlike\.json\.gz' does not match its source: \d+ bytes, expected \d+$/,
    ],
    [
      'MD5',
      (source: SourceBytes) => ({ ...source, contentMD5: 'AAAAAAAAAAAAAAAAAAAAAA==' }),
      /^'unlike\.json\.gz' does not match its source: MD5 [^ ]+, expected AAAAAAAAAAAAAAAAAAAAAA==$/,
    ],
  ])("bytes whose %s is not the source's, though every line reads: it fails naming the file and leaves no Parquet", async (_what, sourceSaying, message) => {
    const folder = newFolder();
    const landed = await land(folder, 'unlike.json.gz', gzipJsonLines(rows));
    const thrown = await rejectionOf(
      createDataFiles(container).checkFile({ folder, name: 'unlike.json.gz', schema: schemaFor('usage', 'full'), parquet: true, source: sourceSaying(landed) }),
    );
    expect(thrown).toBeInstanceOf(DataFileError);
    expect((thrown as Error).message).toMatch(message);
    expect(await exists(`${folder}parquet/unlike.json.gz.parquet`)).toBe(false);
  });

  it('a file that is not gzip at all', async () => {
    const folder = newFolder();
    const source = await land(folder, 'plain.json.gz', Buffer.from(`${JSON.stringify(rows[0])}\n`));
    const thrown = await rejectionOf(
      createDataFiles(container).checkFile({ folder, name: 'plain.json.gz', schema: schemaFor('usage', 'full'), parquet: false, source }),
    );
    expect((thrown as Error).message).toMatch(/^'plain\.json\.gz' line 1 does not decompress \(Z_DATA_ERROR: /);
  });

  it('a broken line, after row groups that were already handed to the upload', async () => {
    const folder = newFolder();
    // Past two row groups, so the upload has already been given bytes when the line breaks.
    const lines = usageRows({ ...rowBase, attributeSet: 'full', count: 2 * PARQUET_ROW_GROUP_ROWS + 500 }).map((row) => JSON.stringify(row));
    lines[2 * PARQUET_ROW_GROUP_ROWS + 100] = lines[2 * PARQUET_ROW_GROUP_ROWS + 100]!.slice(0, 80);
    const source = await land(folder, 'broken.json.gz', gzipSync(`${lines.join('\n')}\n`));
    const thrown = await rejectionOf(
      createDataFiles(container).checkFile({ folder, name: 'broken.json.gz', schema: schemaFor('usage', 'full'), parquet: true, source }),
    );
    expect(thrown).toBeInstanceOf(DataFileError);
    expect((thrown as Error).message).toMatch(new RegExp(`^'broken\\.json\\.gz' line ${2 * PARQUET_ROW_GROUP_ROWS + 101} is not JSON \\(`));
    expect(await exists(`${folder}parquet/broken.json.gz.parquet`)).toBe(false);
  });

  it('a value with more decimal places than its column is a problem, not fatal: exact in the totals, rounded in the Parquet copy', async () => {
    const folder = newFolder();
    // A JSON number written from a binary double, as an API gateway or another serializer may write it.
    const odd = rows.map((row, i) => (i === 10 ? { ...row, Quantity: 0.0024749999999999998 } : row));
    const source = await land(folder, 'double.json.gz', gzipJsonLines(odd));
    const schema = schemaFor('usage', 'full');
    const outcome = await createDataFiles(container).checkFile({ folder, name: 'double.json.gz', schema, parquet: true, source });
    expect(outcome.check.problems).toBe(1);
    expect(outcome.check.examples).toEqual([
      {
        file: 'double.json.gz',
        line: 11,
        problem: "Quantity is '0.0024749999999999998': more than 12 decimal places; the Parquet copy keeps it rounded to 12 (DECIMAL(28,12))",
      },
    ]);
    const customer = `${String(odd[10]!.CustomerId)}|${String(odd[10]!.BillingCurrency)}`;
    // The exact sum of the customer's quantities, the odd one's at its full 19 places.
    const exact = scaledSum(
      odd.filter((row) => row.CustomerId === odd[10]!.CustomerId).map((row) => (row === odd[10] ? '0.0024749999999999998' : String(row.Quantity))),
      19,
    );
    expect(outcome.check.totals.find((t) => `${t.customerId}|${t.currency}` === customer)?.sums.quantity).toBe(exact);
    const parquet = await container.getBlobClient(`${folder}parquet/double.json.gz.parquet`).downloadToBuffer();
    const readBack = await readBackParquet(
      parquet,
      schema,
      { rowCount: odd.length, totals: new Map() },
      { odd: 'SELECT Quantity::VARCHAR AS q FROM read_parquet($file) LIMIT 1 OFFSET 10' },
    );
    expect(readBack.probes.odd).toEqual([{ q: '0.002475000000' }]);
  });

  it('a value its Parquet column cannot hold at all (too many integer digits) is a problem of its row, with Parquet or without: the cell is null, the raw file keeps it', async () => {
    const folder = newFolder();
    const bad = rows.map((row, i) => (i === 10 ? { ...row, Quantity: '12345678901234567' } : row));
    const source = await land(folder, 'odd.json.gz', gzipJsonLines(bad));
    const schema = schemaFor('usage', 'full');
    const request = { folder, name: 'odd.json.gz', schema, source };
    const problem = { file: 'odd.json.gz', line: 11, problem: "Quantity is '12345678901234567': has more than 16 integer digits (DECIMAL(28,12))" };
    const withParquet = await createDataFiles(container).checkFile({ ...request, parquet: true });
    expect(withParquet.check).toMatchObject({ rowCount: bad.length, problems: 1, examples: [problem] });
    expect(withParquet.parquet?.rowCount).toBe(bad.length);
    const parquet = await container.getBlobClient(`${folder}parquet/odd.json.gz.parquet`).downloadToBuffer();
    const readBack = await readBackParquet(
      parquet,
      schema,
      { rowCount: bad.length, totals: new Map() },
      { odd: 'SELECT Quantity IS NULL AS missing, BillingPreTaxTotal IS NULL AS other FROM read_parquet($file) LIMIT 1 OFFSET 10' },
    );
    expect(readBack.probes.odd).toEqual([{ missing: true, other: false }]);
    const raw = await createDataFiles(container).checkFile({ ...request, parquet: false });
    expect(raw.check).toEqual(withParquet.check);
    expect(raw.parquet).toBeUndefined();
  });

  it('a file that is not there is a storage error naming it', async () => {
    const thrown = await rejectionOf(
      createDataFiles(container).checkFile({
        folder: newFolder(),
        name: 'gone.json.gz',
        schema: schemaFor('usage', 'full'),
        parquet: false,
        source: { byteCount: 0 },
      }),
    );
    expect(thrown).toBeInstanceOf(StorageRequestError);
    expect(thrown).toMatchObject({ code: 'BlobNotFound', status: 404, transient: false });
    expect((thrown as Error).message).toMatch(/^'gone\.json\.gz': /);
  });
});
