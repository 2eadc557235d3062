/**
 * The data check in its own thread, against real Azurite: the same outcome as the check run in
 * this thread, the app's error classes back on this side, and a file that would need more than
 * the thread's heap failing its own check (naming the file) while the process and the next
 * check carry on.
 */
import { gzipSync } from 'node:zlib';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';
import { createDataFiles, MAX_LINE_CHARS, type SourceBytes } from '../../src/adapters/dataFile';
import { DATA_CHECK_HEAP_MB } from '../../src/core/policy';
import { schemaFor } from '../../src/core/dataSchema';
import { createDataCheckThreads } from '../../src/dataCheckThreads';
import { DataFileError, StorageRequestError } from '../../src/errors';
import { rejectionOf } from '../support/rejection';
import { rowBase } from '../support/rows';
import { sourceBytesOf } from '../support/sourceBytes';

const CONTAINER = 'landed';
let azurite: Azurite;
let container: ContainerClient;
let threads: ReturnType<typeof createDataCheckThreads>;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [DEV_STORE_ACCOUNT] });
  const connectionString = azurite.connectionString(DEV_STORE_ACCOUNT.name);
  container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(CONTAINER);
  await container.create();
  threads = createDataCheckThreads({ partnerStorage: { kind: 'connectionString', connectionString }, partnerContainer: CONTAINER });
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
});

const folder = 'unbilled-usage/2026-10/EUR/full/etag1/';
const schema = schemaFor('usage', 'full');
/** Uploads the file as a landing would leave it; returns the source's length and MD5 its check reads it against. */
async function land(name: string, bytes: Buffer): Promise<SourceBytes> {
  await container.getBlockBlobClient(`${folder}${name}`).uploadData(bytes);
  return sourceBytesOf(bytes);
}

describe('the data check in its own thread', () => {
  it('gives the outcome the check gives in this thread, Parquet included', async () => {
    const source = await land('same.json.gz', gzipJsonLines(usageRows({ ...rowBase, attributeSet: 'full', count: 12_000 })));
    const request = { folder, name: 'same.json.gz', schema, parquet: true, source };

    const inThread = await threads.checkFile(request);
    const here = await createDataFiles(container).checkFile(request);

    expect(inThread.check.rowCount).toBe(12_000);
    expect(inThread).toEqual(here);
  }, 60_000);

  it("throws the app's own error classes, with what they carry", async () => {
    const whole = gzipJsonLines(usageRows({ ...rowBase, attributeSet: 'full', count: 500 }));
    const source = await land('cut.json.gz', whole.subarray(0, whole.length - 40));

    const cut = await rejectionOf(threads.checkFile({ folder, name: 'cut.json.gz', schema, parquet: false, source }));
    expect(cut).toBeInstanceOf(DataFileError);
    expect(cut).toMatchObject({ file: 'cut.json.gz', line: expect.any(Number) as number, code: 'InvalidDataFile' });
    expect((cut as Error).message).toMatch(/^'cut\.json\.gz' line \d+ does not decompress \(Z_BUF_ERROR/);

    const missing = await rejectionOf(threads.checkFile({ folder, name: 'missing.json.gz', schema, parquet: false, source: { byteCount: 0 } }));
    expect(missing).toBeInstanceOf(StorageRequestError);
    expect(missing).toMatchObject({ code: 'BlobNotFound', status: 404, transient: false, sourceRefused: false });
    expect((missing as Error).message).toMatch(/^'missing\.json\.gz': /);
  }, 60_000);

  it(`a file that needs more than the thread's ${DATA_CHECK_HEAP_MB} MB heap fails its own check, naming it; the next check runs`, async () => {
    // Rows of a few million characters each (under MAX_LINE_CHARS, so each line is read), all
    // held by one Parquet row group in the making: far more than the thread's heap.
    const filler = 'x'.repeat(MAX_LINE_CHARS - 10_000);
    const [row] = usageRows({ ...rowBase, attributeSet: 'full', count: 1 });
    const line = JSON.stringify({ ...row, AdditionalInfo: filler });
    const rows = Math.ceil((1.5 * DATA_CHECK_HEAP_MB * 2 ** 20) / line.length);
    const huge = await land('huge.json.gz', gzipSync(`${Array.from({ length: rows }, () => line).join('\n')}\n`));

    const thrown = await rejectionOf(threads.checkFile({ folder, name: 'huge.json.gz', schema, parquet: true, source: huge }));
    expect(thrown).toBeInstanceOf(DataFileError);
    expect((thrown as Error).message).toBe(
      `'huge.json.gz' could not be checked within the check's ${DATA_CHECK_HEAP_MB} MB heap: expected rows of a billing export`,
    );

    const after = await land('after.json.gz', gzipJsonLines(usageRows({ ...rowBase, attributeSet: 'full', count: 100 })));
    expect((await threads.checkFile({ folder, name: 'after.json.gz', schema, parquet: true, source: after })).check.rowCount).toBe(100);
  }, 120_000);
});
