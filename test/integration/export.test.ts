/**
 * The real flow, end to end: timer handler → real queue → queue handler (run the way the host
 * runs it) → server-side copies → manifest.json, against Azurite, the managed-identity endpoint
 * and the Partner Billing emulator. Nothing of ours is mocked.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_SOURCE_ACCOUNT, startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { randomUUID } from 'node:crypto';
import { MANIFEST_FILE_NAME, billingMonthFor, exportKeyString } from '../../src/core/naming';
import { until } from '../support/cli';
import { aRun } from '../support/runs';
import { pollExport } from '../../src/functions/pollExport';
import { startExport, startExportsOnSchedule } from '../../src/functions/startExport';
import { createTestApp, listBlobs, readBlob, timer, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud();
});
afterAll(async () => {
  await cloud?.stop();
});

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

async function sourceBytes(rootDirectory: string, name: string): Promise<Buffer> {
  const source = BlobServiceClient.fromConnectionString(cloud.azurite.connectionString(BILLING_SOURCE_ACCOUNT));
  const [container, ...folder] = rootDirectory.slice(cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT).length + 1).split('/');
  return source
    .getContainerClient(container!)
    .getBlobClient(`${folder.join('/')}/${name}`)
    .downloadToBuffer();
}

function start(app: TestApp, currency: string, overrides: { force?: boolean } = {}) {
  return startExport(unbilledRequest(currency, overrides), app.deps, app.context('startExports'));
}

describe('the monthly export', () => {
  it('lands every file of every currency, verified, with manifest.json last', async () => {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 40 });
    const app = createTestApp(cloud, { EXPORT_CURRENCIES: 'EUR,USD' });
    const exportsBefore = cloud.billing.exports().length;

    await startExportsOnSchedule(timer, app.context('startExports'), app.deps);
    const result = await app.work();

    const exports = cloud.billing.exports().slice(exportsBefore);
    expect(exports.map((e) => e.body.currencyCode).sort()).toEqual(['EUR', 'USD']);
    expect(result.runs.map((run) => run.state)).toEqual(['succeeded', 'succeeded']);
    for (const exported of exports) {
      const run = result.runs.find((r) => 'currency' in r && r.currency === exported.body.currencyCode)!;
      const folder = `unbilled-usage/${exported.billingMonth}/${exported.body.currencyCode}/full/${exported.eTag}/`;
      expect(run).toMatchObject({
        destinationContainer: app.deps.destination.containerName,
        destinationFolder: folder,
        blobCount: 3,
        bytesCopied: exported.totalBytes,
        manifestETag: exported.eTag,
      });
      expect(run.pollCount).toBeGreaterThanOrEqual(3);
      for (const name of exported.blobNames) {
        expect(md5(await readBlob(app, `${folder}${name}`))).toBe(md5(await sourceBytes(exported.rootDirectory, name)));
      }
      const manifestText = (await readBlob(app, `${folder}${MANIFEST_FILE_NAME}`)).toString('utf8');
      expect(manifestText).not.toMatch(/sig=|sv=|se=/);
      const manifest = JSON.parse(manifestText) as { blobs: Array<{ name: string; byteCount: number; partitionValue: string }> };
      expect(manifest).toMatchObject({
        runId: run.runId,
        kind: 'unbilled-usage',
        billingMonth: exported.billingMonth,
        currency: exported.body.currencyCode,
        attributeSet: 'full',
        operationId: exported.operationId,
        eTag: exported.eTag,
        partnerTenantId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        schemaVersion: '2',
        dataFormat: 'compressedJSON',
        exportedAt: expect.any(String),
        copiedAt: expect.any(String),
        blobCount: 3,
        byteCount: exported.totalBytes,
      });
      expect(manifest.blobs.map((b: { name: string }) => b.name)).toEqual(exported.blobNames);
      expect(manifest.blobs.every((b: { byteCount: number; partitionValue: string }) => b.byteCount > 0 && b.partitionValue === 'default')).toBe(true);
    }
    expect(cloud.billing.requests().every((request) => request.authorized)).toBe(true);
  });

  it('records a failed export with Graph’s code and message, and writes nothing', async () => {
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: 'ExportFailed', message: 'The export could not be produced' } });
    const app = createTestApp(cloud);

    const { run } = await start(app, 'GBP');
    const result = await app.work({ runIds: [run.runId] });

    expect(result.runs[0]).toMatchObject({
      state: 'failed',
      errorCode: 'ExportFailed',
      errorMessage: 'Graph reported the export failed: The export could not be produced (code ExportFailed)',
    });
    expect(await listBlobs(app)).toEqual([]);
    expect(app.logs.some((line) => line.startsWith('error: run failed') && line.includes('"errorCode":"ExportFailed"'))).toBe(true);
  });

  it('records Graph’s 5000 No data available as noData, not a failure, and writes nothing', async () => {
    cloud.billing.setScenario({ outcome: 'failed' });
    const app = createTestApp(cloud);

    const { run } = await start(app, 'ISK');
    const result = await app.work({ runIds: [run.runId] });

    expect(result.runs[0]).toMatchObject({
      state: 'noData',
      errorCode: '5000',
      errorMessage: 'Graph has no data for this export: No data available (code 5000)',
    });
    expect(await listBlobs(app)).toEqual([]);
    expect(app.logs.some((line) => line.startsWith('error: run failed'))).toBe(false);
  });

  it.each([
    ['an inline manifest and the "completed" status', { manifestDelivery: 'inline', successStatus: 'completed' }],
    ['a navigation link and the "Succeeded" status', { manifestDelivery: 'link', successStatus: 'Succeeded' }],
  ] as const)('accepts %s', async (_case, scenario) => {
    cloud.billing.setScenario({ ...scenario, fileCount: 2, rowsPerFile: 10, retryAfterSeconds: null });
    const app = createTestApp(cloud);

    const { run } = await start(app, scenario.manifestDelivery === 'inline' ? 'CHF' : 'SEK');
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', blobCount: 2 });
    expect((await listBlobs(app)).filter((name) => name.endsWith(MANIFEST_FILE_NAME))).toHaveLength(1);
  });

  it('resumes after a restart in the middle, from the ledger and the queue', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 10, runningPolls: 3 });
    const first = createTestApp(cloud);
    const { run } = await start(first, 'NOK');

    const interrupted = await first.work({ runIds: [run.runId], maxMessages: 2 });
    expect(interrupted.runs[0]!.state).toBe('polling');

    // A new process: new clients, same queue, container and ledger.
    const second = createTestApp(cloud, { POLL_QUEUE: first.deps.queue.name, PARTNER_CONTAINER: first.deps.destination.containerName });
    const resumed = await second.work({ runIds: [run.runId] });

    expect(resumed.runs[0]).toMatchObject({ state: 'succeeded', blobCount: 2 });
    expect(cloud.billing.exports().filter((e) => e.operationId === run.operationId)).toHaveLength(1);
  });

  it('starts no second export for a month that is running or has landed', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5 });
    const app = createTestApp(cloud);
    const before = cloud.billing.exports().length;

    const first = await start(app, 'DKK');
    const duringRun = await start(app, 'DKK');
    await app.work({ runIds: [first.run.runId] });
    const afterLanding = await start(app, 'DKK');

    expect(first.kind).toBe('started');
    expect(duringRun).toMatchObject({ kind: 'skipped', run: { runId: first.run.runId } });
    expect(afterLanding).toMatchObject({ kind: 'skipped', reason: expect.stringContaining('already landed') });
    expect(cloud.billing.exports().length - before).toBe(1);

    const forced = await start(app, 'DKK', { force: true });
    expect(forced.kind).toBe('started');
    await app.work({ runIds: [forced.run.runId] });
  });

  it('lets only one of two simultaneous firings start the export', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5 });
    const app = createTestApp(cloud);
    const before = cloud.billing.exports().length;

    const outcomes = await Promise.all([start(app, 'PLN'), start(app, 'PLN'), start(app, 'PLN')]);

    expect(outcomes.filter((o) => o.kind === 'started')).toHaveLength(1);
    expect(cloud.billing.exports().length - before).toBe(1);
    await app.work({ runIds: [outcomes.find((o) => o.kind === 'started')!.run.runId] });
  });

  it('a start that finds the key claimed but its run not yet recorded stands down', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const before = cloud.billing.exports().length;
    const other = aRun({
      runId: randomUUID(),
      billingMonth: billingMonthFor('last', new Date()),
      currency: 'RON',
      startedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      state: 'starting',
      seq: 0,
    });
    // Another start's first write: the key claim, pointing at a run it has not recorded yet.
    await app.clients.ledgerTable.createEntity({ partitionKey: 'key', rowKey: exportKeyString(other), latestRunId: other.runId, claimedAt: other.startedAt });

    const outcome = start(app, 'RON');
    // Once the start has found the claim without a run (and so waits for that run), record it.
    await until(
      () => app.logs.some((line) => line.includes('export not started') && line.includes('another start for this month is recording its run')),
      'the start to find the claim without a run',
      { attempts: 300, intervalMs: 50 },
    );
    const { keyEtag } = await app.deps.ledger.latestForKey(other);
    await app.deps.ledger.createRun(other, keyEtag); // the other start records its run

    expect(await outcome).toMatchObject({ kind: 'skipped', reason: 'another start for this month is recording its run', run: { runId: other.runId } });
    expect(cloud.billing.exports().length).toBe(before);
  });

  it('works a batch of messages at once, as host.json batchSize says', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 0, retryAfterSeconds: null });
    const app = createTestApp(cloud);
    const runs = [];
    for (const currency of ['KES', 'NGN', 'EGP', 'MAD']) runs.push((await start(app, currency)).run);
    const injectedBefore = cloud.billing.faults.injected().length;
    // Every first poll is held 5 s at Graph: one at a time, the first would be answered (and its
    // pollCount recorded) before the second is even sent.
    const removeFault = cloud.billing.faults.add({ endpoint: 'operation', fault: { kind: 'delay', ms: 5000 }, times: 4 });
    try {
      const working = app.work({ runIds: runs.map((run) => run.runId) });
      await until(() => cloud.billing.faults.injected().length - injectedBefore === 4, 'the four first polls to be held', { attempts: 300, intervalMs: 50 });
      const pollCounts = await Promise.all(runs.map(async (run) => (await app.deps.ledger.getRun(run.runId))!.run.pollCount));

      expect(pollCounts).toEqual(runs.map((run) => run.pollCount)); // all four GETs in flight at once
      expect((await working).runs.map((run) => run.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    } finally {
      removeFault();
    }
  });

  it('ignores duplicate deliveries of a poll message', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5, runningPolls: 4, notStartedPolls: 0 });
    const app = createTestApp(cloud);
    const { run } = await start(app, 'CZK');
    const message = { v: 1, runId: run.runId, seq: run.seq };
    const polls = () => cloud.billing.requests().filter((r) => r.path.endsWith(`/operations/${run.operationId}`)).length;

    await Promise.all([pollExport(message, app.context(), app.deps), pollExport(message, app.context(), app.deps)]);

    expect(polls()).toBe(2);
    expect(app.logs.filter((line) => line.includes('next poll scheduled'))).toHaveLength(2); // the start's, and one of the two deliveries'
    expect(app.logs.some((line) => line.includes('another worker advanced this run; standing down'))).toBe(true);
    const stored = (await app.deps.ledger.getRun(run.runId))!.run;
    expect(stored.seq).toBe(run.seq + 1);
    await pollExport(message, app.context(), app.deps);
    expect(app.logs.some((line) => line.includes('stale message dropped'))).toBe(true);
    await app.work({ runIds: [run.runId] });
  });

  it('a poll message that arrives before its step is saved (messages go first) comes back, instead of being dropped as stale', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5, runningPolls: 1, notStartedPolls: 0 });
    const app = createTestApp(cloud);
    const { run } = await start(app, 'BGN');
    const polls = () => cloud.billing.requests().filter((r) => r.path.endsWith(`/operations/${run.operationId}`)).length;
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const early = { v: 1, runId: run.runId, seq: run.seq + 1 };

    await pollExport(early, app.context(), app.deps);

    expect(app.logs.filter((line) => line.includes('message arrived before its step was saved; again shortly'))).toHaveLength(1);
    expect(polls()).toBe(0);
    // The save that message was sent ahead of: the start's own message is now the stale one, and
    // only the early message, sent again, can carry the run on.
    await app.deps.ledger.saveRun({ ...stored.run, seq: run.seq + 1 }, stored.etag);
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final!.state).toBe('succeeded');
    expect(app.logs.some((line) => line.includes('stale message dropped'))).toBe(true);
  });

  it('moves a malformed message to the poison queue, saying why, and carries on', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const queue = app.clients.queueService.getQueueClient(app.deps.queue.name);
    await queue.sendMessage(Buffer.from('{"hello":"world"}').toString('base64'));
    await queue.sendMessage('this is not base64!');

    const result = await app.work({ maxMessages: 2 });

    const poison = await app.clients.queueService.getQueueClient(`${app.deps.queue.name}-poison`).receiveMessages({ numberOfMessages: 10 });
    expect(poison.receivedMessageItems).toHaveLength(2);
    // As the host keeps them: base64 stays base64 (so an operator can move it back), and text
    // the host could not decode stays as it came.
    expect(poison.receivedMessageItems.map((m) => m.messageText).sort()).toEqual(
      [Buffer.from('{"hello":"world"}').toString('base64'), 'this is not base64!'].sort(),
    );
    expect(result.messagesProcessed).toBe(2);
    expect(app.logs.some((line) => /message moved to the poison queue .*'v' is missing: expected 1/.test(line))).toBe(true);
    expect(app.logs.some((line) => line.includes('is not base64; moved to the poison queue'))).toBe(true);
  });

  it('gives up at the deadline with a reason that names the setting', async () => {
    cloud.billing.setScenario({ runningPolls: 1000, retryAfterSeconds: null });
    const app = createTestApp(cloud, { EXPORT_DEADLINE_SECONDS: '2' });

    const { run } = await start(app, 'HUF');
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final).toMatchObject({ state: 'failed', errorCode: 'DeadlineExceeded', errorMessage: expect.stringContaining('EXPORT_DEADLINE_SECONDS (2 s)') });
  });

  it('refuses a manifest whose files live on a host that is not allowed, writing nothing', async () => {
    cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5 });
    const app = createTestApp(cloud, { EXPORT_SOURCE_HOSTS: '.blob.core.windows.net' });

    const { run } = await start(app, 'JPY');
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final).toMatchObject({
      state: 'failed',
      errorCode: 'InvalidManifest',
      errorMessage: expect.stringContaining("host '127.0.0.1' is not allowed by EXPORT_SOURCE_HOSTS"),
    });
    expect(await listBlobs(app)).toEqual([]);
  });

  it('keeps tokens and SAS signatures out of logs, the ledger and the queue', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5 });
    // An export of its own, with a SAS that expires once, so the logs hold a whole run's lines,
    // a refresh of the SAS included, for the check to read.
    const removeFault = cloud.billing.faults.add({ endpoint: 'manifest', fault: { kind: 'expiredSas' }, times: 1 });
    const app = createTestApp(cloud);
    try {
      const { run } = await start(app, 'MXN');
      const [final] = (await app.work({ runIds: [run.runId] })).runs;
      expect(final).toMatchObject({ state: 'succeeded' });
    } finally {
      removeFault();
    }
    const tokens = cloud.authority.issued();
    const signatures = cloud.billing.sasSignatures();
    expect(tokens.length).toBeGreaterThan(0);
    expect(signatures.length).toBeGreaterThan(1);
    expect(app.logs.filter((line) => line.includes('run succeeded')).length).toBe(1);

    const queued = await app.clients.queueService.getQueueClient(app.deps.queue.name).peekMessages({ numberOfMessages: 32 });
    const everything = [
      JSON.stringify(await app.deps.ledger.listRuns()),
      ...app.logs,
      ...queued.peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8')),
    ].join('\n');
    for (const token of tokens) {
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(token.split('.')[2]);
    }
    for (const signature of signatures) {
      expect(everything).not.toContain(signature);
      expect(everything).not.toContain(encodeURIComponent(signature));
    }
    expect(everything).not.toMatch(/[?&]sig=/);
  });
});
