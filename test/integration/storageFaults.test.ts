/**
 * The app's own storage (queue, ledger table, destination blobs) failing under it: the fault
 * proxy in front of Azurite resets connections, answers 500/503, and holds requests past
 * their deadline. Runs still end succeeded, or failed with a reason; nothing hangs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../emulator/faultProxy';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MANIFEST_FILE_NAME } from '../../src/core/naming';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, fastHost, listBlobs, unbilledRequest } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({
    faultProxy: { seed: 7 },
    scenario: { fileCount: 3, rowsPerFile: 10, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null },
  });
});
afterAll(async () => {
  await cloud?.stop();
});
afterEach(() => cloud.proxy!.clearRules());

let next = 0;
async function exportThrough(rules: FaultRule[]) {
  const app = createTestApp(cloud, {}, { storageCallTimeoutMs: 5000 });
  await app.deps.ready();
  // The fault log spans the whole file: this case's faults are the ones logged from here on.
  const injectedBefore = cloud.proxy!.injected().length;
  rules.forEach((rule) => cloud.proxy!.addRule(rule));
  const currency = ['ILS', 'ZAR', 'TRY', 'THB', 'INR', 'BRL', 'KRW'][next++]!;
  const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
  const [final] = (await app.work({ runIds: [run.runId] })).runs;
  cloud.proxy!.clearRules();
  return { app, run: final!, injected: cloud.proxy!.injected().slice(injectedBefore) };
}

describe('storage faults under the app', () => {
  it.each([
    ['queue answering 503 with Retry-After', { service: 'queue', method: 'POST', fault: { kind: 'status', status: 503, retryAfterSeconds: 1 }, times: 2 }],
    ['ledger table connections reset', { service: 'table', fault: { kind: 'reset' }, times: 3 }],
    ['ledger table answering 500', { service: 'table', method: 'PUT', fault: { kind: 'status', status: 500 }, times: 2 }],
    [
      'destination copies answering 503 beyond the SDK retries',
      { service: 'blob', method: 'PUT', path: /^\/partnerdest\/exports-/, fault: { kind: 'status', status: 503 }, times: 6 },
    ],
    ['random resets everywhere (seeded)', { fault: { kind: 'reset' }, probability: 0.05 }],
  ] as Array<[string, FaultRule]>)('%s', async (_case, rule) => {
    const { app, run, injected } = await exportThrough([rule]);

    expect(run.state).toBe('succeeded');
    expect((await listBlobs(app)).filter((name) => name.endsWith(MANIFEST_FILE_NAME))).toHaveLength(1);
    // This case's rule fired (as often as it says, when it says), and only where it points.
    const expected = expect.objectContaining({
      kind: rule.fault.kind,
      ...(rule.service ? { service: rule.service } : {}),
      ...(rule.method ? { method: rule.method } : {}),
    });
    if (rule.times === undefined) expect(injected.length).toBeGreaterThan(0);
    else expect(injected).toHaveLength(rule.times);
    expect(injected).toEqual(injected.map((): unknown => expected));
  });

  it('gives up on a call past its deadline and retries the landing instead of hanging', async () => {
    // The landing's listing of the destination folder is held far past the call's deadline.
    const { app, run } = await exportThrough([
      { service: 'blob', method: 'GET', path: /^\/partnerdest\/exports-[^?]*\?.*comp=list/, fault: { kind: 'delay', ms: 60_000 }, times: 1 },
    ]);

    expect(run).toMatchObject({ state: 'succeeded', landingAttempts: 1 });
    expect(app.logs.some((line) => line.includes('copying hit a transient failure') && line.includes('deadline'))).toBe(true);
  });

  it('a worker whose lease ran out (renewals refused) leaves the message to its new holder instead of crashing', async () => {
    const app = createTestApp(cloud, {}, { storageCallTimeoutMs: 5000 });
    await app.deps.ready();
    const { run } = await startExport(unbilledRequest('UAH'), app.deps, app.context());
    // The first poll hangs at Graph while every lease renewal (Update Message) fails, so the
    // 2 s lease runs out: the message is received again (a new pop receipt), and the first
    // delivery's delete finds its receipt stale.
    const removeDelay = cloud.billing.faults.add({ endpoint: 'operation', fault: { kind: 'delay', ms: 6000 }, times: 1 });
    cloud.proxy!.addRule({ service: 'queue', method: 'PUT', path: /\/messages\/[^?]+\?.*popreceipt=/, fault: { kind: 'status', status: 500 } });
    try {
      const result = await app.work({ runIds: [run.runId], host: { ...fastHost, leaseSeconds: 2 } });

      expect(result.runs[0]).toMatchObject({ state: 'succeeded' });
      expect(result.leasesLost).toBeGreaterThan(0);
      expect(app.logs.some((line) => line.includes('lease lost (its pop receipt changed'))).toBe(true);
    } finally {
      removeDelay();
    }
  }, 60_000);

  it('creates the destination container private', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const properties = await app.clients.destinationContainer.getProperties();
    expect(properties.blobPublicAccess).toBeUndefined();
  });
});
