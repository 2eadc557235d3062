/**
 * Storage failures leave the adapters classified (StorageRequestError: code, status, transient, whether
 * a copy source refused its SAS), never as the SDK's RestError, and without the SAS.
 */
import { BlobSASPermissions } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { createDestination } from '../../src/adapters/destination';
import { createLedger } from '../../src/adapters/ledger';
import { createPollQueue } from '../../src/adapters/pollQueue';
import { StorageRequestError } from '../../src/errors';
import { createTestApp } from '../integration/harness';
import { rejectionOf } from '../support/rejection';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});

describe('storage errors', () => {
  it('a source whose SAS is refused: a StorageRequestError that says so, transient, with no signature in it', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const blob = app.clients.destinationContainer.getBlockBlobClient('source.json');
    await blob.upload('{}', 2);
    const sasUrl = await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) });
    const forged = sasUrl.replace(/sig=[^&]+/, 'sig=Zm9yZ2VkLXNpZ25hdHVyZS1mb3JnZWQtc2lnbmF0dXJl');

    const failure = await rejectionOf(createDestination(app.clients.destinationContainer).sourceFacts(forged));

    expect(failure).toBeInstanceOf(StorageRequestError);
    expect(failure).toMatchObject({ status: 403, sourceRefused: true, transient: true });
    expect(['AuthenticationFailed', 'AuthorizationFailure']).toContain((failure as StorageRequestError).code);
    expect(JSON.stringify({ message: (failure as Error).message, cause: String((failure as Error).cause) })).not.toContain(
      'Zm9yZ2VkLXNpZ25hdHVyZS1mb3JnZWQtc2lnbmF0dXJl',
    );
    expect((failure as Error).cause).toMatchObject({ name: 'RestError', statusCode: 403 });
    expect(Object.keys((failure as Error).cause as object)).not.toContain('request');
  });

  it('a missing destination container: permanent, not a source refusal', async () => {
    const app = createTestApp(cloud);
    const missing = app.clients.destinationContainer; // never created: ready() was not called

    const failure = await rejectionOf(createDestination(missing).listFolder('some/folder/'));

    expect(failure).toBeInstanceOf(StorageRequestError);
    expect(failure).toMatchObject({ code: 'ContainerNotFound', status: 404, transient: false, sourceRefused: false });
  });

  it('the poll queue classifies its own failures: a queue that does not exist', async () => {
    const app = createTestApp(cloud);
    const queue = createPollQueue(app.clients.queueService, `missing-${Date.now()}`); // never created

    const failure = await rejectionOf(queue.send({ v: 1, runId: '0b7a4c9e-3c55-4a43-9d57-0d0a2b6c1e11', seq: 0 }, 0));

    expect(failure).toBeInstanceOf(StorageRequestError);
    expect(failure).toMatchObject({ code: 'QueueNotFound', status: 404, transient: false, sourceRefused: false });
  });

  it('a call past its deadline is a transient Timeout', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();

    const failure = await rejectionOf(createLedger(app.clients.ledgerTable, { callTimeoutMs: 1 }).listRuns());

    expect(failure).toBeInstanceOf(StorageRequestError);
    expect(failure).toMatchObject({ code: 'Timeout', transient: true });
  });
});
