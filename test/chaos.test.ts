/**
 * A small, fixed-seed chaos run in every `npm test`: faults at random in Graph and storage,
 * duplicate timer firings, worker processes killed and restarted. The figures that must be zero
 * are zero, and the faults were really injected (so the run proves something).
 */
import { describe, expect, it } from 'vitest';
import { MUST_BE_ZERO, runChaos } from '../chaos/runChaos';

describe('chaos (fixed seed)', () => {
  it('ends every run succeeded or failed with a reason, with nothing stuck, incomplete, duplicated or leaked', async () => {
    const report = await runChaos({ seed: 7, runs: 4, faultRate: 0.1, workers: 2, killEveryMs: 2500, timeoutSeconds: 180 });

    for (const figure of MUST_BE_ZERO) expect(report[figure], figure).toBe(0);
    expect(report.runsSucceeded + report.runsFailedWithReason).toBe(report.runs);
    expect(Object.keys(report.faultsInjected).some((kind) => kind.startsWith('graph'))).toBe(true);
    expect(Object.keys(report.faultsInjected).some((kind) => kind.startsWith('storage'))).toBe(true);
    expect(report.workerKills).toBeGreaterThan(0);
  }, 240_000);
});
