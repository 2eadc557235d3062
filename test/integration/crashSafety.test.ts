/**
 * Crashes at the worst moments, duplicate work and lost messages: every run still ends
 * succeeded or failed with a reason, one export per key, and manifest.json only over verified
 * files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import type { Run } from '../../src/core/run';
import { MAX_REVIVALS } from '../../src/core/policy';
import { reviveStalledRuns } from '../../src/functions/reviveRuns';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, listBlobs, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 3, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});

const start = (app: TestApp, currency: string) => startExport(unbilledRequest(currency), app.deps, app.context());

async function blobEtags(app: TestApp): Promise<Map<string, string>> {
  const etags = new Map<string, string>();
  for await (const blob of app.clients.destinationContainer.listBlobsFlat()) etags.set(blob.name, blob.properties.etag ?? '');
  return etags;
}

/** Loses every message of the app's queue, delayed ones included. */
async function loseMessages(app: TestApp): Promise<void> {
  await app.clients.queueService.getQueueClient(app.deps.queue.name).clearMessages();
}

/** The app as the sweeper sees it some hours from now. */
const hoursLater = (app: TestApp, hours = 1) => ({ ...app.deps, now: () => new Date(Date.now() + hours * 3600_000) });

/** Rewrites a run in the ledger as a crash would have left it. */
async function rewind(app: TestApp, runId: string, change: (run: Run) => Run): Promise<Run> {
  const stored = (await app.deps.ledger.getRun(runId))!;
  const rewound = change(stored.run);
  await app.deps.ledger.saveRun(rewound, stored.etag);
  return rewound;
}

describe('crash safety', () => {
  it('a crash between the last copy and manifest.json: the resumed run copies nothing again and writes the manifest', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'AUD');
    const [landed] = (await app.work({ runIds: [run.runId] })).runs;
    const folder = landed!.destinationFolder!;
    const before = await blobEtags(app);
    await app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`).delete();
    // As the ledger stood when the process died: copying, its message still on the queue.
    const rewound = await rewind(app, run.runId, (r) => ({ ...r, state: 'copying', finishedAt: undefined, bytesCopied: 0 }));
    await app.deps.queue.send({ v: 1, runId: run.runId, seq: rewound.seq }, 0);

    const [resumed] = (await app.work({ runIds: [run.runId] })).runs;

    expect(resumed).toMatchObject({ state: 'succeeded', bytesCopied: landed!.bytesCopied });
    const after = await blobEtags(app);
    for (const [name, etag] of before) if (!name.endsWith(MANIFEST_FILE_NAME)) expect(after.get(name), name).toBe(etag);
    expect(after.has(`${folder}${MANIFEST_FILE_NAME}`)).toBe(true);
  });

  it('a crash between the export POST and the ledger write: the recovery message starts the run again', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'CAD');
    await loseMessages(app);
    // As if the process died right after POSTing: the ledger still says starting.
    const rewound = await rewind(app, run.runId, (r) => ({ ...r, state: 'starting', seq: 0, operationUrl: undefined, operationId: undefined }));
    // The recovery message the timer sent before POSTing comes due.
    await app.deps.queue.send({ v: 1, runId: run.runId, seq: rewound.seq }, 0);

    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', blobCount: 3 });
    expect(final!.operationId).not.toBe(run.operationId);
  });

  it('two workers on one queue land one export once', async () => {
    const app = createTestApp(cloud);
    const before = cloud.billing.exports().length;
    const { run } = await start(app, 'NZD');

    const [first, second] = await Promise.all([app.work({ runIds: [run.runId] }), app.work({ runIds: [run.runId] })]);

    expect(first.runs[0]).toMatchObject({ state: 'succeeded' });
    expect(second.runs[0]).toMatchObject({ state: 'succeeded' });
    expect(cloud.billing.exports().length - before).toBe(1);
    expect((await listBlobs(app)).filter((name) => name.endsWith(MANIFEST_FILE_NAME))).toHaveLength(1);
  });

  it('a run whose messages were lost is revived by the sweeper and finishes', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'SGD');
    await loseMessages(app);

    const revival = await reviveStalledRuns(hoursLater(app), app.context());
    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(revival.revived).toEqual([run.runId]);
    expect(final).toMatchObject({ state: 'succeeded', revivals: 1 });
  });

  it(`a run that makes no progress after ${MAX_REVIVALS} revivals fails, saying so`, async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'HKD');
    for (let attempt = 0; attempt < MAX_REVIVALS; attempt++) {
      await loseMessages(app);
      expect((await reviveStalledRuns(hoursLater(app, attempt + 1), app.context())).revived).toContain(run.runId);
    }
    await loseMessages(app);

    const last = await reviveStalledRuns(hoursLater(app, MAX_REVIVALS + 1), app.context());

    expect(last.failed).toEqual([run.runId]);
    expect((await app.deps.ledger.getRun(run.runId))!.run).toMatchObject({
      state: 'failed',
      errorCode: 'Stalled',
      errorMessage: expect.stringContaining(`after ${MAX_REVIVALS} revivals`),
    });
  });

  it('revivals count stalls without progress: a run that advanced between stalls starts counting again', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'PLN');
    for (let attempt = 0; attempt < MAX_REVIVALS - 1; attempt++) {
      await loseMessages(app);
      await reviveStalledRuns(hoursLater(app, attempt + 1), app.context());
    }
    expect((await app.deps.ledger.getRun(run.runId))!.run.revivals).toBe(MAX_REVIVALS - 1);
    // The revived message is delivered: the run takes a step (a poll), then stalls again.
    await app.work({ maxMessages: 1 });
    const advanced = (await app.deps.ledger.getRun(run.runId))!.run;
    expect(advanced.seq).toBeGreaterThan(run.seq);
    await loseMessages(app);

    const revival = await reviveStalledRuns(hoursLater(app, MAX_REVIVALS + 1), app.context());
    await reviveStalledRuns(hoursLater(app, MAX_REVIVALS + 2), app.context());

    expect(revival.revived).toEqual([run.runId]);
    const after = (await app.deps.ledger.getRun(run.runId))!.run;
    expect(after).toMatchObject({ state: advanced.state, revivals: 2 });
    await app.work({ runIds: [run.runId] });
  });

  it('never revives a run whose landing holds a fresh claim, and does not touch its row', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'SEK');
    const [landed] = (await app.work({ runIds: [run.runId] })).runs;
    const later = hoursLater(app);
    // A landing in progress as the sweeper sees it: overdue by its schedule, but its claim is fresh.
    const rewound = await rewind(app, run.runId, (r) => ({
      ...r,
      state: 'copying',
      finishedAt: undefined,
      nextActionAt: new Date(Date.now() - 3600_000).toISOString(),
      landingClaimId: 'a-live-landing',
      landingClaimedUntil: new Date(later.now().getTime() + 60_000).toISOString(),
    }));
    const before = (await app.deps.ledger.getRun(run.runId))!;

    const revival = await reviveStalledRuns(later, app.context());

    expect(revival.revived).not.toContain(landed!.runId);
    expect((await app.deps.ledger.getRun(run.runId))!.etag).toBe(before.etag);
    expect(rewound.state).toBe('copying');
    // Not left in progress for later sweeps in this file.
    await rewind(app, run.runId, () => landed!);
  });

  it('a run whose file checks keep finishing is not revived, however long the check takes; one whose checks stopped is', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'ZAR');
    const [landed] = (await app.work({ runIds: [run.runId] })).runs;
    const eTag = landed!.manifestETag!;
    const files = await app.deps.fileChecks.listFiles(run.runId, eTag);
    // Checking its files for hours: the run's own step long overdue, one file still pending.
    await app.clients.destinationContainer.getBlobClient(`${landed!.destinationFolder!}${MANIFEST_FILE_NAME}`).delete();
    const hoursAgo = new Date(Date.now() - 3 * 3600_000).toISOString();
    await rewind(app, run.runId, (r) => ({ ...r, state: 'copying', finishedAt: undefined, nextActionAt: hoursAgo, checksSentAt: hoursAgo }));
    await app.deps.fileChecks.planFiles(run.runId, eTag, [files[2]!]);
    await loseMessages(app);
    // Its second file was done 20 minutes before the sweep, as the sweeper's clock reads it.
    const sweep = hoursLater(app, 3);
    const doneAt = (minutesBeforeSweep: number) => new Date(sweep.now().getTime() - minutesBeforeSweep * 60_000);
    await app.deps.fileChecks.markDone(run.runId, eTag, files[1]!, files[1]!.result, doneAt(20));
    const before = (await app.deps.ledger.getRun(run.runId))!;

    expect((await reviveStalledRuns(sweep, app.context())).revived).not.toContain(run.runId);
    expect((await app.deps.ledger.getRun(run.runId))!.etag).toBe(before.etag);

    // Nothing finished for longer than the check wait plus the grace: stalled after all.
    await app.deps.fileChecks.markDone(run.runId, eTag, files[1]!, files[1]!.result, doneAt(61));
    expect((await reviveStalledRuns(sweep, app.context())).revived).toContain(run.runId);
    // Its files are all landed: the revival resumes the pending check from the ledger, without
    // asking Graph again (an operation Graph has forgotten would restart the export).
    const graphRequests = cloud.billing.requests().length;
    const [final] = (await app.work({ runIds: [run.runId] })).runs;
    expect(final!.state).toBe('succeeded');
    expect(cloud.billing.requests().slice(graphRequests)).toEqual([]);
    expect(app.logs.filter((line) => line.includes('resuming the checks'))).toHaveLength(1);
    expect(final!.checksSentAt).toBeUndefined();
  });

  it('leaves healthy runs alone', async () => {
    const app = createTestApp(cloud);
    const { run } = await start(app, 'MXN');

    const revival = await reviveStalledRuns(app.deps, app.context());

    expect(revival.revived).not.toContain(run.runId);
    await app.work({ runIds: [run.runId] });
  });
});
