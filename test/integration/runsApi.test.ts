/** The HTTP API for run history and "run now", against the local cloud. */
import { HttpRequest } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { getRun, listRuns, startRun } from '../../src/functions/runsApi';
import { createTestApp, type TestApp } from './harness';

let cloud: LocalCloud;
let app: TestApp;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5 } });
  app = createTestApp(cloud, { EXPORT_CURRENCIES: 'EUR,USD' });
});
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
    const first = await startRun(post('{}'), app.context(), app.deps);
    const second = await startRun(post(''), app.context(), app.deps);

    expect(first.status).toBe(202);
    expect(second.status).toBe(409);
    expect(second.jsonBody).toMatchObject({ error: { code: 'ExportNotStarted', message: expect.stringContaining('is still') }, run: { runId: (first.jsonBody as { runId: string }).runId } });
    await app.work({ runIds: [(first.jsonBody as { runId: string }).runId] });
  });

  it.each([
    ['not JSON', '{currency: EUR', /the body is not JSON/],
    ['a bad field', '{"billingPeriod":"previous"}', /'billingPeriod' is "previous": expected 'current' or 'last'/],
    ['an unknown field', '{"invoiceId":"G016907411"}', /unknown field 'invoiceId'/],
    ['an oversized body', `{"currency":"${'E'.repeat(5000)}"}`, /larger than 4096 bytes/],
  ])('POST answers 400 saying what is wrong with %s', async (_case, body, message) => {
    const response = await startRun(post(body), app.context(), app.deps);
    expect(response.status).toBe(400);
    expect((response.jsonBody as { error: { code: string; message: string } }).error).toMatchObject({ code: 'BadRequest', message: expect.stringMatching(message) });
  });

  it('GET lists the history, filtered by month and status', async () => {
    const all = await listRuns(get(base), app.context(), app.deps);
    const runs = (all.jsonBody as { runs: Array<{ billingMonth: string; status: string; startedAt: string }> }).runs;
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.map((r) => r.startedAt)).toEqual([...runs.map((r) => r.startedAt)].sort().reverse());

    const month = runs[0]!.billingMonth;
    const filtered = await listRuns(get(`${base}?month=${month}&status=succeeded`), app.context(), app.deps);
    const kept = (filtered.jsonBody as { runs: Array<{ billingMonth: string; status: string }> }).runs;
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((r) => r.billingMonth === month && r.status === 'succeeded')).toBe(true);
  });

  it('GET answers 400 for a bad filter and 404 for an unknown run', async () => {
    const bad = await listRuns(get(`${base}?month=October&status=done`), app.context(), app.deps);
    expect(bad.status).toBe(400);
    expect((bad.jsonBody as { error: { message: string } }).error.message).toBe("'month' is 'October': expected YYYY-MM; 'status' is 'done': expected one of starting, polling, copying, succeeded, failed");

    const unknownId = '00000000-0000-4000-8000-000000000000';
    expect((await getRun(get(`${base}/${unknownId}`, { runId: unknownId }), app.context(), app.deps)).status).toBe(404);
    expect((await getRun(get(`${base}/nope`, { runId: 'nope' }), app.context(), app.deps)).status).toBe(400);
  });
});
