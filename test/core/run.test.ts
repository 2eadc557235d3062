import { describe, expect, it } from 'vitest';
import {
  CLAIM_GRACE_SECONDS,
  decideStart,
  hasLanded,
  isFailure,
  isFinished,
  isNoData,
  isSameDataAsLanded,
  landedDataOf,
  newRun,
  toCheckingFiles,
  toCopying,
  toNoData,
  toSucceeded,
  toNoNewData,
  withClaim,
  type BilledRun,
  type Run,
  type StartRequest,
  type UnbilledRun,
} from '../../src/core/run';
import { isStalled } from '../../src/core/policy';
import { aBilledRun, aRun } from '../support/runs';

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
    expect(decideStart(undefined, request, now, deadline, claimedSecondsAgo(1))).toEqual({
      kind: 'skip',
      reason: 'another start for this month is recording its run',
    });
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
    expect(decideStart(run({ state: 'succeeded', billingPeriod: 'current', startedAt: '2026-11-03T23:00:00.000Z' }), current, now, deadline).kind).toBe(
      'start',
    );
  });
});

describe('decideStart for an invoice', () => {
  const invoice: StartRequest = { kind: 'billed-usage', invoiceId: 'G016907411', attributeSet: 'full', trigger: 'event' };
  const billed = (overrides: Partial<BilledRun>): Run => aBilledRun({ runId: 'b1', ...overrides });

  it('lands an invoice once: a replayed event or a backfill starts nothing, a forced one does', () => {
    const reasons = {
      succeeded: 'run b1 already landed this invoice at c/billed-usage/G016907411/full/e1/',
      // It copied nothing, so it is not said to have landed the invoice.
      noNewData: "run b1 found this invoice's data unchanged; it landed at c/billed-usage/G016907411/full/e1/",
    };
    for (const state of ['succeeded', 'noNewData'] as const) {
      const landed = billed({ state, startedAt: '2026-12-07T05:00:00.000Z', destinationContainer: 'c', destinationFolder: 'billed-usage/G016907411/full/e1/' });
      expect(decideStart(landed, invoice, new Date('2027-03-01T00:00:00Z'), deadline)).toMatchObject({ kind: 'skip', reason: reasons[state] });
      expect(decideStart(landed, { ...invoice, force: true }, now, deadline)).toEqual({ kind: 'start' });
    }
  });

  it('tries an invoice again after it failed or had no data yet', () => {
    expect(decideStart(billed({ state: 'failed' }), invoice, now, deadline)).toEqual({ kind: 'start' });
    expect(decideStart(billed({ state: 'noData' }), invoice, now, deadline)).toEqual({ kind: 'start' });
    expect(decideStart(billed({ state: 'polling', startedAt: now.toISOString() }), invoice, now, deadline)).toMatchObject({
      kind: 'skip',
      reason: 'run b1 for this invoice is still polling',
    });
  });

  it('does not let noData block an unbilled month either, and treats noNewData as landed', () => {
    expect(decideStart(run({ state: 'noData', startedAt: '2026-11-03T06:00:00.000Z' }), request, now, deadline)).toEqual({ kind: 'start' });
    expect(decideStart(run({ state: 'noNewData', startedAt: '2026-11-03T06:00:00.000Z' }), request, now, deadline).kind).toBe('skip');
  });
});

describe('new runs and the data a key landed', () => {
  const at = new Date('2026-12-07T06:00:00Z');
  const invoice: StartRequest = { kind: 'billed-reconciliation', invoiceId: 'G016907411', attributeSet: 'full', trigger: 'backfill' };

  it('a billed run carries its kind and invoice and no month, currency or period', () => {
    const fresh = newRun(invoice, 'r9', at);
    expect(fresh).toEqual({
      kind: 'billed-reconciliation',
      invoiceId: 'G016907411',
      attributeSet: 'full',
      runId: 'r9',
      trigger: 'backfill',
      state: 'starting',
      seq: 0,
      pollCount: 0,
      bytesCopied: 0,
      startedAt: at.toISOString(),
      updatedAt: at.toISOString(),
    });
  });

  it('remembers what the key landed last: from a landed run, or carried on through runs that did not land', () => {
    const landed = aBilledRun({ state: 'succeeded', manifestETag: 'e1', destinationContainer: 'c1', destinationFolder: 'f/' });
    const second = newRun(invoice, 'r2', at, landed);
    expect(second).toMatchObject({ lastLandedETag: 'e1', lastLandedContainer: 'c1' });
    const failed = { ...second, state: 'failed' } as Run;
    expect(newRun(invoice, 'r3', at, failed)).toMatchObject({ lastLandedETag: 'e1', lastLandedContainer: 'c1' });
    expect(landedDataOf(aBilledRun({ state: 'failed', manifestETag: 'e2', destinationContainer: 'c1' }))).toBeUndefined();
  });

  it('calls Graph data the same only for the same eTag in the same container', () => {
    const run = { lastLandedETag: 'e1', lastLandedContainer: 'c1' };
    expect(isSameDataAsLanded(run, 'e1', 'c1')).toBe(true);
    expect(isSameDataAsLanded(run, 'e2', 'c1')).toBe(false);
    expect(isSameDataAsLanded(run, 'e1', 'c2')).toBe(false);
    expect(isSameDataAsLanded({}, 'e1', 'c1')).toBe(false);
  });
});

describe('noData and noNewData', () => {
  const at = new Date('2026-12-07T06:10:00Z');
  it("are finished, not failures; noData keeps Graph's reason, noNewData points at the data already there", () => {
    const busy = aBilledRun({
      state: 'copying',
      landingClaimId: 'c',
      landingClaimedUntil: at.toISOString(),
      nextActionAt: at.toISOString(),
      lastErrorCode: 'X',
    });
    const none = toNoData(busy, '5000', 'No data available', at);
    expect(none).toMatchObject({ state: 'noData', errorCode: '5000', errorMessage: 'No data available', finishedAt: at.toISOString() });
    expect(none).not.toHaveProperty('landingClaimId', expect.anything());
    expect(none.nextActionAt).toBeUndefined();
    expect(none.lastErrorCode).toBeUndefined();
    const same = toNoNewData(busy, { manifestETag: 'e1', blobCount: 3, destinationContainer: 'c', destinationFolder: 'billed-usage/G016907411/full/e1/' }, at);
    expect(same).toMatchObject({ state: 'noNewData', manifestETag: 'e1', blobCount: 3, bytesCopied: 0, finishedAt: at.toISOString() });
    expect(same.landingClaimId).toBeUndefined();
    for (const ended of [none, same]) {
      expect(isFinished(ended)).toBe(true);
      expect(isFailure(ended)).toBe(false);
    }
    expect(hasLanded(same)).toBe(true);
    expect(hasLanded(none)).toBe(false);
  });

  it('are never revived or failed as stalled by the sweeper, however old', () => {
    const longAgo = '2026-01-01T00:00:00.000Z';
    for (const state of ['noData', 'noNewData'] as const) expect(isStalled(aBilledRun({ state, updatedAt: longAgo, nextActionAt: longAgo }), at)).toBe(false);
    expect(isStalled(aBilledRun({ state: 'polling', updatedAt: longAgo, nextActionAt: longAgo }), at)).toBe(true);
  });

  it("recognises Graph's documented 5000 only", () => {
    expect(isNoData('5000')).toBe(true);
    expect(isNoData('500')).toBe(false);
    expect(isNoData('InternalError')).toBe(false);
  });
});

describe('claims around the data check', () => {
  const claimed = aRun({ state: 'copying', seq: 4, landingClaimId: 'landing-1', landingClaimedUntil: '2026-11-04T06:02:00.000Z' });

  it("handing the files to their checks ends the landing's claim and moves the step on", () => {
    const next = toCheckingFiles(claimed, 1, now);
    expect(next).toMatchObject({ state: 'copying', seq: 5, nextActionAt: '2026-11-04T06:00:01.000Z', updatedAt: now.toISOString() });
    expect(next.landingClaimId).toBeUndefined();
    expect(next.landingClaimedUntil).toBeUndefined();
  });

  it('says from when its files are with their checks, until a new landing or the end', () => {
    const checking = toCheckingFiles(claimed, 1, now);
    expect(checking.checksSentAt).toBe(now.toISOString());
    const landing = { manifestETag: 'e2', partnerTenantId: 't', blobCount: 2, destinationContainer: 'c', destinationFolder: 'f/' };
    expect(toCopying(checking, landing, { id: 'landing-2', until: now }, now).checksSentAt).toBeUndefined();
    expect(toSucceeded(checking, { ...landing, bytesCopied: 1 }, now).checksSentAt).toBeUndefined();
  });

  it('a finisher takes a claim of its own, due when it runs out', () => {
    const until = new Date('2026-11-04T06:05:00Z');
    expect(withClaim(toCheckingFiles(claimed, 1, now), { id: 'finisher-1', until })).toMatchObject({
      seq: 5,
      landingClaimId: 'finisher-1',
      landingClaimedUntil: until.toISOString(),
      nextActionAt: until.toISOString(),
    });
  });
});
