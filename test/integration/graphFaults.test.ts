/**
 * The export under the faults Graph and its storage produce, injected per request by the
 * Partner Billing emulator: every case ends with the run succeeded, or failed with a reason that
 * names the cause; nothing hangs, nothing is written outside the run's folder, and manifest.json
 * exists only when every listed file is verified.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GraphFaultRule, InjectedGraphFault } from '../../emulator/graphFaults';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import type { Run } from '../../src/core/run';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, listBlobs, unbilledRequest, type TestApp } from './harness';

let cloud: LocalCloud;
let foreign: Server;
let foreignRequests = 0;
let foreignOrigin: string;

beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 2, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
  foreign = createServer((_request, response) => {
    foreignRequests++;
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}');
  });
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  foreignOrigin = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => foreign?.close(resolve));
  await cloud?.stop();
});
afterEach(() => cloud.billing.faults.clear());

let currencies = 0;
/** A fresh app and a currency of its own, so every case is a new export key. */
async function exportWith(
  rules: GraphFaultRule[],
  settings: Record<string, string> = {},
): Promise<{ app: TestApp; run: Run; exportsStarted: number; injected: InjectedGraphFault[] }> {
  const app = createTestApp(cloud, settings, { graph: { timeoutMs: 1000, attempts: 2, maxInProcessWaitSeconds: 2 } });
  const currency = `X${String.fromCharCode(65 + Math.floor(currencies / 26))}${String.fromCharCode(65 + (currencies++ % 26))}`;
  const before = cloud.billing.exports().length;
  // The fault log spans the whole file: this case's faults are the ones logged from here on.
  const injectedBefore = cloud.billing.faults.injected().length;
  rules.forEach((rule) => cloud.billing.faults.add(rule));
  const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
  const [final] = (await app.work({ runIds: [run.runId] })).runs;
  return { app, run: final!, exportsStarted: cloud.billing.exports().length - before, injected: cloud.billing.faults.injected().slice(injectedBefore) };
}

async function manifests(app: TestApp): Promise<string[]> {
  return (await listBlobs(app)).filter((name) => name.endsWith(MANIFEST_FILE_NAME));
}

describe('transient Graph faults are retried, honouring Retry-After', () => {
  it.each([
    ['429 with Retry-After in seconds on the export POST', { endpoint: 'export', fault: { kind: 'status', status: 429, retryAfterSeconds: 1 }, times: 1 }],
    [
      '503 with Retry-After as an HTTP-date on the export POST',
      { endpoint: 'export', fault: { kind: 'status', status: 503, retryAfterSeconds: 1, retryAfterAsDate: true }, times: 1 },
    ],
    ['429 on the operation GET', { endpoint: 'operation', fault: { kind: 'status', status: 429, retryAfterSeconds: 1 }, times: 2 }],
    ['503 on the manifest GET', { endpoint: 'manifest', fault: { kind: 'status', status: 503, retryAfterSeconds: 1 }, times: 2 }],
    ['a connection reset on the operation GET', { endpoint: 'operation', fault: { kind: 'reset' }, times: 2 }],
    ['an answer slower than the client timeout', { endpoint: 'operation', fault: { kind: 'delay', ms: 2500 }, times: 2 }],
  ] as Array<[string, GraphFaultRule]>)('%s', async (_case, rule) => {
    const { app, run, exportsStarted, injected } = await exportWith([rule]);

    expect(run).toMatchObject({ state: 'succeeded', blobCount: 2 });
    expect(exportsStarted).toBe(1);
    // This case's rule fired exactly as often as it says (so the success came through the fault).
    expect(injected).toEqual(Array.from({ length: rule.times! }, (): unknown => expect.objectContaining({ endpoint: rule.endpoint, kind: rule.fault.kind })));
    expect(await manifests(app)).toHaveLength(1);
  });
});

describe('permanent faults end the run with a reason that names the cause', () => {
  it.each([
    ['a 403 on the export POST', { endpoint: 'export', fault: { kind: 'status', status: 403 } }, 'Forbidden', /POST .* failed with 403 Forbidden/],
    ['malformed JSON from the operation', { endpoint: 'operation', fault: { kind: 'malformedJson' } }, 'InvalidJson', /not JSON/],
    [
      'an unknown operation status',
      { endpoint: 'operation', fault: { kind: 'unknownStatus', status: 'paused' } },
      'InvalidOperation',
      /unknown status 'paused'/,
    ],
    [
      'retries exhausted: 503 on every operation GET',
      { endpoint: 'operation', fault: { kind: 'status', status: 503, retryAfterSeconds: 1 } },
      'DeadlineExceeded',
      /EXPORT_DEADLINE_SECONDS/,
    ],
  ] as Array<[string, GraphFaultRule, string, RegExp]>)('%s', async (_case, rule, code, reason) => {
    const { app, run } = await exportWith([rule], { EXPORT_DEADLINE_SECONDS: '4' });

    expect(run).toMatchObject({ state: 'failed', errorCode: code });
    expect(run.errorMessage).toMatch(reason);
    expect(await listBlobs(app)).toEqual([]);
  });

  it.each([
    ['5000 No data available', { code: '5000', message: 'No data available' }, 'noData', 'Graph has no data for this export'],
    ['an internal error code', { code: '9001', message: 'Export generation failed' }, 'failed', 'Graph reported the export failed'],
  ] as const)('a failedOperation with %s', async (_case, failure, state, said) => {
    cloud.billing.setScenario({ outcome: 'failed', failure, runningPolls: 1, retryAfterSeconds: null });
    try {
      const { run } = await exportWith([]);
      expect(run).toMatchObject({ state, errorCode: failure.code, errorMessage: `${said}: ${failure.message} (code ${failure.code})` });
    } finally {
      cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null });
    }
  });
});

describe('an operation that is gone restarts the export, a bounded number of times', () => {
  it('restarts after a 410 and lands the new export, recording the restart', async () => {
    cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 2, retryAfterSeconds: null });
    const { run, exportsStarted } = await exportWith([{ endpoint: 'operation', fault: { kind: 'status', status: 410 }, after: 1, times: 1 }]);

    expect(run).toMatchObject({ state: 'succeeded', restarts: 1 });
    expect(exportsStarted).toBe(2);
  });

  it('fails after the restarts are used up', async () => {
    const { run, exportsStarted } = await exportWith([{ endpoint: 'operation', fault: { kind: 'status', status: 404 } }]);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'OperationGone', restarts: 3 });
    expect(exportsStarted).toBe(4);
  });
});

describe('stale SAS tokens are refreshed', () => {
  it('refreshes a first success whose SAS had already expired, and lands everything', async () => {
    const { app, run } = await exportWith([{ endpoint: 'manifest', fault: { kind: 'expiredSas' }, times: 1 }]);

    expect(run).toMatchObject({ state: 'succeeded', blobCount: 2 });
    expect(app.logs.some((line) => line.includes('source SAS refused; reading the operation again'))).toBe(true);
    expect(await manifests(app)).toHaveLength(1);
  });
});

describe('a manifest that disagrees with itself or the source, or escapes its folder, writes nothing', () => {
  it.each([
    ['blobCount disagreeing with blobs', 'blobCountMismatch', 'InvalidManifest', /'blobCount' is 3 but 'blobs' lists 2 files/],
    ['a name escaping the folder', 'escapingName', 'InvalidManifest', /'\.\.' path segment/],
    ['a name that is an absolute URL', 'absoluteUrlName', 'InvalidManifest', /is an absolute URL/],
    ['a name with a query string', 'queryName', 'InvalidManifest', /contains '\?'/],
  ] as const)('%s', async (_case, defect, code, reason) => {
    const { app, run } = await exportWith([{ endpoint: 'manifest', fault: { kind: 'manifest', defect } }]);

    expect(run).toMatchObject({ state: 'failed', errorCode: code });
    expect(run.errorMessage).toMatch(reason);
    expect(await listBlobs(app)).toEqual([]);
  });

  it('a listed file missing at the source fails the run naming the file, with no manifest.json', async () => {
    const { app, run } = await exportWith([{ endpoint: 'manifest', fault: { kind: 'manifest', defect: 'missingBlob' } }]);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'BlobNotFound' });
    expect(run.errorMessage).toMatch(/'part-99999-[0-9a-f-]+\.c000\.json\.gz': BlobNotFound \(HTTP 404\)/);
    const written = await listBlobs(app);
    expect(written.every((name) => name.startsWith(run.destinationFolder!))).toBe(true);
    expect(await manifests(app)).toEqual([]);
  });
});

describe('the bearer token stays on the Graph origin', () => {
  it('a redirect to another origin fails the run and sends that origin nothing', async () => {
    const { run } = await exportWith([{ endpoint: 'operation', fault: { kind: 'redirect', location: `${foreignOrigin}/steal` } }]);

    expect(run).toMatchObject({ state: 'failed', errorCode: 'ForeignOrigin' });
    expect(run.errorMessage).toContain('refusing to send it the token');
    expect(foreignRequests).toBe(0);
  });
});
