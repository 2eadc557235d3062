/**
 * Landing against what Azure does and Azurite does not (copies pending at the service, 409
 * PendingCopyOperation, 412 on the source condition, a copy that does not verify), and two
 * deliveries of one landing step: one lands, the other stands down; a run whose files and
 * manifest.json landed ends succeeded; manifest.json is written once per landing.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, SASProtocol, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../emulator/faultProxy';
import { BILLING_SOURCE_ACCOUNT, startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { parseManifest, type Manifest } from '../../src/core/manifest';
import { interpretOperation } from '../../src/core/operation';
import { landAll } from '../../src/steps/landFiles';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import type { Run } from '../../src/core/run';
import type { DepsOptions } from '../../src/deps';
import { COPY_CONCURRENCY, MAX_COPY_WAITS, MAX_LANDING_ATTEMPTS, SOURCE_CHANGE_RETRIES } from '../../src/core/policy';
import { pollExport } from '../../src/functions/pollExport';
import { failRun } from '../../src/steps/runSteps';
import { startExport } from '../../src/functions/startExport';
import { formatRunTable } from '../../cli/output';
import { createTestApp, listBlobs, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
const SCENARIO = { fileCount: 3, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null };
beforeAll(async () => {
  cloud = await startLocalCloud({ faultProxy: { seed: 11 }, scenario: SCENARIO });
});
afterAll(async () => {
  await cloud?.stop();
});
afterEach(() => cloud.proxy!.clearRules());

/** One key per test: a month that landed for a key is not exported again, and the ledger is shared in this file. */
const CURRENCIES = [
  'AUD',
  'CAD',
  'CHF',
  'CZK',
  'DKK',
  'GBP',
  'HKD',
  'JPY',
  'NOK',
  'NZD',
  'PLN',
  'SEK',
  'SGD',
  'USD',
  'ZAR',
  'BRL',
  'INR',
  'MXN',
  'KRW',
  'THB',
  'TRY',
  'ILS',
  'HUF',
  'RON',
  'BGN',
  'ISK',
  'PHP',
  'MYR',
  'IDR',
  'CLP',
];
let nextCurrency = 0;

interface Landed {
  readonly app: TestApp;
  readonly run: Run;
  /** The run's folder inside the container, with a trailing slash. */
  readonly folder: string;
}

/** One export landed the ordinary way, to be rewound as a crash or a duplicate would leave it. */
async function landedExport(options: DepsOptions = {}): Promise<Landed> {
  const app = createTestApp(cloud, {}, options);
  const currency = CURRENCIES[nextCurrency++];
  if (!currency) throw new Error(`landing.test.ts has more exports than CURRENCIES (${CURRENCIES.length}): add codes`);
  const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
  const [landed] = (await app.work({ runIds: [run.runId] })).runs;
  expect(landed).toMatchObject({ state: 'succeeded' });
  return { app, run: landed!, folder: landed!.destinationFolder! };
}

/**
 * The run as it stood in the middle of its landing: copying, nothing landed yet (or, with
 * `keepFiles`, everything landed including manifest.json, as if the process died before the
 * ledger save). Returns the poll message that delivers the landing step.
 */
async function rewindToCopying(
  { app, run, folder }: Landed,
  options: { keepFiles?: boolean; change?: (run: Run) => Run } = {},
): Promise<{ v: 1; runId: string; seq: number }> {
  if (!options.keepFiles) {
    for (const name of await listBlobs(app)) if (name.startsWith(folder)) await app.clients.destinationContainer.getBlobClient(name).delete();
  }
  const stored = (await app.deps.ledger.getRun(run.runId))!;
  const copying: Run = { ...stored.run, state: 'copying', finishedAt: undefined, bytesCopied: 0, ...{} };
  await app.deps.ledger.saveRun(options.change ? options.change(copying) : copying, stored.etag);
  return { v: 1, runId: run.runId, seq: stored.run.seq };
}

const containerPath = (app: TestApp) => `/partnerdest/${app.deps.destination.containerName}`;
const copyRequests = (app: TestApp): Omit<FaultRule, 'fault'> => ({
  service: 'blob',
  method: 'PUT',
  path: new RegExp(`^${containerPath(app)}/[^?]*\\.json\\.gz(\\?|$)`),
});
const manifestWrites = (app: TestApp): Omit<FaultRule, 'fault'> => ({
  service: 'blob',
  method: 'PUT',
  path: new RegExp(`^${containerPath(app)}/[^?]*/${MANIFEST_FILE_NAME}`),
});
const folderListings = (app: TestApp): Omit<FaultRule, 'fault'> => ({
  service: 'blob',
  method: 'GET',
  path: new RegExp(`^${containerPath(app)}\\?.*comp=list`),
});
/** Copy Blob answered as Azure answers a copy between accounts it has not finished: pending (Azurite finishes every copy at once). */
const copiesAnswerPending = (app: TestApp): FaultRule => ({ ...copyRequests(app), fault: { kind: 'rewrite', headers: { 'x-ms-copy-status': 'pending' } } });
/** Writes of one run's ledger row. */
const runRow = (runId: string) => new RegExp(`PartitionKey=(%27|')run(%27|'),RowKey=(%27|')${runId}`);
/** A zero delay: lets every matching request through and records it in injected(). */
const counted = (match: Omit<FaultRule, 'fault'>): FaultRule => ({ ...match, fault: { kind: 'delay', ms: 0 } });
const injectedSince = (start: number, path: RegExp) =>
  cloud
    .proxy!.injected()
    .slice(start)
    .filter((fault) => path.test(fault.path));

async function manifestEtag(app: TestApp, folder: string): Promise<string | undefined> {
  const blob = app.clients.destinationContainer.getBlobClient(`${folder}${MANIFEST_FILE_NAME}`);
  return (await blob.exists()) ? (await blob.getProperties()).etag : undefined;
}

const finalRun = async (app: TestApp, runId: string) => (await app.deps.ledger.getRun(runId))!.run;
/** The data check's messages (one per file) that a landing sends once its copies verify: they write manifest.json. */
const checkFiles = async ({ app, run }: Landed) => app.work({ runIds: [run.runId] });

describe('one landing at a time', () => {
  it('two deliveries of the same landing step at once: one lands, the other stands down, manifest.json is written once', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule(counted(manifestWrites(landed.app)));

    await Promise.all([pollExport(message, landed.app.context(), landed.app.deps), pollExport(message, landed.app.context(), landed.app.deps)]);
    await checkFiles(landed);

    expect(await finalRun(landed.app, landed.run.runId)).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(injectedSince(start, /manifest\.json/)).toHaveLength(1);
    expect(landed.app.logs.some((line) => line.includes('standing down'))).toBe(true);
  });

  it('a delivery that finds a fresh claim by another landing writes nothing to the run and comes back when the claim runs out', async () => {
    const landed = await landedExport();
    const claimedUntil = new Date(Date.now() + 60_000).toISOString();
    const message = await rewindToCopying(landed, { change: (run) => ({ ...run, landingClaimId: 'another-landing', landingClaimedUntil: claimedUntil }) });
    const before = (await landed.app.deps.ledger.getRun(landed.run.runId))!;
    const queue = landed.app.clients.queueService.getQueueClient(landed.app.deps.queue.name);
    await queue.clearMessages();

    await pollExport(message, landed.app.context(), landed.app.deps);

    const after = (await landed.app.deps.ledger.getRun(landed.run.runId))!;
    expect(after.etag).toBe(before.etag);
    expect((await listBlobs(landed.app)).filter((name) => name.startsWith(landed.folder))).toEqual([]);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
    expect((await queue.receiveMessages()).receivedMessageItems).toHaveLength(0); // hidden until the claim runs out
    expect(landed.app.logs.some((line) => line.includes('another landing holds this run') && line.includes(claimedUntil))).toBe(true);
    await queue.clearMessages();
  });

  it('a stale claim (its landing died) is taken over, and the run lands', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed, {
      change: (run) => ({ ...run, landingClaimId: 'a-dead-landing', landingClaimedUntil: new Date(Date.now() - 1000).toISOString() }),
    });

    await pollExport(message, landed.app.context(), landed.app.deps);
    await checkFiles(landed);

    const run = await finalRun(landed.app, landed.run.runId);
    expect(run).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(run.landingClaimId).toBeUndefined();
    expect(await manifestEtag(landed.app, landed.folder)).toBeDefined();
  });

  it('a landing slower than its lease keeps its claim by renewing it: a second delivery meanwhile stands down', async () => {
    const landed = await landedExport({ landingClaimSeconds: 2 });
    const message = await rewindToCopying(landed);
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule(counted(manifestWrites(landed.app)));
    // Every copy is held for 5 s: the landing outlasts its 2-second lease twice over.
    cloud.proxy!.addRule({ ...copyRequests(landed.app), fault: { kind: 'delay', ms: 5000 } });

    const first = pollExport(message, landed.app.context(), landed.app.deps);
    // The second delivery comes once the first claim would have lapsed, had it not been renewed.
    const claimed = await storedWhen(landed, (run) => run.landingClaimedUntil !== undefined);
    await storedWhen(landed, (run) => Date.now() > Date.parse(claimed.landingClaimedUntil!) && Date.parse(run.landingClaimedUntil ?? '') > Date.now());
    await pollExport(message, landed.app.context(), landed.app.deps);
    await first;
    await checkFiles(landed);

    expect(await finalRun(landed.app, landed.run.runId)).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(landed.app.logs.filter((line) => line.includes('another landing holds this run'))).toHaveLength(1);
    expect(injectedSince(start, /manifest\.json/)).toHaveLength(1);
  });

  it('a landing whose claim was taken over meanwhile stops before manifest.json and leaves the run to the new holder', async () => {
    const landed = await landedExport({ landingClaimSeconds: 2 });
    const message = await rewindToCopying(landed);
    cloud.proxy!.addRule({ ...copyRequests(landed.app), fault: { kind: 'delay', ms: 3000 } });

    const landing = pollExport(message, landed.app.context(), landed.app.deps);
    await storedWhen(landed, (run) => run.landingClaimId !== undefined);
    const stored = (await landed.app.deps.ledger.getRun(landed.run.runId))!;
    // Another landing takes the run over (as after a pause longer than the lease).
    await landed.app.deps.ledger.saveRun(
      { ...stored.run, landingClaimId: 'the-new-holder', landingClaimedUntil: new Date(Date.now() + 60_000).toISOString() },
      stored.etag,
    );
    await landing;

    expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
    expect(await finalRun(landed.app, landed.run.runId)).toMatchObject({ state: 'copying', landingClaimId: 'the-new-holder' });
    expect(landed.app.logs.some((line) => line.includes('another worker advanced this run; standing down'))).toBe(true);
  });

  it('a landing that cannot prove its claim before manifest.json (the ledger failing from mid-landing on) writes none; a later delivery lands the run', async () => {
    const landed = await landedExport({ landingClaimSeconds: 2 });
    const message = await rewindToCopying(landed);
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule({ ...copyRequests(landed.app), fault: { kind: 'delay', ms: 3000 } });

    const landing = pollExport(message, landed.app.context(), landed.app.deps);
    await storedWhen(landed, (run) => run.landingClaimId !== undefined);
    // From here on every write of the run's row fails: the renewals, and whatever comes after the copies.
    const ledgerBack = cloud.proxy!.addRule({ service: 'table', method: 'PUT', path: runRow(landed.run.runId), fault: { kind: 'status', status: 500 } });
    await expect(landing).rejects.toMatchObject({ name: 'StorageRequestError' });
    ledgerBack();

    expect(injectedSince(start, /PartitionKey/).filter((fault) => fault.kind === 'status').length).toBeGreaterThan(0);
    expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
    expect(landed.app.logs.some((line) => line.includes('could not prove this landing still holds the run; not writing manifest.json'))).toBe(true);

    // The message comes back (the handler threw); its claim has run out by then, so it is taken over.
    cloud.proxy!.clearRules();
    await landed.app.deps.queue.send(message, 0);
    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;
    expect(final).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(await manifestEtag(landed.app, landed.folder)).toBeDefined();
  });

  it('files and manifest.json landed but the final ledger save met a change: the run still ends succeeded', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    const start = cloud.proxy!.injected().length;
    // Hold the manifest.json write long enough for another writer to change the run meanwhile.
    cloud.proxy!.addRule({ ...manifestWrites(landed.app), fault: { kind: 'delay', ms: 1500 }, times: 1 });

    const landing = pollExport(message, landed.app.context(), landed.app.deps).then(() => checkFiles(landed));
    while (injectedSince(start, /manifest\.json/).length === 0) await new Promise((resolveSleep) => setTimeout(resolveSleep, 20));
    const stored = (await landed.app.deps.ledger.getRun(landed.run.runId))!;
    await failRun(stored, 'Stalled', 'a sweeper that gave up on it', landed.app.deps, landed.app.context());
    await landing;

    const run = await finalRun(landed.app, landed.run.runId);
    expect(run).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(run.errorCode).toBeUndefined();
    expect(landed.app.logs.some((line) => line.includes('recording it succeeded over the change'))).toBe(true);
  });

  it('files and manifest.json landed but the final ledger save failed beyond the SDK retries: saved again, the run ends succeeded', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule({ ...manifestWrites(landed.app), fault: { kind: 'delay', ms: 300 }, times: 1 });

    const landing = pollExport(message, landed.app.context(), landed.app.deps).then(() => checkFiles(landed));
    while (injectedSince(start, /manifest\.json/).length === 0) await new Promise((resolveSleep) => setTimeout(resolveSleep, 10));
    // Once manifest.json is on its way, the ledger answers 500 to one whole save (the SDK's four tries).
    cloud.proxy!.addRule({ service: 'table', method: 'PUT', path: runRow(landed.run.runId), fault: { kind: 'status', status: 500 }, times: 4 });
    await landing;

    expect(injectedSince(start, /PartitionKey/).filter((fault) => fault.kind === 'status')).toHaveLength(4);
    expect(await finalRun(landed.app, landed.run.runId)).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
  });

  it('a landing resumed after manifest.json was written does not write it again', async () => {
    const landed = await landedExport();
    const before = await manifestEtag(landed.app, landed.folder);
    // The process died after writing manifest.json, before the ledger said succeeded.
    const message = await rewindToCopying(landed, { keepFiles: true });
    await landed.app.deps.queue.send(message, 0);

    const [resumed] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(resumed).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(await manifestEtag(landed.app, landed.folder)).toBe(before);
  });

  it('a manifest.json left by a landing that listed other files is replaced, not kept', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    const path = `${landed.folder}${MANIFEST_FILE_NAME}`;
    const stale = '{"manifestFormat":"partner-billing-export/1","blobs":[]}';
    await landed.app.clients.destinationContainer.getBlockBlobClient(path).upload(stale, Buffer.byteLength(stale));
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded' });
    const written = JSON.parse((await landed.app.clients.destinationContainer.getBlobClient(path).downloadToBuffer()).toString('utf8')) as {
      runId: string;
      blobCount: number;
    };
    expect(written).toMatchObject({ runId: landed.run.runId, blobCount: 3 });
  });
});

describe('copy answers Azure gives and Azurite does not', () => {
  it('409 PendingCopyOperation (a copy still pending onto the file) is waited for, not a failed run', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    cloud.proxy!.addRule({ ...copyRequests(landed.app), fault: { kind: 'status', status: 409, code: 'PendingCopyOperation' }, times: 1 });
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', copyWaits: 1, bytesCopied: landed.run.bytesCopied });
    expect(final!.landingAttempts ?? 0).toBe(0);
  });

  it('a landing that waits records why on the run, as status shows it, and clears it once the run lands', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    cloud.proxy!.addRule({ ...copyRequests(landed.app), fault: { kind: 'status', status: 409, code: 'PendingCopyOperation' }, times: 1 });

    await pollExport(message, landed.app.context(), landed.app.deps);

    const waiting = await finalRun(landed.app, landed.run.runId);
    expect(waiting).toMatchObject({
      state: 'copying',
      copyWaits: 1,
      lastErrorCode: 'PendingCopyOperation',
      lastErrorCount: 1,
      lastErrorAt: expect.any(String),
    });
    expect(waiting.lastErrorMessage).toMatch(/^copying files: 'part-\d{5}-[^']+\.json\.gz': /);
    expect(formatRunTable([waiting])).toContain('waiting: PendingCopyOperation (1x): copying files: ');

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;
    expect(final).toMatchObject({ state: 'succeeded' });
    expect([final!.lastErrorCode, final!.lastErrorMessage, final!.lastErrorCount]).toEqual([undefined, undefined, undefined]);
  });

  it.each([
    ['once: read again and copied at once', 1, 0],
    ['on every copy of one file within the landing: the landing waits and tries later', SOURCE_CHANGE_RETRIES, 1],
  ])('412 SourceConditionNotMet (the source changed since it was read) %s', async (_case, times, copyWaits) => {
    const landed = await landedExport();
    const [oneFile] = (await listBlobs(landed.app)).filter((name) => name.startsWith(landed.folder) && name.endsWith('.json.gz'));
    const message = await rewindToCopying(landed);
    cloud.proxy!.addRule({
      service: 'blob',
      method: 'PUT',
      path: new RegExp(`^${containerPath(landed.app)}/${oneFile!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      fault: { kind: 'status', status: 412, code: 'SourceConditionNotMet' },
      times,
    });
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(final!.copyWaits ?? 0).toBe(copyWaits);
    expect(final!.landingAttempts ?? 0).toBe(0);
  });

  it('a source rewritten between its listing and its copy (Azurite checks x-ms-source-if-match): the pinned copy is refused, and the version there now lands and checks', async () => {
    const landed = await landedExport();
    const manifest = await manifestOf(landed.app, landed.run);
    const message = await rewindToCopying(landed);
    const [first] = manifest.blobs;
    const sourceBlob = sourceBlobOf(manifest, first!.name);
    const original = await sourceBlob.downloadToBuffer();
    // Its rows, all but the first: a new version of other length and MD5.
    const rewritten = gzipSync(`${gunzipSync(original).toString('utf8').split('\n').slice(1).join('\n')}`);
    const firstCopy = new RegExp(`^${containerPath(landed.app)}/${landed.folder}${first!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    // The first copy of that file is held while the test rewrites its source: the copy then
    // reaches the service pinned to the version the listing read.
    const start = cloud.proxy!.injected().length;
    cloud.proxy!.addRule({ service: 'blob', method: 'PUT', path: firstCopy, fault: { kind: 'delay', ms: 3000 }, times: 1 });
    await landed.app.deps.queue.send(message, 0);
    const working = landed.app.work({ runIds: [landed.run.runId] });
    while (injectedSince(start, firstCopy).length === 0) await new Promise((resolveSoon) => setTimeout(resolveSoon, 20));
    await sourceBlob.uploadData(rewritten);

    const [final] = (await working).runs;

    expect(final).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied - original.length + rewritten.length });
    const copy = await landed.app.clients.destinationContainer.getBlobClient(`${landed.folder}${first!.name}`).downloadToBuffer();
    expect(copy.equals(rewritten)).toBe(true);
    const published = JSON.parse(
      (await landed.app.clients.destinationContainer.getBlobClient(`${landed.folder}${MANIFEST_FILE_NAME}`).downloadToBuffer()).toString('utf8'),
    ) as {
      rowCount: number;
    };
    expect(published.rowCount).toBe(SCENARIO.fileCount * SCENARIO.rowsPerFile - 1);
  });

  it('copies still pending at the service past the copy deadline: the landing waits and resumes, without using up attempts', async () => {
    const landed = await landedExport({ copyTimeoutMs: 1500 });
    const message = await rewindToCopying(landed);
    // Azurite finishes every copy at once; Azure may take minutes. Report them pending for a while.
    cloud.proxy!.addRule(copiesAnswerPending(landed.app));
    cloud.proxy!.addRule({
      ...folderListings(landed.app),
      fault: { kind: 'rewrite', body: [{ find: '<CopyStatus>success</CopyStatus>', replace: '<CopyStatus>pending</CopyStatus>' }] },
      times: 5,
    });
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    expect(final!.copyWaits).toBeGreaterThanOrEqual(1);
    expect(final!.landingAttempts ?? 0).toBe(0);
    expect(landed.app.logs.some((line) => line.includes('copying hit a transient failure') && line.includes('still pending after 2 s'))).toBe(true);
  });

  it(`copies that stay pending through ${MAX_COPY_WAITS} waits: the run fails saying so, with no manifest.json`, async () => {
    const landed = await landedExport({ copyTimeoutMs: 1 });
    const message = await rewindToCopying(landed);
    cloud.proxy!.addRule(copiesAnswerPending(landed.app));
    cloud.proxy!.addRule({
      ...folderListings(landed.app),
      fault: { kind: 'rewrite', body: [{ find: '<CopyStatus>success</CopyStatus>', replace: '<CopyStatus>pending</CopyStatus>' }] },
    });
    const copies = cloud.proxy!.injected().length;
    cloud.proxy!.addRule(counted(copyRequests(landed.app)));
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'failed', errorCode: 'CopiesPending', copyWaits: MAX_COPY_WAITS });
    expect(final!.errorMessage).toMatch(new RegExp(`^copying files did not finish after ${MAX_COPY_WAITS} waits: 3 copies into .+ still pending`));
    expect(final!.landingAttempts ?? 0).toBe(0);
    // Each file was copied once; later landings waited for those copies instead of starting new ones.
    expect(injectedSince(copies, /\.json\.gz/)).toHaveLength(3);
    expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
  });
});

describe('a copy that does not verify', () => {
  it('copies the service answers done are not listed again: the one listing of the folder is the one before the copies', async () => {
    const landed = await landedExport();
    const message = await rewindToCopying(landed);
    const before = cloud.proxy!.injected().length;
    cloud.proxy!.addRule(counted(folderListings(landed.app)));
    cloud.proxy!.addRule(counted(copyRequests(landed.app)));
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', bytesCopied: landed.run.bytesCopied });
    const requests = cloud.proxy!.injected().slice(before);
    expect(requests.filter((request) => request.method === 'PUT')).toHaveLength(3);
    expect(requests.filter((request) => request.method === 'GET')).toHaveLength(1);
  });

  it("a copy answered done whose bytes are not what its source's MD5 says: the data check fails the run naming the file, with no manifest.json", async () => {
    const landed = await landedExport();
    const manifest = await manifestOf(landed.app, landed.run);
    const message = await rewindToCopying(landed);
    // The source's Content-MD5 property no longer that of its bytes. A copy takes the property
    // along, so a listing of the copy agrees with the source's; only the bytes tell.
    const [first] = manifest.blobs;
    await sourceBlobOf(manifest, first!.name).setHTTPHeaders({ blobContentMD5: Buffer.alloc(16) });
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'failed', errorCode: 'InvalidDataFile' });
    expect(final!.errorMessage).toMatch(
      new RegExp(
        `^the data check failed: '${first!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' does not match its source: MD5 \\S+, expected AAAAAAAAAAAAAAAAAAAAAA==$`,
      ),
    );
    expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
  });

  it.each([
    [
      'an MD5 that differs from the source',
      /<Content-MD5>[^<]+<\/Content-MD5>/g,
      '<Content-MD5>AAAAAAAAAAAAAAAAAAAAAA==</Content-MD5>',
      /MD5 AAAAAAAAAAAAAAAAAAAAAA==, expected /,
    ],
    ['a length that differs from the source', /<Content-Length>\d+<\/Content-Length>/g, '<Content-Length>7</Content-Length>', /7 bytes, expected \d+/],
  ])(
    'a pending copy that settles with %s: retried, then the run fails after its attempts naming the file, with no manifest.json',
    async (_case, find, replace, problem) => {
      const landed = await landedExport();
      const message = await rewindToCopying(landed);
      cloud.proxy!.addRule(copiesAnswerPending(landed.app));
      cloud.proxy!.addRule({ ...folderListings(landed.app), fault: { kind: 'rewrite', body: [{ find, replace }] } });
      await landed.app.deps.queue.send(message, 0);

      const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

      expect(final).toMatchObject({ state: 'failed', errorCode: 'VerificationError', landingAttempts: MAX_LANDING_ATTEMPTS - 1 });
      expect(final!.errorMessage).toMatch(
        new RegExp(`^copying files failed after ${MAX_LANDING_ATTEMPTS} attempts: copy of 'part-\\d{5}-[^']+\\.json\\.gz' does not match its source: `),
      );
      expect(final!.errorMessage).toMatch(problem);
      expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
    },
  );
});

/** A source file of the export, with the source account's key: what Graph's storage would hold. */
function sourceBlobOf(manifest: Manifest, name: string) {
  const [, , container, ...folder] = new URL(manifest.rootDirectory).pathname.split('/');
  return new BlobServiceClient(
    cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT),
    new StorageSharedKeyCredential(BILLING_SOURCE_ACCOUNT, cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT)),
  )
    .getContainerClient(container!)
    .getBlockBlobClient(`${folder.join('/')}/${name}`);
}

/** The run's manifest as Graph gives it (the operation, then its manifest). */
async function manifestOf(app: TestApp, run: Run): Promise<Manifest> {
  const state = interpretOperation((await app.deps.graph.get(run.operationUrl!)).body);
  if (state.kind !== 'succeeded') throw new Error(`the operation of run ${run.runId} is ${state.kind}`);
  const body = state.manifest.kind === 'inline' ? state.manifest.manifest : (await app.deps.graph.get(state.manifest.url)).body;
  return parseManifest(body, app.deps.settings.sourceHosts);
}

/** The requests this process sends to the source account while `work` runs, with their answers' statuses. */
async function sourceRequestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: Array<{ method: string; path: string; status?: number }> }> {
  const requests: Array<{ method: string; path: string; status?: number }> = [];
  const byRequest = new WeakMap<ClientRequest, { method: string; path: string; status?: number }>();
  const onStart = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    if (!request.path.startsWith(`/${BILLING_SOURCE_ACCOUNT}/`)) return;
    const entry = { method: request.method, path: request.path };
    requests.push(entry);
    byRequest.set(request, entry);
  };
  const onResponse = (message: unknown) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    const entry = byRequest.get(request);
    if (entry && response.statusCode !== undefined) entry.status = response.statusCode;
  };
  subscribe('http.client.request.start', onStart);
  subscribe('http.client.response.finish', onResponse);
  try {
    return { result: await work(), requests };
  } finally {
    unsubscribe('http.client.request.start', onStart);
    unsubscribe('http.client.response.finish', onResponse);
  }
}
const isSourceListing = (request: { method: string; path: string }) => request.method === 'GET' && /[?&]comp=list/.test(request.path);
const isSourceRead = (request: { method: string; path: string }) => request.method === 'HEAD';

describe('reading the sources', () => {
  it('reads every source from a listing of the source folder, not one request per file, and lands and verifies the files', async () => {
    const landed = await landedExport();
    const manifest = await manifestOf(landed.app, landed.run);
    await rewindToCopying(landed);

    const { result, requests } = await sourceRequestsDuring(() => landAll(landed.run, manifest, landed.app.deps));

    expect(result.kind).toBe('landed');
    expect(result.kind === 'landed' ? result.landed.map(({ blob }) => blob.name) : []).toEqual(manifest.blobs.map((blob) => blob.name));
    expect(requests.filter(isSourceListing)).toHaveLength(1);
    expect(requests.filter(isSourceRead)).toEqual([]);
  });

  it('a source folder listed in more than one page: every file gets its facts from the listing as its page comes in, none is read on its own', async () => {
    // More files than the first page holds (one per copy slot).
    const fileCount = COPY_CONCURRENCY + 4;
    cloud.billing.setScenario({ ...SCENARIO, fileCount, rowsPerFile: 2 });
    try {
      const landed = await landedExport();
      const manifest = await manifestOf(landed.app, landed.run);
      await rewindToCopying(landed);

      const { result, requests } = await sourceRequestsDuring(() => landAll(landed.run, manifest, landed.app.deps));

      expect(result.kind === 'landed' ? result.landed.map(({ blob }) => blob.name) : []).toEqual(manifest.blobs.map((blob) => blob.name));
      expect(manifest.blobs).toHaveLength(fileCount);
      expect(requests.filter(isSourceListing).map((request) => new URL(request.path, 'http://source').searchParams.get('maxresults'))).toEqual([
        String(COPY_CONCURRENCY),
        null,
      ]);
      expect(requests.filter(isSourceRead)).toEqual([]);
    } finally {
      cloud.billing.setScenario(SCENARIO);
    }
  });

  it('a SAS that may read but not list the source folder: each source is read on its own, and the files land and verify', async () => {
    const landed = await landedExport();
    const manifest = await manifestOf(landed.app, landed.run);
    await rewindToCopying(landed);
    const container = new URL(manifest.rootDirectory).pathname.split('/')[2]!;
    const readOnly = generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse('r'),
        expiresOn: new Date(Date.now() + 3600_000),
        protocol: SASProtocol.HttpsAndHttp,
      },
      new StorageSharedKeyCredential(BILLING_SOURCE_ACCOUNT, cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT)),
    ).toString();

    const { result, requests } = await sourceRequestsDuring(() => landAll(landed.run, { ...manifest, sasToken: readOnly }, landed.app.deps));

    expect(result.kind).toBe('landed');
    expect(result.kind === 'landed' ? result.landed.map(({ blob }) => blob.name) : []).toEqual(manifest.blobs.map((blob) => blob.name));
    // Azurite refused the listing (the SAS has no list permission); the files were read one by one.
    expect(requests.filter(isSourceListing).map((request) => request.status)).toEqual([403]);
    expect(requests.filter(isSourceRead)).toHaveLength(manifest.blobs.length);
  });
});

describe('the operation changing under a landing', () => {
  it('a resumed landing that finds a new data version (new eTag) lands it in its own folder; the old folder gets no manifest.json', async () => {
    const landed = await landedExport();
    // Graph now answers the run's operation with another manifest: a newer export of the month.
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 0, retryAfterSeconds: null, seed: 77 });
    const { operationUrl } = await landed.app.deps.graph.startExport({
      kind: 'unbilled-usage',
      body: { currencyCode: 'currency' in landed.run ? landed.run.currency : '', billingPeriod: 'last', attributeSet: 'full' },
    });
    while (((await landed.app.deps.graph.get(operationUrl)).body as { status?: string }).status !== 'succeeded')
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
    cloud.billing.setScenario({ fileCount: 3, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null });
    const message = await rewindToCopying(landed, { change: (run) => ({ ...run, operationUrl, landingAttempts: 1 }) });
    await landed.app.deps.queue.send(message, 0);

    const [final] = (await landed.app.work({ runIds: [landed.run.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded', blobCount: 2 });
    expect(final!.manifestETag).not.toBe(landed.run.manifestETag);
    const newFolder = final!.destinationFolder!;
    expect(newFolder).not.toBe(landed.folder);
    expect(newFolder).toContain(final!.manifestETag!);
    expect(await manifestEtag(landed.app, newFolder)).toBeDefined();
    expect(await manifestEtag(landed.app, landed.folder)).toBeUndefined();
    expect((await listBlobs(landed.app)).filter((name) => name.startsWith(newFolder) && name.endsWith('.json.gz'))).toHaveLength(2);
  });
});

/** The run as stored once `condition` holds, read every 50 ms; fails after 30 s, saying what it waited for. */
async function storedWhen(
  landed: {
    readonly app: { readonly deps: { readonly ledger: { getRun(runId: string): Promise<{ readonly run: Run } | undefined> } } };
    readonly run: { readonly runId: string };
  },
  condition: (run: Run) => boolean,
): Promise<Run> {
  const giveUpAt = Date.now() + 30_000;
  for (;;) {
    const stored = await landed.app.deps.ledger.getRun(landed.run.runId);
    if (stored && condition(stored.run)) return stored.run;
    if (Date.now() > giveUpAt) throw new Error(`run ${landed.run.runId} never reached ${condition.toString()}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}
