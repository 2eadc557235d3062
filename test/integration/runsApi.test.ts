/** The HTTP API for run history and "run now", against the local cloud. */
import { HttpRequest } from '@azure/functions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { getRun, listRuns, startRun } from '../../src/functions/runsApi';
import { createTestApp, type TestApp } from './harness';

// The ledger is shared by the whole file; each test uses currencies of its own, so it needs no
// run left by another and leaves none in another's way.
let cloud: LocalCloud;
let app: TestApp;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5 } });
  app = createTestApp(cloud, { EXPORT_CURRENCIES: 'EUR,USD' });
});
afterEach(() => cloud.billing.setScenario({ fileCount: 1, rowsPerFile: 5 }));
afterAll(async () => {
  await cloud?.stop();
});

const base = 'https://app.example.net/api/runs';
const post = (body: string) => new HttpRequest({ method: 'POST', url: base, body: { string: body } });
const get = (url: string, params: Record<string, string> = {}) => new HttpRequest({ method: 'GET', url, params });

describe('/api/runs', () => {
  it('POST starts an export now and answers 202 with the run and its location', async () => {
    const response = await startRun(post('{"currency":"usd","billingPeriod":"current"}'), app.context('startRun'), app.deps);

    expect(response.status).toBe(202);
    const run = response.jsonBody as { runId: string; status: string; currency: string; billingPeriod: string; trigger: string };
    expect(run).toMatchObject({ status: 'polling', currency: 'USD', billingPeriod: 'current', trigger: 'http' });
    expect(response.headers).toEqual({ location: `https://app.example.net/api/runs/${run.runId}` });

    await app.work({ runIds: [run.runId] });
    const detail = await getRun(get(`${base}/${run.runId}`, { runId: run.runId }), app.context(), app.deps);
    expect(detail.status).toBe(200);
    expect(detail.jsonBody).toMatchObject({ runId: run.runId, status: 'succeeded', blobCount: 1, manifestUrl: expect.stringContaining('/manifest.json') });
  });

  it('POST answers 409 with the existing run when the month is running or has landed', async () => {
    // Empty bodies take every field from the settings: this app's first currency, GBP.
    const gbp = createTestApp(cloud, { EXPORT_CURRENCIES: 'GBP,EUR' });
    const first = await startRun(post('{}'), gbp.context(), gbp.deps);
    const second = await startRun(post(''), gbp.context(), gbp.deps);

    expect(first.status).toBe(202);
    const runId = (first.jsonBody as { runId: string }).runId;
    expect(first.jsonBody).toMatchObject({ currency: 'GBP', billingPeriod: 'last' });
    expect(second.status).toBe(409);
    expect(second.jsonBody).toMatchObject({ error: { code: 'ExportNotStarted', message: expect.stringContaining('is still') }, run: { runId } });

    await gbp.work({ runIds: [runId] });
    const landed = await startRun(post('{}'), gbp.context(), gbp.deps);
    expect(landed.status).toBe(409);
    expect(landed.jsonBody).toMatchObject({
      error: { code: 'ExportNotStarted', message: expect.stringContaining('already landed') },
      run: { runId, status: 'succeeded' },
    });
  });

  it.each([
    ['not JSON', '{currency: EUR', /the body is not JSON/],
    ['a bad field', '{"billingPeriod":"previous"}', /'billingPeriod' is 'previous': expected current or last/],
    ['a currency that is three letters but not ISO 4217', '{"currency":"EUT"}', /'currency' is 'EUT': expected an ISO 4217 currency code such as EUR/],
    ['an unknown field', '{"month":"2026-10"}', /unknown field 'month'/],
    ['an oversized body', `{"currency":"${'E'.repeat(5000)}"}`, /larger than 4096 bytes/],
  ])('POST answers 400 saying what is wrong with %s', async (_case, body, message) => {
    const response = await startRun(post(body), app.context(), app.deps);
    expect(response.status).toBe(400);
    expect((response.jsonBody as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'BadRequest',
      message: expect.stringMatching(message),
    });
  });

  it('GET lists the history, newest first, filtered by month and status', async () => {
    type Listed = { runId: string; billingMonth: string; status: string; startedAt: string };
    const startAndWork = async (body: string): Promise<Listed> => {
      const response = await startRun(post(body), app.context(), app.deps);
      const { runId } = response.jsonBody as { runId: string };
      const [run] = (await app.work({ runIds: [runId] })).runs;
      return { runId, billingMonth: 'billingMonth' in run! ? run.billingMonth : '', status: run!.state, startedAt: run!.startedAt };
    };
    const lastMonth = await startAndWork('{"currency":"CHF","billingPeriod":"last"}');
    const thisMonth = await startAndWork('{"currency":"CHF","billingPeriod":"current"}');
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: 'ExportFailed', message: 'The export could not be produced' } });
    const failed = await startAndWork('{"currency":"NZD","billingPeriod":"last"}');
    expect([lastMonth.status, thisMonth.status, failed.status]).toEqual(['succeeded', 'succeeded', 'failed']);
    expect(thisMonth.billingMonth).not.toBe(lastMonth.billingMonth);

    const all = (await listRuns(get(base), app.context(), app.deps)).jsonBody as { runs: Listed[] };
    expect(all.runs.map((r) => r.runId)).toEqual(expect.arrayContaining([lastMonth.runId, thisMonth.runId, failed.runId]));
    expect(all.runs.map((r) => r.startedAt)).toEqual([...all.runs.map((r) => r.startedAt)].sort().reverse());
    const ours = all.runs.filter((r) => [lastMonth.runId, thisMonth.runId, failed.runId].includes(r.runId)).map((r) => r.runId);
    expect(ours).toEqual([failed.runId, thisMonth.runId, lastMonth.runId]);

    const filtered = (await listRuns(get(`${base}?month=${lastMonth.billingMonth}&status=succeeded`), app.context(), app.deps)).jsonBody as { runs: Listed[] };
    const kept = filtered.runs.map((r) => r.runId);
    expect(kept).toContain(lastMonth.runId);
    expect(kept).not.toContain(thisMonth.runId); // another month
    expect(kept).not.toContain(failed.runId); // another status
    expect(filtered.runs.every((r) => r.billingMonth === lastMonth.billingMonth && r.status === 'succeeded')).toBe(true);
  });

  it('GET answers 400 for a bad filter and 404 for an unknown run', async () => {
    const bad = await listRuns(get(`${base}?month=October&status=done`), app.context(), app.deps);
    expect(bad.status).toBe(400);
    expect((bad.jsonBody as { error: { message: string } }).error.message).toBe(
      "'month' is 'October': expected YYYY-MM; 'status' is 'done': expected one of starting, polling, copying, succeeded, failed, noData, noNewData",
    );

    const unknownId = '00000000-0000-4000-8000-000000000000';
    expect((await getRun(get(`${base}/${unknownId}`, { runId: unknownId }), app.context(), app.deps)).status).toBe(404);
    expect((await getRun(get(`${base}/nope`, { runId: 'nope' }), app.context(), app.deps)).status).toBe(400);
  });
});
