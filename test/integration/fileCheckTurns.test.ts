/**
 * How many file checks one process runs at once, and what bounds a check that never finishes:
 * FILE_CHECKS_PER_PROCESS at a time (a waiting check takes its turn or goes back on the queue),
 * and MAX_CHECK_ROUNDS sends of the same pending checks with no file finishing before the run
 * fails. Against Azurite behind the fault proxy (to slow the files' reads), the identity
 * endpoint and the billing emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import type { FaultRule } from '../../emulator/faultProxy';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import { FILE_CHECKS_PER_PROCESS, FILE_CHECK_BUSY_DELAY_SECONDS, MAX_CHECK_ROUNDS } from '../../src/core/policy';
import { fileCheckMessageFor, pollMessageFor } from '../../src/core/pollMessage';
import type { Run } from '../../src/core/run';
import { pollExport } from '../../src/functions/pollExport';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ faultProxy: true });
}, 60_000);
afterAll(async () => {
  await cloud?.stop();
});

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF'];
let nextCurrency = 0;

/** A run landed and checked, then set back as if its files were still being checked: every file pending, no manifest.json. */
async function checkingAgain(app: TestApp): Promise<Run> {
  const { run } = await startExport(unbilledRequest(CURRENCIES[nextCurrency++]!), app.deps, app.context());
  const [landed] = (await app.work({ runIds: [run.runId] })).runs;
  expect(landed!.state).toBe('succeeded');
  await app.clients.destinationContainer.getBlobClient(`${landed!.destinationFolder!}${MANIFEST_FILE_NAME}`).delete();
  const stored = (await app.deps.ledger.getRun(run.runId))!;
  const saved = await app.deps.ledger.saveRun({ ...stored.run, state: 'copying', finishedAt: undefined }, stored.etag);
  await app.deps.fileChecks.planFiles(run.runId, landed!.manifestETag!, await app.deps.fileChecks.listFiles(run.runId, landed!.manifestETag!));
  await app.clients.queueService.getQueueClient(app.deps.queue.name).clearMessages();
  return saved.run;
}

const slowDataFileReads = (app: TestApp): FaultRule => ({
  service: 'blob',
  method: 'GET',
  path: new RegExp(`^/partnerdest/${app.deps.destination.containerName}/[^?]*\\.json\\.gz(\\?|$)`),
  fault: { kind: 'delay', ms: 1_500 },
});

/** Every file's check at once, each file's read slowed: how many files were read, and what was logged meanwhile. */
async function checkAllAtOnce(app: TestApp, run: Run): Promise<{ reads: number; logs: string[] }> {
  const reads = cloud.proxy!.injected().length;
  const logged = app.logs.length;
  cloud.proxy!.addRule(slowDataFileReads(app));
  await Promise.all(Array.from({ length: FILE_CHECKS_PER_PROCESS + 1 }, (_, index) => pollExport(fileCheckMessageFor(run, index), app.context(), app.deps)));
  cloud.proxy!.clearRules();
  return { reads: cloud.proxy!.injected().length - reads, logs: app.logs.slice(logged) };
}

/** Messages on the app's queue, delayed ones included (the approximate count counts invisible ones too). */
async function queuedCount(app: TestApp): Promise<number> {
  const properties = await app.clients.queueService.getQueueClient(app.deps.queue.name).getProperties();
  return properties.approximateMessagesCount ?? 0;
}

describe('file checks per process', () => {
  it(`runs ${FILE_CHECKS_PER_PROCESS} at once; one more that finds no turn within its wait goes back on the queue, unread`, async () => {
    cloud.billing.setScenario({ fileCount: FILE_CHECKS_PER_PROCESS + 1, rowsPerFile: 50 });
    const app = createTestApp(cloud, {}, { fileCheckSlotWaitMs: 1_000 });
    const run = await checkingAgain(app);
    const { reads, logs } = await checkAllAtOnce(app, run);
    expect(reads).toBe(FILE_CHECKS_PER_PROCESS);
    const handedBack = logs.filter((line) => line.includes('file check handed back: this process is checking other files'));
    expect(handedBack).toHaveLength(1);
    expect(handedBack[0]).toContain(`"delaySeconds":${FILE_CHECK_BUSY_DELAY_SECONDS}`);
    expect(await queuedCount(app)).toBe(1);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('copying');
    expect(await app.deps.fileChecks.anyPending(run.runId, run.manifestETag!)).toBe(true);
  }, 60_000);

  it('a check that gets its turn within the wait runs: every file read once and the run lands', async () => {
    cloud.billing.setScenario({ fileCount: FILE_CHECKS_PER_PROCESS + 1, rowsPerFile: 50 });
    const app = createTestApp(cloud, {}, { fileCheckSlotWaitMs: 20_000 });
    const run = await checkingAgain(app);
    const { reads, logs } = await checkAllAtOnce(app, run);
    expect(reads).toBe(FILE_CHECKS_PER_PROCESS + 1);
    expect(logs.filter((line) => line.includes('handed back'))).toEqual([]);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('succeeded');
  }, 60_000);
});

describe('a file check that never finishes', () => {
  /** The landing's message delivered again (a redelivery or the sweeper's revival), its file messages lost each time. */
  async function landAgain(app: TestApp, runId: string): Promise<Run> {
    const { run } = (await app.deps.ledger.getRun(runId))!;
    await pollExport(pollMessageFor(run), app.context(), app.deps);
    await app.clients.queueService.getQueueClient(app.deps.queue.name).clearMessages();
    return (await app.deps.ledger.getRun(runId))!.run;
  }

  it(`fails the run once its checks were sent ${MAX_CHECK_ROUNDS} times with no file finishing, naming the files`, async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 20 });
    const app = createTestApp(cloud);
    const run = await checkingAgain(app);

    const states: string[] = [];
    for (let round = 2; round <= MAX_CHECK_ROUNDS + 1; round++) states.push((await landAgain(app, run.runId)).state);

    expect(states).toEqual([...Array.from({ length: MAX_CHECK_ROUNDS - 1 }, () => 'copying'), 'failed']);
    const { run: final } = (await app.deps.ledger.getRun(run.runId))!;
    expect(final.errorCode).toBe('DataCheckStalled');
    expect(final.errorMessage).toMatch(/^the data check of 'part-00000[^']*', 'part-00001[^']*' was sent 3 times and no file finished/);
  }, 60_000);

  it('a file finishing between sends starts the count again', async () => {
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 20 });
    const app = createTestApp(cloud);
    const run = await checkingAgain(app);

    for (let round = 2; round <= MAX_CHECK_ROUNDS; round++) expect((await landAgain(app, run.runId)).state).toBe('copying');
    // One file's check gets through: progress.
    const current = (await app.deps.ledger.getRun(run.runId))!.run;
    await pollExport(fileCheckMessageFor(current, 0), app.context(), app.deps);
    await app.clients.queueService.getQueueClient(app.deps.queue.name).clearMessages();

    // Sent once more without failing; this time its messages are delivered and the run lands.
    await pollExport(pollMessageFor((await app.deps.ledger.getRun(run.runId))!.run), app.context(), app.deps);
    expect((await app.deps.ledger.getRun(run.runId))!.run.state).toBe('copying');
    const [final] = (await app.work({ runIds: [run.runId] })).runs;
    expect(final!.state).toBe('succeeded');
  }, 60_000);
});
