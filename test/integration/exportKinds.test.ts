/**
 * The four partner billing exports through one engine, end to end against Azurite, the identity
 * endpoint and the billing emulator (which checks each kind's documented path and body): every
 * kind lands in its layout with a manifest.json that says what it is; an invoice lands once, the
 * same data again is noNewData and a re-issued invoice lands in a folder of its own; Graph's 5000
 * is noData; an invoice Graph cannot export fails with Graph's reason; the timer starts each
 * kind of EXPORT_KINDS per currency; a backfill starts one run per invoice and kind, once.
 */
import { HttpRequest } from '@azure/functions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MANIFEST_FILE_NAME, billingMonthFor, exportKeyString, isBilledKind, type BilledKind, type ExportKind } from '../../src/core/naming';
import { isFinished, type Run, type StartRequest } from '../../src/core/run';
import { backfillApi, startBackfill } from '../../src/functions/backfill';
import { listRuns, startRun } from '../../src/functions/runsApi';
import { startExport, startExportsOnSchedule, startInvoiceExports } from '../../src/functions/startExport';
import { createTestApp, listBlobs, readBlob, timer, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 2, rowsPerFile: 5 } });
});
afterEach(() => cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5 }));
afterAll(async () => {
  await cloud?.stop();
});

function requestFor(kind: ExportKind, subject: string, overrides: Partial<{ force: boolean }> = {}): StartRequest {
  return isBilledKind(kind)
    ? { kind, invoiceId: subject, attributeSet: 'full', trigger: 'cli', ...overrides }
    : unbilledRequest(subject, { kind, ...overrides });
}

async function exportOnce(app: TestApp, request: StartRequest): Promise<Run> {
  const outcome = await startExport(request, app.deps, app.context('startExports'));
  expect(outcome.kind).toBe('started');
  const [run] = (await app.work({ runIds: [outcome.run.runId] })).runs;
  return run!;
}

const exportsOf = (kind: ExportKind, invoiceId: string) => cloud.billing.exports().filter((record) => record.kind === kind && record.invoiceId === invoiceId);

describe('every kind through one engine', () => {
  it.each([
    ['unbilled-usage', 'SEK'],
    ['unbilled-reconciliation', 'SEK'],
    ['billed-usage', 'G000000003'],
    ['billed-reconciliation', 'G000000004'],
  ] as const)('%s lands in its layout, with a manifest.json that says what it is', async (kind, subject) => {
    const app = createTestApp(cloud);
    const exportsBefore = cloud.billing.exports().length;

    const run = await exportOnce(app, requestFor(kind, subject));

    const [exported, ...more] = cloud.billing.exports().slice(exportsBefore);
    expect(more).toEqual([]);
    expect(exported!.kind).toBe(kind);
    const billed = isBilledKind(kind);
    const folder = billed ? `${kind}/${subject}/full/${exported!.eTag}/` : `${kind}/${exported!.billingMonth}/${subject}/full/${exported!.eTag}/`;
    expect(run).toMatchObject({
      kind,
      state: 'succeeded',
      destinationContainer: app.deps.destination.containerName,
      destinationFolder: folder,
      blobCount: 2,
      bytesCopied: exported!.totalBytes,
    });
    const parquet = exported!.blobNames.map((name) => `${folder}parquet/${name}.parquet`);
    expect(await listBlobs(app)).toEqual([...exported!.blobNames.map((name) => `${folder}${name}`), ...parquet, `${folder}${MANIFEST_FILE_NAME}`].sort());
    const manifest = JSON.parse((await readBlob(app, `${folder}${MANIFEST_FILE_NAME}`)).toString()) as Record<string, unknown>;
    // The data check read every file with its kind's row family: the emulator's rows are whole.
    expect(manifest.check).toEqual({ problems: 0, examples: [] });
    expect(manifest.rowCount).toBeGreaterThan(0);
    expect((manifest.totals as unknown[]).length).toBeGreaterThan(0);
    if (billed) {
      expect(manifest).toMatchObject({ kind, invoiceId: subject, eTag: exported!.eTag, blobCount: 2 });
      expect(manifest).not.toHaveProperty('billingMonth');
      expect(run).toMatchObject({ invoiceId: subject });
      expect(exported!.body).toEqual({ invoiceId: subject, attributeSet: 'full' });
    } else {
      expect(manifest).toMatchObject({ kind, billingMonth: exported!.billingMonth, currency: subject, billingPeriod: 'last', eTag: exported!.eTag });
      expect(manifest).not.toHaveProperty('invoiceId');
      expect(exported!.body).toEqual({ currencyCode: subject, billingPeriod: 'last', attributeSet: 'full' });
    }
  });
});

describe('new data versus no new data', () => {
  it('an invoice exported twice lands once; the second run ends noNewData and lands nothing', async () => {
    const app = createTestApp(cloud);
    const first = await exportOnce(app, requestFor('billed-usage', 'G000000005'));
    const blobsAfterFirst = await listBlobs(app);
    const properties = await app.clients.destinationContainer.getBlobClient(`${first.destinationFolder!}${MANIFEST_FILE_NAME}`).getProperties();

    // Not forced, a second start (a replayed event, a backfill) is skipped: the invoice landed.
    const again = await startExport(requestFor('billed-usage', 'G000000005'), app.deps, app.context());
    expect(again).toMatchObject({ kind: 'skipped', reason: expect.stringContaining('already landed this invoice') });
    const second = await exportOnce(app, requestFor('billed-usage', 'G000000005', { force: true }));

    expect(first.state).toBe('succeeded');
    expect(second).toMatchObject({ state: 'noNewData', manifestETag: first.manifestETag, destinationFolder: first.destinationFolder, bytesCopied: 0 });
    expect(exportsOf('billed-usage', 'G000000005')).toHaveLength(2);
    expect(await listBlobs(app)).toEqual(blobsAfterFirst);
    // manifest.json was not written again: consumers see one blob-created event per data version.
    const after = await app.clients.destinationContainer.getBlobClient(`${first.destinationFolder!}${MANIFEST_FILE_NAME}`).getProperties();
    expect(after.etag).toBe(properties.etag);
    const listed = await listRuns(
      new HttpRequest({ method: 'GET', url: 'https://app.example.net/api/runs?invoice=G000000005&kind=billed-usage' }),
      app.context(),
      app.deps,
    );
    expect((listed.jsonBody as { runs: Array<{ status: string; reason?: { code: string } }> }).runs.map((run) => [run.status, run.reason?.code])).toEqual([
      ['noNewData', 'NoNewData'],
      ['succeeded', undefined],
    ]);
  });

  it('a re-issued invoice (new eTag) lands in a folder of its own as a new succeeded run', async () => {
    const app = createTestApp(cloud);
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5, invoiceReissued: false });
    const original = await exportOnce(app, requestFor('billed-reconciliation', 'G000000002'));
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5, invoiceReissued: true });
    const reissued = await exportOnce(app, requestFor('billed-reconciliation', 'G000000002', { force: true }));

    expect(original.state).toBe('succeeded');
    expect(reissued.state).toBe('succeeded');
    expect(reissued.manifestETag).not.toBe(original.manifestETag);
    expect(reissued.destinationFolder).toBe(`billed-reconciliation/G000000002/full/${reissued.manifestETag!}/`);
    const manifests = (await listBlobs(app)).filter((name) => name.endsWith(MANIFEST_FILE_NAME));
    expect(manifests.sort()).toEqual([`${original.destinationFolder!}${MANIFEST_FILE_NAME}`, `${reissued.destinationFolder!}${MANIFEST_FILE_NAME}`].sort());
  });

  it("Graph's 5000 No data available ends the run as noData, not failed, with Graph's reason", async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5, noDataCurrencies: ['NOK'] });
    const app = createTestApp(cloud);
    const run = await exportOnce(app, requestFor('unbilled-reconciliation', 'NOK'));

    expect(run).toMatchObject({ state: 'noData', errorCode: '5000', errorMessage: expect.stringContaining('No data available') });
    expect(app.logs.some((line) => line.startsWith('information: run noData {'))).toBe(true);
    expect(app.logs.some((line) => line.includes('run failed {'))).toBe(false);
    expect(await listBlobs(app)).toEqual([]);
    // noData does not block: the next start tries the month again.
    const retry = await startExport(requestFor('unbilled-reconciliation', 'NOK'), app.deps, app.context());
    expect(retry.kind).toBe('started');
    await app.work({ runIds: [retry.run.runId] });
  });

  it.each([
    ['as a failed operation', 'failedOperation', 'G000000999'],
    ['as a synchronous 400', 'badRequest', 'G000000998'],
  ] as const)("an invoice Graph cannot export (%s) fails the run with Graph's reason", async (_how, invoiceErrors, invoiceId) => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 5, invoiceErrors });
    const app = createTestApp(cloud);
    const outcome = await startExport(requestFor('billed-usage', invoiceId), app.deps, app.context());
    const [run] = isFinished(outcome.run) ? [outcome.run] : (await app.work({ runIds: [outcome.run.runId] })).runs;

    expect(run).toMatchObject({ state: 'failed', kind: 'billed-usage', invoiceId });
    expect(run!.errorMessage).toContain(invoiceId);
    expect(app.logs.some((line) => line.startsWith('error: run failed {') && line.includes(`"invoiceId":"${invoiceId}"`))).toBe(true);
  });
});

describe('starting', () => {
  it('the timer starts each kind of EXPORT_KINDS per currency', async () => {
    const app = createTestApp(cloud, { EXPORT_KINDS: 'unbilled-usage,unbilled-reconciliation', EXPORT_CURRENCIES: 'DKK,PLN' });
    const before = cloud.billing.exports().length;

    await startExportsOnSchedule(timer, app.context('startExports'), app.deps);
    const timerRuns = (await app.deps.ledger.listRuns()).filter((run) => run.trigger === 'timer' && 'currency' in run && ['DKK', 'PLN'].includes(run.currency));
    const { runs } = await app.work({ runIds: timerRuns.map((run) => run.runId) });

    const started = cloud.billing
      .exports()
      .slice(before)
      .map((record) => `${record.kind} ${record.body.currencyCode}`);
    expect(started.sort()).toEqual(['unbilled-reconciliation DKK', 'unbilled-reconciliation PLN', 'unbilled-usage DKK', 'unbilled-usage PLN']);
    expect(runs.map((run) => `${run.kind} ${run.state}`).sort()).toEqual([
      'unbilled-reconciliation succeeded',
      'unbilled-reconciliation succeeded',
      'unbilled-usage succeeded',
      'unbilled-usage succeeded',
    ]);
    // A second firing finds every key landed and starts nothing.
    await startExportsOnSchedule(timer, app.context('startExports'), app.deps);
    expect(cloud.billing.exports().length - before).toBe(4);
  });

  it('an invoice starts each kind of BILLED_EXPORT_KINDS; a replay starts nothing new', async () => {
    const app = createTestApp(cloud, { BILLED_EXPORT_KINDS: 'billed-reconciliation' });
    const outcomes = await startInvoiceExports('G000000007', app.deps, app.context(), { trigger: 'event' });
    expect(outcomes.map((outcome) => [outcome.kind, outcome.run.kind, outcome.run.trigger])).toEqual([['started', 'billed-reconciliation', 'event']]);
    await app.work({ runIds: [outcomes[0]!.run.runId] });
    const replay = await startInvoiceExports('G000000007', app.deps, app.context(), { trigger: 'event' });
    expect(replay.map((outcome) => outcome.kind)).toEqual(['skipped']);
    expect(exportsOf('billed-reconciliation', 'G000000007')).toHaveLength(1);
    expect(exportsOf('billed-usage', 'G000000007')).toHaveLength(0);
  });

  it('POST /api/runs starts a billed kind for an invoice and refuses a currency for it', async () => {
    const app = createTestApp(cloud);
    const post = (body: string) => new HttpRequest({ method: 'POST', url: 'https://app.example.net/api/runs', body: { string: body } });
    const refused = await startRun(post('{"kind":"billed-usage","invoiceId":"G000000006","currency":"EUR"}'), app.context(), app.deps);
    expect(refused).toMatchObject({
      status: 400,
      jsonBody: { error: { code: 'BadRequest', message: expect.stringContaining("'currency' is for unbilled kinds") } },
    });
    const badId = await startRun(post('{"kind":"billed-usage","invoiceId":"INV-6"}'), app.context(), app.deps);
    expect(badId).toMatchObject({
      status: 400,
      jsonBody: { error: { message: expect.stringContaining("expected a Partner Center invoice id: 'G' and 9 digits") } },
    });

    const response = await startRun(post('{"kind":"billed-usage","invoiceId":"G000000006"}'), app.context(), app.deps);
    expect(response.status).toBe(202);
    expect(response.jsonBody).toMatchObject({ kind: 'billed-usage', invoiceId: 'G000000006', billingMonth: null, currency: null, trigger: 'http' });
    const runId = (response.jsonBody as { runId: string }).runId;
    await app.work({ runIds: [runId] });
    const conflict = await startRun(post('{"kind":"billed-usage","invoiceId":"G000000006"}'), app.context(), app.deps);
    expect(conflict.status).toBe(409);
    const wrongFilter = await listRuns(
      new HttpRequest({ method: 'GET', url: 'https://app.example.net/api/runs?kind=billed&invoice=G6' }),
      app.context(),
      app.deps,
    );
    expect(wrongFilter.status).toBe(400);
  });
});

describe('a ledger written before the four kinds', () => {
  it("keeps working: the old key row still names the month's run, and the old destination string reads as its parts", async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const runId = '0b6c3d1e-2f4a-4b5c-8d7e-9f0a1b2c3d4e';
    const month = billingMonthFor('last', new Date());
    const folder = `unbilled-usage/${month}/HUF/full/OLDETAG/`;
    // Exactly what the previous version wrote: the key string, and `destination` as one string.
    await app.clients.ledgerTable.createEntity({
      partitionKey: 'key',
      rowKey: `unbilled-usage|${month}|HUF|full`,
      latestRunId: runId,
      claimedAt: '2026-11-03T06:00:00.000Z',
    });
    await app.clients.ledgerTable.createEntity({
      partitionKey: 'run',
      rowKey: runId,
      kind: 'unbilled-usage',
      billingMonth: month,
      currency: 'HUF',
      attributeSet: 'full',
      billingPeriod: 'last',
      trigger: 'timer',
      state: 'succeeded',
      seq: 4,
      pollCount: 3,
      startedAt: '2026-11-03T06:00:00.000Z',
      updatedAt: '2026-11-03T06:20:00.000Z',
      finishedAt: '2026-11-03T06:20:00.000Z',
      bytesCopied: 1024,
      manifestETag: 'OLDETAG',
      destination: `${app.deps.destination.containerName}/${folder}`,
    });

    const stored = await app.deps.ledger.getRun(runId);
    expect(stored?.run).toMatchObject({ destinationContainer: app.deps.destination.containerName, destinationFolder: folder });
    const again = await startExport(requestFor('unbilled-usage', 'HUF'), app.deps, app.context());
    expect(again).toMatchObject({
      kind: 'skipped',
      run: { runId },
      reason: `run ${runId} already landed this month at ${app.deps.destination.containerName}/${folder}`,
    });
    const listed = await listRuns(
      new HttpRequest({ method: 'GET', url: `https://app.example.net/api/runs?month=${month}&kind=unbilled-usage` }),
      app.context(),
      app.deps,
    );
    expect(
      (listed.jsonBody as { runs: Array<{ runId: string; destination: string; manifestUrl: string }> }).runs.find((run) => run.runId === runId),
    ).toMatchObject({
      destination: `${app.deps.destination.containerName}/${folder}`,
      manifestUrl: expect.stringMatching(new RegExp(`/${app.deps.destination.containerName}/${folder}manifest\\.json$`)),
    });
  });
});

describe('backfill', () => {
  const invoices = Array.from({ length: 12 }, (_, i) => `G${String(13 + i).padStart(9, '0')}`);

  it('12 invoices: 24 landed runs, one export POST per invoice and kind; a second backfill starts nothing', async () => {
    const app = createTestApp(cloud);
    const before = cloud.billing.exports().length;
    const progress: string[] = [];

    const items = await startBackfill(
      { invoiceIds: invoices, kinds: ['billed-usage', 'billed-reconciliation'], attributeSet: 'full', force: false },
      app.deps,
      app.context(),
      (item, done, total) => progress.push(`${done}/${total} ${item.kind} ${item.invoiceId} ${item.outcome}`),
    );
    const { runs } = await app.work({ runIds: items.flatMap((item) => (item.outcome === 'error' ? [] : [item.run.runId])) });

    expect(progress).toHaveLength(24);
    expect(progress[23]).toMatch(/^24\/24 billed-reconciliation G000000024 started$/);
    expect(runs).toHaveLength(24);
    expect(runs.every((run) => run.state === 'succeeded' && run.trigger === 'backfill')).toBe(true);
    const posted = cloud.billing
      .exports()
      .slice(before)
      .map((record) => `${record.kind}|${record.invoiceId}`);
    expect(posted).toHaveLength(24);
    expect(new Set(posted).size).toBe(24);

    const again = await startBackfill(
      { invoiceIds: invoices.slice(0, 3), kinds: ['billed-usage', 'billed-reconciliation'], attributeSet: 'full', force: false },
      app.deps,
      app.context(),
    );
    expect(again.map((item) => item.outcome)).toEqual(Array(6).fill('skipped'));
    expect(cloud.billing.exports().length - before).toBe(24);
  });

  it('POST /api/backfill: an invoice Graph cannot export fails with its reason and the others go on; bad bodies are 400', async () => {
    const app = createTestApp(cloud);
    const post = (body: string) => new HttpRequest({ method: 'POST', url: 'https://app.example.net/api/backfill', body: { string: body } });
    expect((await backfillApi(post('{"invoiceIds":[]}'), app.context(), app.deps)).status).toBe(400);
    expect((await backfillApi(post('{"invoiceIds":["G000000025"],"kinds":["unbilled-usage"]}'), app.context(), app.deps)).status).toBe(400);
    expect((await backfillApi(post('not json'), app.context(), app.deps)).status).toBe(400);

    const response = await backfillApi(post('{"invoiceIds":["G000000025","G000000997","G000000026"],"kinds":["billed-usage"]}'), app.context(), app.deps);
    expect(response.status).toBe(202);
    const body = response.jsonBody as { started: number; items: Array<{ invoiceId: string; kind: BilledKind; outcome: string; run: { runId: string } }> };
    expect(body.started).toBe(3);
    const { runs } = await app.work({ runIds: body.items.map((item) => item.run.runId) });
    const byInvoice = Object.fromEntries(runs.map((run) => [exportKeyString(run), run.state]));
    expect(byInvoice).toEqual({
      'billed-usage|G000000025|full': 'succeeded',
      'billed-usage|G000000997|full': 'failed',
      'billed-usage|G000000026|full': 'succeeded',
    });
  });
});
