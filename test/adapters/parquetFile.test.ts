/**
 * The Parquet upload failing while the writer still has row groups to give it, against real
 * Azurite behind the fault proxy: Azure refuses every block of the upload (500 InternalError, as
 * the production clients see it after their own retries), so the SDK's upload stops reading its
 * stream. The writer, waiting for that stream to drain after a row group, must hear of the failure
 * and writeParquet reject with the upload's error, instead of waiting for a drain that never comes.
 */
import { createHash } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';
import { startFaultProxy, type FaultProxy } from '../../emulator/faultProxy';
import { usageRows } from '../../emulator/usageData';
import { createStorageClients } from '../../src/adapters/storageClients';
import { PARQUET_ROW_GROUP_ROWS, writeParquet } from '../../src/adapters/parquetFile';
import { startFileCheck } from '../../src/core/dataCheck';
import type { CellValue } from '../../src/core/dataRow';
import { schemaFor } from '../../src/core/dataSchema';
import { parseSettings } from '../../src/core/settings';
import { StorageRequestError } from '../../src/errors';
import { rejectionOf } from '../support/rejection';
import { rowBase } from '../support/rows';

const CONTAINER = 'landed';
let azurite: Azurite;
let proxy: FaultProxy;
/** The destination container as the app builds it (its own retries), through the fault proxy. */
let container: ContainerClient;
/** The same container straight at Azurite, to look at what landed. */
let direct: ContainerClient;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [DEV_STORE_ACCOUNT] });
  proxy = await startFaultProxy({ azurite });
  const connection = proxy.connectionString(DEV_STORE_ACCOUNT.name);
  container = createStorageClients(
    parseSettings({ AzureWebJobsStorage: connection, PARTNER_STORAGE: connection, PARTNER_CONTAINER: CONTAINER, EXPORT_CURRENCIES: 'EUR' }),
  ).destinationContainer;
  direct = BlobServiceClient.fromConnectionString(azurite.connectionString(DEV_STORE_ACCOUNT.name)).getContainerClient(CONTAINER);
  await direct.create();
}, 60_000);
afterAll(async () => {
  await proxy?.stop();
  await azurite?.stop();
});

const schema = schemaFor('usage', 'full');

/**
 * The JSON lines of `count` emulator usage rows, each row's AdditionalInfo 512 hex digits that do
 * not compress: a row group is then about 4 MB of Parquet, so that a few of them are more than the
 * upload holds before it stops reading its stream (two 4 MB blocks in flight and a third 4 MB
 * waiting), and the writer is left waiting for the upload to drain when the upload fails.
 */
function* usageLines(count: number): Generator<string> {
  const batch = 2_000;
  let line = 0;
  for (let start = 0; start < count; start += batch) {
    for (const row of usageRows({ ...rowBase, attributeSet: 'full', count: Math.min(batch, count - start), startIndex: start })) {
      line++;
      row.AdditionalInfo = [1, 2, 3, 4].map((part) => createHash('sha512').update(`${line}/${part}`).digest('hex')).join('');
      yield JSON.stringify(row);
    }
  }
}

/**
 * Those rows typed by the data check, as the data file reader hands them to writeParquet;
 * `taken.rows` counts those the writer took. Each is handed over in a promise already resolved, so
 * the event loop turns only when the writer waits for the upload to drain: the upload's buffers
 * fill before any of its requests is answered, however fast or slow the machine.
 */
function typedUsageRows(count: number): { rows: AsyncIterable<readonly CellValue[]>; taken: { rows: number } } {
  const taken = { rows: 0 };
  const check = startFileCheck(schema, 'part-00000.json.gz');
  const lines = usageLines(count);
  const rows: AsyncIterableIterator<readonly CellValue[]> = {
    [Symbol.asyncIterator]: () => rows,
    next: () => {
      const line = lines.next();
      if (line.done) return Promise.resolve({ done: true, value: undefined });
      const typed = check.addLine(line.value, taken.rows + 1);
      if (!typed || typed.problems.length > 0) return Promise.reject(new Error(`row ${taken.rows + 1} did not type: ${typed?.problems.join('; ')}`));
      taken.rows++;
      return Promise.resolve({ done: false, value: typed.values });
    },
  };
  return { rows, taken };
}

describe('writeParquet when the upload fails mid-file', () => {
  it('rejects with the storage error of the refused upload, and lands no Parquet file', async () => {
    const rowCount = 6 * PARQUET_ROW_GROUP_ROWS;
    const { rows, taken } = typedUsageRows(rowCount);
    const name = 'parquet/refused.json.gz.parquet';
    const removeFault = proxy.addRule({
      service: 'blob',
      method: 'PUT',
      path: /\/parquet\/refused\.json\.gz\.parquet\?.*comp=block(&|$)/,
      fault: { kind: 'status', status: 500 },
    });
    try {
      const thrown = await rejectionOf(writeParquet(rows, schema, container.getBlockBlobClient(name), new AbortController().signal));

      expect(thrown).toBeInstanceOf(StorageRequestError);
      expect(thrown).toMatchObject({ code: 'InternalError', details: { status: 500, transient: true } });
      expect((thrown as Error).message).toContain(`'${name}'`);
    } finally {
      removeFault();
    }
    // Azure refused the upload's blocks, each as often as the app's clients try a call (4 times);
    // the writer stopped there, short of the last rows.
    expect(proxy.injected().filter((fault) => fault.path.includes('/parquet/refused.json.gz.parquet')).length).toBeGreaterThanOrEqual(4);
    expect(taken.rows).toBeLessThan(rowCount);
    expect(await direct.getBlobClient(name).exists()).toBe(false);
  }, 120_000);
});
