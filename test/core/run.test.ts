import { describe, expect, it } from 'vitest';
import { CLAIM_GRACE_SECONDS, decideStart, type Run, type StartRequest, type UnbilledRun } from '../../src/core/run';
import { aRun } from '../support/runs';

const now = new Date('2026-11-04T06:00:00Z');
const deadline = 6 * 3600;
const request: StartRequest = { kind: 'unbilled-usage', billingPeriod: 'last', currency: 'EUR', attributeSet: 'full', trigger: 'timer' };
const run = (overrides: Partial<UnbilledRun>): Run => aRun({ runId: 'r1', ...overrides });

describe('decideStart', () => {
  it('starts a key that never ran', () => {
    expect(decideStart(undefined, request, now, deadline)).toEqual({ kind: 'start' });
  });

  it('stands down while another start has claimed the key but not yet recorded its run', () => {
    const claimedSecondsAgo = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();
    expect(decideStart(undefined, request, now, deadline, claimedSecondsAgo(1))).toEqual({ kind: 'skip', reason: 'another start for this month is recording its run' });
    // A claim whose run never appeared is what a crash leaves behind: start again.
    expect(decideStart(undefined, request, now, deadline, claimedSecondsAgo(CLAIM_GRACE_SECONDS + 1))).toEqual({ kind: 'start' });
  });

  it('never starts a second export while one is running', () => {
    expect(decideStart(run({ state: 'polling' }), request, now, deadline)).toMatchObject({ kind: 'skip', reason: 'run r1 for this month is still polling' });
    expect(decideStart(run({ state: 'copying' }), { ...request, force: true }, now, deadline).kind).toBe('skip');
  });

  it('supersedes a run that passed its deadline without finishing', () => {
    const stuck = run({ state: 'polling', startedAt: '2026-11-03T06:00:00.000Z' });
    expect(decideStart(stuck, request, now, deadline)).toEqual({ kind: 'start', supersedes: stuck });
  });

  it('does not export a closed month again after it landed, unless forced', () => {
    const landed = run({ state: 'succeeded', startedAt: '2026-11-03T06:00:00.000Z', destinationContainer: 'c', destinationFolder: 'f/' });
    expect(decideStart(landed, request, now, deadline)).toMatchObject({ kind: 'skip', reason: 'run r1 already landed this month at c/f/' });
    expect(decideStart(landed, { ...request, force: true }, now, deadline)).toEqual({ kind: 'start' });
  });

  it('retries a month whose last run failed', () => {
    expect(decideStart(run({ state: 'failed' }), request, now, deadline)).toEqual({ kind: 'start' });
  });

  it("lets the final 'last' export replace a 'current' snapshot of the same month", () => {
    const snapshot = run({ state: 'succeeded', billingPeriod: 'current', startedAt: '2026-10-31T06:00:00.000Z' });
    expect(decideStart(snapshot, request, now, deadline)).toEqual({ kind: 'start' });
  });

  it("refreshes the 'current' month once per UTC day", () => {
    const current = { ...request, billingPeriod: 'current' } as const;
    expect(decideStart(run({ state: 'succeeded', billingPeriod: 'current', startedAt: '2026-11-04T01:00:00.000Z' }), current, now, deadline).kind).toBe('skip');
    expect(decideStart(run({ state: 'succeeded', billingPeriod: 'current', startedAt: '2026-11-03T23:00:00.000Z' }), current, now, deadline).kind).toBe('start');
  });
});
