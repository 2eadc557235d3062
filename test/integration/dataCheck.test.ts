/**
 * The data check in the real flow: after the copies are verified, one queue message per file
 * checks it and writes its Parquet copy; manifest.json, written when every file is done, carries
 * row counts, per-customer totals and the Parquet files. Against Azurite (behind the fault
 * proxy, to count and break requests), the identity endpoint and the billing emulator; the
 * totals are compared with sums the test computes itself from the landed rows, and the Parquet
 * files are read back by DuckDB.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_SOURCE_ACCOUNT, startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import type { FaultRule } from '../../emulator/faultProxy';
import { schemaFor } from '../../src/core/dataSchema';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import { fileCheckMessageFor, parsePollMessage, pollMessageFor } from '../../src/core/pollMessage';
import type { PublicManifest } from '../../src/core/publicManifest';
import type { Run } from '../../src/core/run';
import { HttpRequest } from '@azure/functions';
import { createDeps } from '../../src/deps';
import { pollExport } from '../../src/functions/pollExport';
import { getRun } from '../../src/functions/runsApi';
import { startExport } from '../../src/functions/startExport';
import { expectedTotals, SUMMED, totalsByKey } from '../support/exactTotals';
import { jsonLines } from '../support/jsonLines';
import { readBackParquet } from '../support/parquetReadBack';
import { createTestApp, listBlobs, readBlob, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ faultProxy: true });
}, 60_000);
afterAll(async () => {
  await cloud?.stop();
});

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'JPY', 'PLN', 'CZK', 'HUF'];
let nextCurrency = 0;

async function landOne(app: TestApp): Promise<{ run: Run; folder: string }> {
  const currency = CURRENCIES[nextCurrency++]!;
  const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
  const [final] = (await app.work({ runIds: [run.runId] })).runs;
  return { run: final!, folder: final!.destinationFolder ?? '' };
}
const readManifest = async (app: TestApp, folder: string) =>
  JSON.parse((await readBlob(app, `${folder}${MANIFEST_FILE_NAME}`)).toString('utf8')) as PublicManifest;
const hasManifest = (app: TestApp, folder: string) => app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).exists();

describe('the data check of a landed run', () => {
  it('checks every file through its own message, lands Parquet beside it, and manifest.json holds the exact totals of the rows', async () => {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 700, seed: 7 });
    const app = createTestApp(cloud);

    const { run, folder } = await landOne(app);

    expect(run.state).toBe('succeeded');
    const manifest = await readManifest(app, folder);
    const landedRows = await Promise.all(manifest.blobs.map(async (blob) => jsonLines(await readBlob(app, `${folder}${blob.name}`))));
    const allRows = landedRows.flat();
    expect(manifest.rowCount).toBe(3 * 700);
    expect(manifest.blobs.map((blob) => blob.rowCount)).toEqual([700, 700, 700]);
    expect(totalsByKey(manifest.totals ?? [], SUMMED.usage.columns)).toEqual(expectedTotals(allRows, SUMMED.usage));
    expect(manifest.totals!.every((total) => typeof total.customerName === 'string' && total.customerName !== '')).toBe(true);
    expect(manifest.check).toEqual({ problems: 0, examples: [] });
    // One message per file did the work.
    expect(app.logs.filter((line) => line.includes('file checked'))).toHaveLength(3);
    // GET /api/runs/{runId} shows the same figures.
    const detail = await getRun(
      new HttpRequest({ method: 'GET', url: `http://localhost/api/runs/${run.runId}`, params: { runId: run.runId } }),
      app.context(),
      app.deps,
    );
    expect(detail.jsonBody).toMatchObject({ runId: run.runId, status: 'succeeded', rowCount: 2100, totals: manifest.totals, check: manifest.check });

    expect(manifest.parquet).toHaveLength(manifest.blobs.length);
    const listed = await listBlobs(app);
    for (const [i, file] of manifest.parquet!.entries()) {
      const source = manifest.blobs[i]!.name;
      const name = `parquet/${source}.parquet`;
      expect(listed).toContain(`${folder}${name}`);
      const bytes = await readBlob(app, `${folder}${name}`);
      expect(file).toEqual({ name, source, rowCount: 700, byteCount: bytes.length });
      const readBack = await readBackParquet(bytes, schemaFor('usage', 'full'), {
        rowCount: 700,
        totals: expectedTotals(landedRows[i]!, SUMMED.usage),
      });
      expect(readBack.mismatches).toEqual([]);
    }
  }, 120_000);

  it('OUTPUT_FORMATS=raw: the data is checked and summed, and no Parquet lands', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 100 });
    const app = createTestApp(cloud, { OUTPUT_FORMATS: 'raw' });

    const { run, folder } = await landOne(app);

    expect(run.state).toBe('succeeded');
    const manifest = await readManifest(app, folder);
    expect(manifest.rowCount).toBe(200);
    expect(manifest.parquet).toBeUndefined();
    expect((await listBlobs(app)).filter((name) => name.includes('/parquet/'))).toEqual([]);
  }, 60_000);
});

describe('a landed file that cannot be read fails the run, naming it, with no manifest.json', () => {
  /** Starts an export, waits until its files are at the source, and replaces one with `corrupt(its bytes)`. */
  async function exportWithCorruptSource(app: TestApp, corrupt: (bytes: Buffer) => Buffer): Promise<{ runId: string; name: string }> {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 300 });
    const currency = CURRENCIES[nextCurrency++]!;
    const exportsBefore = cloud.billing.exports().length;
    const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
    // The POST is the worker's first step.
    await app.work({ runIds: [run.runId], maxMessages: 1 });
    const exported = cloud.billing.exports()[exportsBefore]!;
    const source = BlobServiceClient.fromConnectionString(cloud.azurite.connectionString(BILLING_SOURCE_ACCOUNT));
    const [container, ...folder] = exported.rootDirectory.slice(cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT).length + 1).split('/');
    const name = exported.blobNames[1]!;
    const blob = source.getContainerClient(container!).getBlockBlobClient(`${folder.join('/')}/${name}`);
    for (;;) {
      const all = await Promise.all(
        exported.blobNames.map((other) =>
          source
            .getContainerClient(container!)
            .getBlobClient(`${folder.join('/')}/${other}`)
            .exists(),
        ),
      );
      if (all.every(Boolean)) break;
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 50));
    }
    await blob.uploadData(corrupt(await blob.downloadToBuffer()));
    return { runId: run.runId, name };
  }

  it('a truncated gzip', async () => {
    const app = createTestApp(cloud);
    const { runId, name } = await exportWithCorruptSource(app, (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)));

    const [final] = (await app.work({ runIds: [runId] })).runs;

    expect(final).toMatchObject({ state: 'failed', errorCode: 'InvalidDataFile' });
    expect(final!.errorMessage).toMatch(
      new RegExp(`^the data check failed: '${name.replace(/[.]/g, '\\.')}' line \\d+ does not decompress \\(Z_BUF_ERROR: unexpected end of file\\)$`),
    );
    const folder = final!.destinationFolder!;
    expect(await hasManifest(app, folder)).toBe(false);
    expect((await listBlobs(app)).filter((blob) => blob.startsWith(folder) && !blob.includes('/parquet/'))).toHaveLength(3);
  }, 60_000);

  it('a broken line', async () => {
    const app = createTestApp(cloud);
    const { runId, name } = await exportWithCorruptSource(app, (bytes) => {
      const lines = gunzipSync(bytes).toString('utf8').split('\n');
      lines[2] = `${lines[2]!.slice(0, 50)}`;
      return gzipSync(lines.join('\n'));
    });

    const [final] = (await app.work({ runIds: [runId] })).runs;

    expect(final).toMatchObject({ state: 'failed', errorCode: 'InvalidDataFile' });
    expect(final!.errorMessage).toMatch(new RegExp(`^the data check failed: '${name.replace(/[.]/g, '\\.')}' line 3 is not JSON \\(`));
    expect(await hasManifest(app, final!.destinationFolder!)).toBe(false);
  }, 60_000);
});

describe('fan-out: each message redoes its own file only', () => {
  const dataFileReads = (app: TestApp): FaultRule => ({
    service: 'blob',
    method: 'GET',
    path: new RegExp(`^/partnerdest/${app.deps.destination.containerName}/[^?]*\\.json\\.gz(\\?|$)`),
    fault: { kind: 'delay', ms: 0 },
  });

  it('a file whose check did not finish is checked again by its redelivery alone; manifest.json waits for it', async () => {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 200 });
    const app = createTestApp(cloud);
    const { run, folder } = await landOne(app);
    const before = await readManifest(app, folder);
    // As a crash mid-file leaves it: the run checking its files, file 1 not done, no manifest.json yet.
    await app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).delete();
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const checking = await app.deps.ledger.saveRun({ ...stored.run, state: 'copying', finishedAt: undefined }, stored.etag);
    const [, second] = await app.deps.fileChecks.listFiles(run.runId, run.manifestETag!);
    await app.deps.fileChecks.planFiles(run.runId, run.manifestETag!, [second!]);
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule(dataFileReads(app));
    const reads = () =>
      cloud
        .proxy!.injected()
        .slice(start)
        .filter((fault) => fault.method === 'GET' && fault.path.includes('.json.gz'));

    // A late duplicate of another file's message: that file is done; nothing is read, and with file 1 pending no manifest.json.
    await pollExport(fileCheckMessageFor(checking.run, 0), app.context(), app.deps);
    expect(reads()).toEqual([]);
    expect(await hasManifest(app, folder)).toBe(false);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('copying');

    await pollExport(fileCheckMessageFor(checking.run, 1), app.context(), app.deps);

    expect(reads().map((fault) => fault.path.split('?')[0]!.split('/').pop())).toEqual([second!.name]);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('succeeded');
    const after = await readManifest(app, folder);
    expect({ ...after, copiedAt: before.copiedAt }).toEqual(before);
    cloud.proxy!.clearRules();
  }, 60_000);

  it('a file check that arrives before its step is saved (messages go first) comes back, instead of being dropped as stale', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 50 });
    const app = createTestApp(cloud);
    const { run, folder } = await landOne(app);
    await app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).delete();
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    // As between the landing's sends and its save: the run one step behind its file messages.
    const behind = await app.deps.ledger.saveRun({ ...stored.run, state: 'copying', finishedAt: undefined }, stored.etag);
    const files = await app.deps.fileChecks.listFiles(run.runId, run.manifestETag!);
    await app.deps.fileChecks.planFiles(run.runId, run.manifestETag!, files);
    const early = { ...behind.run, seq: behind.run.seq + 1 };

    for (const file of files) await pollExport(fileCheckMessageFor(early, file.index), app.context(), app.deps);
    expect(app.logs.filter((line) => line.includes('file check arrived before its step was saved') && line.includes('"delaySeconds":1'))).toHaveLength(2);
    // One that came back early twice already waits longer, and says so in the message it sends.
    await pollExport({ ...fileCheckMessageFor(early, files[0]!.index), early: 2 }, app.context(), app.deps);
    expect(app.logs.filter((line) => line.includes('file check arrived before its step was saved') && line.includes('"delaySeconds":4'))).toHaveLength(1);
    const queue = app.clients.queueService.getQueueClient(app.deps.queue.name);
    let returned: unknown[] = [];
    while (returned.length === 0) {
      await new Promise((resolveSoon) => setTimeout(resolveSoon, 250));
      const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
      returned = peekedMessageItems.map((item) => parsePollMessage(item.messageText)).filter((message) => message.early === 3);
    }
    expect(returned).toEqual([{ ...fileCheckMessageFor(early, files[0]!.index), early: 3 }]);
    await app.deps.ledger.saveRun(early, behind.etag);
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final!.state).toBe('succeeded');
    expect((await readManifest(app, folder)).rowCount).toBe(100);
  }, 60_000);

  it('two deliveries checking the same file at once (a queue duplicate): the one whose Parquet commit loses checks it again, and the run lands', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 50 });
    const app = createTestApp(cloud);
    const { run, folder } = await landOne(app);
    await app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).delete();
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const checking = await app.deps.ledger.saveRun({ ...stored.run, state: 'copying', finishedAt: undefined }, stored.etag);
    const files = await app.deps.fileChecks.listFiles(run.runId, run.manifestETag!);
    await app.deps.fileChecks.planFiles(run.runId, run.manifestETag!, files);
    // The first block list commit is held, so the second delivery's commit lands first and
    // deletes the blocks the first staged (Put Block List drops every uncommitted block it does not name).
    cloud.proxy!.addRule({ service: 'blob', method: 'PUT', path: /\/parquet\/[^?]*\.parquet\?.*comp=blocklist/, fault: { kind: 'delay', ms: 4000 }, times: 1 });
    const message = fileCheckMessageFor(checking.run, 0);
    // Two instances of the same app: each its own process, with its own file check slots.
    await Promise.all([pollExport(message, app.context(), app.deps), pollExport(message, app.context(), createDeps(app.deps.settings))]);
    cloud.proxy!.clearRules();
    expect(
      app.logs.filter((line) => line.includes('file check hit a transient failure; will retry') && line.includes('committed its Parquet copy first')),
    ).toHaveLength(1);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('copying');

    await pollExport(fileCheckMessageFor(checking.run, 1), app.context(), app.deps);
    const [final] = (await app.work({ runIds: [run.runId] })).runs;
    expect(final!.state).toBe('succeeded');
    expect((await readManifest(app, folder)).parquet!.map((file) => file.rowCount)).toEqual([50, 50]);
  }, 60_000);

  it('a finisher whose manifest.json write fails beyond the SDK retries gives its claim back: the redelivery finishes the run', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 40 });
    const app = createTestApp(cloud);
    // Every try (4 per call) of the first manifest.json write.
    cloud.proxy!.addRule({ service: 'blob', method: 'PUT', path: /\/manifest\.json(\?|$)/, fault: { kind: 'status', status: 503 }, times: 4 });

    const { run, folder } = await landOne(app);

    cloud.proxy!.clearRules();
    expect(run.state).toBe('succeeded');
    expect(app.logs.filter((line) => line.includes('another delivery is finishing this run; standing down'))).toEqual([]);
    expect((await readManifest(app, folder)).rowCount).toBe(80);
  }, 60_000);

  it('a landing that finds every file checked, whose finishing fails (manifest.json refused beyond the SDK retries), tries again later and lands', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 30 });
    const app = createTestApp(cloud);
    const { run, folder } = await landOne(app);
    // As a crash before manifest.json left it: every file checked, the run copying, its landing step due.
    await app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).delete();
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    await app.deps.ledger.saveRun({ ...stored.run, state: 'copying', finishedAt: undefined }, stored.etag);
    cloud.proxy!.addRule({ service: 'blob', method: 'PUT', path: /\/manifest\.json(\?|$)/, fault: { kind: 'status', status: 503 }, times: 4 });
    await app.deps.queue.send(pollMessageFor(stored.run), 0);

    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    cloud.proxy!.clearRules();
    expect(final).toMatchObject({ state: 'succeeded', landingAttempts: 1 });
    expect(app.logs.filter((line) => line.includes('copying hit a transient failure; will resume'))).toHaveLength(1);
    expect((await readManifest(app, folder)).rowCount).toBe(60);
  }, 60_000);

  it('a Parquet upload that fails beyond the SDK retries is retried with its file, not waited on for ever', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 100 });
    const app = createTestApp(cloud);
    // Every try (4 per call) of the first upload request of both files' Parquet copies.
    cloud.proxy!.addRule({ service: 'blob', method: 'PUT', path: /\/parquet\/[^?]*\.parquet(\?|$)/, fault: { kind: 'status', status: 500 }, times: 8 });

    const { run, folder } = await landOne(app);

    cloud.proxy!.clearRules();
    expect(run.state).toBe('succeeded');
    expect(app.logs.filter((line) => line.includes('file check hit a transient failure; will retry') && line.includes('.parquet'))).not.toEqual([]);
    const manifest = await readManifest(app, folder);
    expect(manifest.parquet!.map((file) => file.rowCount)).toEqual([100, 100]);
  }, 60_000);

  it('a transient failure reading one file retries that file; the run still lands whole', async () => {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 100 });
    const app = createTestApp(cloud);
    // Every try the SDK makes (4 per call) for each of the 3 files' first reads.
    cloud.proxy!.addRule({ ...dataFileReads(app), fault: { kind: 'status', status: 503 }, times: 12 });

    const { run, folder } = await landOne(app);

    cloud.proxy!.clearRules();
    expect(run.state).toBe('succeeded');
    expect(app.logs.filter((line) => line.includes('file check hit a transient failure; will retry')).length).toBeGreaterThanOrEqual(1);
    expect((await readManifest(app, folder)).rowCount).toBe(300);
  }, 60_000);
});
