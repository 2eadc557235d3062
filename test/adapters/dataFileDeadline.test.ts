/**
 * A file whose check outlasts its whole-file deadline (DATA_FILE_TIMEOUT_MS, 25 minutes in
 * production) fails for good, saying so: trying the same file again would take as long again.
 * Against real Azurite, with the deadline scaled down.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';
import { createDataFiles, type SourceBytes } from '../../src/adapters/dataFile';
import { schemaFor } from '../../src/core/dataSchema';
import { StorageRequestError } from '../../src/errors';
import { rejectionOf } from '../support/rejection';
import { rowBase } from '../support/rows';
import { sourceBytesOf } from '../support/sourceBytes';

let azurite: Azurite;
let container: ContainerClient;
const folder = 'unbilled-usage/2026-10/EUR/full/etag1/';
const name = 'part-00000-big.c000.json.gz';
let source: SourceBytes;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [DEV_STORE_ACCOUNT] });
  container = BlobServiceClient.fromConnectionString(azurite.connectionString(DEV_STORE_ACCOUNT.name)).getContainerClient('deadline');
  await container.create();
  const bytes = gzipJsonLines(usageRows({ ...rowBase, attributeSet: 'full', count: 40_000 }));
  await container.getBlockBlobClient(`${folder}${name}`).uploadData(bytes);
  source = sourceBytesOf(bytes);
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
});

describe('the whole-file deadline', () => {
  it.each([false, true])('a check (parquet: %s) past it fails as DataCheckTimedOut, not to be retried', async (parquet) => {
    const files = createDataFiles(container, { timeoutMs: 200 });
    const error = await rejectionOf(files.checkFile({ folder, name, schema: schemaFor('usage', 'full'), parquet, source }));
    expect(error).toBeInstanceOf(StorageRequestError);
    expect(error).toMatchObject({ code: 'DataCheckTimedOut', transient: false });
    expect((error as Error).message).toBe(
      `'${name}': its check did not finish within 0.2 s; a file this large is beyond one invocation (OUTPUT_FORMATS=raw halves the work)`,
    );
  });

  it('the same file within its deadline is checked whole (the failure above is the deadline)', async () => {
    const outcome = await createDataFiles(container).checkFile({ folder, name, schema: schemaFor('usage', 'full'), parquet: false, source });
    expect(outcome.check.rowCount).toBe(40_000);
  }, 60_000);
});
