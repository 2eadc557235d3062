/**
 * Trouble between the app and Graph that waiting cannot fix forever, or that repeating can make
 * worse, against the local cloud: a managed identity that gives no token, answers that are not
 * JSON or stall mid-body, and an export POST whose fate is unknown. Each run either succeeds or
 * fails quickly with a code that names the cause; while it waits, the ledger says why.
 */
import { HttpRequest } from '@azure/functions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GraphFaultRule } from '../../emulator/graphFaults';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MAX_UNCERTAIN_POSTS } from '../../src/core/policy';
import type { Run } from '../../src/core/run';
import { listRuns } from '../../src/functions/runsApi';
import { startExport } from '../../src/functions/startExport';
import { runSummary } from '../../src/runSummary';
import { formatRunTable } from '../../cli/output';
import { createTestApp, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});
afterEach(() => {
  cloud.billing.faults.clear();
  delete process.env.AZURE_CLIENT_ID;
});

let currencies = 0;
async function exportWith(
  rules: GraphFaultRule[],
  app: TestApp = createTestApp(cloud, {}, { graph: { timeoutMs: 1000, attempts: 2, maxInProcessWaitSeconds: 2 } }),
) {
  const currency = `T${String.fromCharCode(65 + Math.floor(currencies / 26))}${String.fromCharCode(65 + (currencies++ % 26))}`;
  const exportsBefore = cloud.billing.exports().length;
  const requestsBefore = cloud.billing.requests().length;
  rules.forEach((rule) => cloud.billing.faults.add(rule));
  const started = await startExport(unbilledRequest(currency), app.deps, app.context());
  const [final] = (await app.work({ runIds: [started.run.runId] })).runs;
  return {
    app,
    started: started.run,
    run: final!,
    exportsStarted: cloud.billing.exports().length - exportsBefore,
    requests: cloud.billing.requests().slice(requestsBefore),
  };
}

describe('a managed identity that gives no token', () => {
  it("fails the run after three tries with IdentityUnavailable and the identity endpoint's own words, without calling Graph", async () => {
    process.env.AZURE_CLIENT_ID = '0a0b0c0d-1e1f-4a4b-8c8d-9e9f0a0b0c0d'; // not assigned to the app
    const app = createTestApp(cloud);

    const { run, requests } = await exportWith([], app);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'IdentityUnavailable', lastErrorCount: 3 });
    expect(run.errorMessage).toMatch(
      /^starting the export: the managed identity could not provide a token for https:\/\/graph\.microsoft\.com\/\.default: ManagedIdentityCredential: .*Unable to load the proper Managed Identity\..*\(met 3 times in a row\)$/,
    );
    expect(requests).toEqual([]);

    // The same code and message wherever an operator looks: status, GET /api/runs, the run-failed alert.
    expect(runSummary(run, app.deps).error).toEqual({ code: 'IdentityUnavailable', message: run.errorMessage });
    expect(formatRunTable([run])).toContain('IdentityUnavailable: starting the export: the managed');
    const listed = await listRuns(
      new HttpRequest({ method: 'GET', url: 'https://app.example.net/api/runs', query: { status: 'failed' } }),
      app.context(),
      app.deps,
    );
    expect((listed.jsonBody as { runs: Array<{ runId: string; error?: unknown }> }).runs.find((r) => r.runId === run.runId)?.error).toEqual({
      code: 'IdentityUnavailable',
      message: run.errorMessage,
    });
    const alertLine = app.logs.find((line) => line.startsWith('error: run failed {'));
    expect(JSON.parse(alertLine!.slice(alertLine!.indexOf('{')))).toMatchObject({
      runId: run.runId,
      errorCode: 'IdentityUnavailable',
      reason: run.errorMessage,
    });
    for (const token of cloud.authority.issued()) expect(app.logs.join('\n')).not.toContain(token);
  });

  it('records why a starting run is waiting, and clears it once the identity is back', async () => {
    process.env.AZURE_CLIENT_ID = '0a0b0c0d-1e1f-4a4b-8c8d-9e9f0a0b0c0e';
    const broken = createTestApp(cloud);
    const currency = 'TZZ';
    const { run: waiting } = await startExport(unbilledRequest(currency), broken.deps, broken.context());

    expect(waiting).toMatchObject({ state: 'starting', lastErrorCode: 'IdentityUnavailable', lastErrorCount: 1, lastErrorAt: expect.any(String) });
    expect((await broken.deps.ledger.getRun(waiting.runId))?.run).toMatchObject({
      lastErrorCode: 'IdentityUnavailable',
      lastErrorMessage: waiting.lastErrorMessage,
    });
    expect(runSummary(waiting, broken.deps).lastError).toEqual({
      code: 'IdentityUnavailable',
      message: waiting.lastErrorMessage,
      count: 1,
      at: waiting.lastErrorAt,
    });
    expect(formatRunTable([waiting])).toContain('waiting: IdentityUnavailable (1x): starting the export');

    delete process.env.AZURE_CLIENT_ID;
    const fixed = createTestApp(cloud, { POLL_QUEUE: broken.deps.settings.pollQueue, PARTNER_CONTAINER: broken.deps.settings.partnerContainer });
    const [final] = (await fixed.work({ runIds: [waiting.runId] })).runs;

    expect(final).toMatchObject({ state: 'succeeded' });
    expect([final!.lastErrorCode, final!.lastErrorMessage, final!.lastErrorCount, final!.lastErrorAt]).toEqual([undefined, undefined, undefined, undefined]);
    expect(runSummary(final!, fixed.deps).lastError).toBeUndefined();
  });
});

describe('a Graph answer that is not JSON', () => {
  it('is retried and counted on the run when it happens once', async () => {
    const { run } = await exportWith([{ endpoint: 'operation', fault: { kind: 'malformedJson' }, times: 1 }]);

    expect(run).toMatchObject({ state: 'succeeded', malformedAnswers: 1 });
    expect(run.lastErrorCode).toBeUndefined();
  });

  it('fails the run with InvalidJson after three in a row', async () => {
    const { run } = await exportWith([{ endpoint: 'operation', fault: { kind: 'malformedJson' } }]);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'InvalidJson', malformedAnswers: 3, pollCount: 3 });
    expect(run.errorMessage).toMatch(/^polling the export operation: GET .* answered 200 with a body that is not JSON: .*\(met 3 times in a row\)$/);
  });
});

describe('a Graph body that stalls after the headers', () => {
  it('is a transient failure: the timeout covers the body, and the run lands', async () => {
    const { run } = await exportWith([{ endpoint: 'operation', fault: { kind: 'stalledBody', ms: 3000 }, times: 2 }]);

    expect(run).toMatchObject({ state: 'succeeded', blobCount: 1 });
    expect(cloud.billing.faults.injected().filter((fault) => fault.kind === 'stalledBody')).toHaveLength(2);
  });
});

describe('an export POST whose fate is unknown', () => {
  it.each([
    ['a 500', { endpoint: 'export', fault: { kind: 'status', status: 500 }, times: 1 }, 'InternalServerError'],
    ['a 504', { endpoint: 'export', fault: { kind: 'status', status: 504 }, times: 1 }, 'GatewayTimeout'],
    ['a reset mid-request', { endpoint: 'export', fault: { kind: 'reset' }, times: 1 }, 'NetworkError'],
  ] as Array<[string, GraphFaultRule, string]>)('after %s is tried again from the ledger, after a delay, not at once', async (_case, rule, code) => {
    const { started, run, exportsStarted, requests } = await exportWith([rule]);

    // The start handed the retry to the queue: the run waits, saying why.
    expect(started).toMatchObject({ state: 'starting', lastErrorCode: code, lastErrorCount: 1, nextActionAt: expect.any(String) });
    expect(run.state).toBe('succeeded');
    expect(run.lastErrorCode).toBeUndefined();
    expect(exportsStarted).toBe(1);
    expect(requests.filter((request) => request.method === 'POST')).toHaveLength(2);
  });

  it('after Graph took it but the answer was lost, tries again later and leaves one orphaned operation, which is counted', async () => {
    const { started, run, exportsStarted, requests } = await exportWith([{ endpoint: 'export', fault: { kind: 'lostAnswer' }, times: 1 }]);

    expect(started).toMatchObject({ state: 'starting', lastErrorCode: 'NetworkError' });
    expect(run.state).toBe('succeeded');
    // The emulator started two exports; the run knows one: the difference is what chaos reports as orphaned.
    expect(exportsStarted).toBe(2);
    expect(exportsStarted - (1 + (run.restarts ?? 0))).toBe(1);
    expect(requests.filter((request) => request.method === 'POST')).toHaveLength(2);
  });

  it('after a 503 is repeated at once: Graph did not take it', async () => {
    const { started, run, requests } = await exportWith([{ endpoint: 'export', fault: { kind: 'status', status: 503 }, times: 1 }]);

    expect(started).toMatchObject({ state: 'polling' });
    expect(started.lastErrorCode).toBeUndefined();
    expect(run.state).toBe('succeeded');
    expect(requests.filter((request) => request.method === 'POST')).toHaveLength(2);
  });
});

describe('an export POST that keeps failing with a status that leaves its fate unknown', () => {
  it('is repeated after growing delays, at most MAX_UNCERTAIN_POSTS times, and the run fails naming the last error', async () => {
    // A deadline far beyond the backoff: the run must stop because of the bound, not the deadline.
    const app = createTestApp(
      cloud,
      { POLL_MAX_DELAY_SECONDS: '16', EXPORT_DEADLINE_SECONDS: '90' },
      { graph: { timeoutMs: 1000, attempts: 2, maxInProcessWaitSeconds: 2 } },
    );
    const { run, requests, exportsStarted } = await exportWith([{ endpoint: 'export', fault: { kind: 'status', status: 504 } }], app);

    expect(requests.filter((request) => request.method === 'POST')).toHaveLength(MAX_UNCERTAIN_POSTS);
    expect(exportsStarted).toBe(0);
    expect(run).toMatchObject({
      state: 'failed',
      errorCode: 'GatewayTimeout',
      uncertainPosts: MAX_UNCERTAIN_POSTS,
      startFailures: MAX_UNCERTAIN_POSTS,
      lastErrorCode: 'GatewayTimeout',
    });
    expect(run.errorMessage).toMatch(
      /^starting the export: POST .*\/export failed with 504 GatewayTimeout.*\(5 export POSTs of unknown fate in this run; not repeated again/,
    );
    // Each wait longer than the one before (1, 2, 4, 8 s less jitter), not the initial delay every time.
    const delays = app.logs
      .filter((line) => line.includes('next poll scheduled'))
      .map((line) => (JSON.parse(line.slice(line.indexOf('{'))) as { delaySeconds: number }).delaySeconds);
    expect(delays).toHaveLength(MAX_UNCERTAIN_POSTS - 1);
    delays.slice(1).forEach((delay, index) => expect(delay).toBeGreaterThan(delays[index]!));
  });

  it('a POST that was surely not taken (503) is not counted as uncertain', async () => {
    const app = createTestApp(cloud, {}, { graph: { timeoutMs: 1000, attempts: 1 } });
    const { started, run } = await exportWith([{ endpoint: 'export', fault: { kind: 'status', status: 503 }, times: 1 }], app);

    expect(started).toMatchObject({ state: 'starting', startFailures: 1, lastErrorCode: 'ServiceUnavailable' });
    expect(started.uncertainPosts).toBeUndefined();
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run.startFailures).toBeUndefined();
  });

  it('a run that never got its export accepted says so at the deadline', async () => {
    const app = createTestApp(cloud, { EXPORT_DEADLINE_SECONDS: '2' }, { graph: { timeoutMs: 1000, attempts: 1 } });
    const { run } = await exportWith([{ endpoint: 'export', fault: { kind: 'status', status: 503 } }], app);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'DeadlineExceeded' });
    expect(run.errorMessage).toMatch(
      /^the export was never accepted \(no export POST was answered 202 Accepted\) within EXPORT_DEADLINE_SECONDS \(2 s\).*; the last error was ServiceUnavailable: starting the export: POST /,
    );
  });
});

describe('a run that passes its deadline while waiting out a transient failure', () => {
  it('keeps the last error in the DeadlineExceeded reason', async () => {
    const app = createTestApp(cloud, { EXPORT_DEADLINE_SECONDS: '3' }, { graph: { timeoutMs: 1000, attempts: 1 } });
    const { run } = await exportWith([{ endpoint: 'operation', fault: { kind: 'status', status: 503 } }], app);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'DeadlineExceeded' });
    expect(run.errorMessage).toMatch(
      /EXPORT_DEADLINE_SECONDS.*; the last error was ServiceUnavailable: polling the export operation: GET .* failed with 503 ServiceUnavailable/,
    );
  });
});

export type { Run };
