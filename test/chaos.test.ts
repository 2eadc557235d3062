/**
 * A small, fixed-seed chaos run in every `npm test`: faults at random in Graph and storage,
 * duplicate timer firings, worker processes killed and restarted. The figures that must be zero
 * are zero, and the faults were really injected (so the run proves something). Its time limit is
 * generous: a worker killed mid-landing holds the run for a landing claim (LANDING_CLAIM_SECONDS)
 * before another takes over, and CI shares two cores with the rest of the suite.
 */
import { describe, expect, it } from 'vitest';
import { MUST_BE_ZERO, WORKER_LEASE_SECONDS, chaosStallGraceSeconds, runChaos } from '../chaos/runChaos';
import { queueHostOptions } from '../emulator/queueHost';

describe('chaos (fixed seed)', () => {
  it('ends every run succeeded or failed with a reason, with nothing stuck, incomplete, duplicated or leaked', async () => {
    const report = await runChaos({ seed: 7, runs: 4, faultRate: 0.1, workers: 2, killEveryMs: 2500, timeoutSeconds: 300 });

    for (const figure of MUST_BE_ZERO) expect(report[figure], figure).toBe(0);
    expect(report.runsSucceeded + report.runsFailedWithReason).toBe(report.runs);
    expect(Object.keys(report.faultsInjected).some((kind) => kind.startsWith('graph'))).toBe(true);
    expect(Object.keys(report.faultsInjected).some((kind) => kind.startsWith('storage'))).toBe(true);
    expect(report.workerKills).toBeGreaterThan(0);
  }, 360_000);
});

describe("the chaos sweeper's grace", () => {
  it("outlasts a failed delivery's redelivery (host.json visibilityTimeout) plus two killed workers' leases", () => {
    const { visibilityTimeoutSeconds } = queueHostOptions();

    expect(visibilityTimeoutSeconds).toBeGreaterThan(0);
    expect(chaosStallGraceSeconds()).toBeGreaterThan(visibilityTimeoutSeconds + 2 * WORKER_LEASE_SECONDS);
    // It follows host.json: a longer redelivery wait gives a longer grace.
    expect(chaosStallGraceSeconds({ visibilityTimeoutSeconds: 300 })).toBeGreaterThan(300 + 2 * WORKER_LEASE_SECONDS);
  });
});
