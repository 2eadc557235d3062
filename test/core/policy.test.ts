import { describe, expect, it } from 'vitest';
import {
  BOUNDED_FAILURES,
  MAX_CHECK_ROUNDS,
  MAX_COPY_WAITS,
  MAX_LANDING_ATTEMPTS,
  MAX_RESTARTS,
  MAX_REVIVALS,
  MAX_UNCERTAIN_POSTS,
  STALL_GRACE_SECONDS,
  CHECK_WAIT_SECONDS,
  earlyMessageDelaySeconds,
  boundedFailureExhausted,
  decideCheckRound,
  decideLandingRetry,
  decideStartRetry,
  isStalled,
  mayRestart,
  mayRevive,
} from '../../src/core/policy';
import { aRun } from '../support/runs';

const delays = { initialDelaySeconds: 60, maxDelaySeconds: 600 };
const noJitter = () => 0;
const transient = { stillCopying: false, code: 'ServerBusy', message: 'The server is busy.' };
const pending = { stillCopying: true, code: 'CopiesPending', message: '3 copies still pending' };

describe('decideLandingRetry', () => {
  it.each([
    // run counters before, trouble, expected decision
    ['first transient trouble: attempt 1, the initial delay', {}, transient, { kind: 'retry', landingAttempts: 1, copyWaits: 0, delaySeconds: 60 }],
    [
      'third transient trouble: backoff doubles per attempt',
      { landingAttempts: 2 },
      transient,
      { kind: 'retry', landingAttempts: 3, copyWaits: 0, delaySeconds: 240 },
    ],
    ['backoff capped at the maximum poll delay', { landingAttempts: 3 }, transient, { kind: 'retry', landingAttempts: 4, copyWaits: 0, delaySeconds: 480 }],
    [
      'copies still pending use a wait, not an attempt',
      { landingAttempts: 2, copyWaits: 3 },
      pending,
      { kind: 'retry', landingAttempts: 2, copyWaits: 4, delaySeconds: 120 },
    ],
    [
      'the last allowed copy wait is still a retry',
      { copyWaits: MAX_COPY_WAITS - 1 },
      pending,
      { kind: 'retry', landingAttempts: 0, copyWaits: MAX_COPY_WAITS, delaySeconds: 60 },
    ],
    [
      'one copy wait too many fails, saying how many waits',
      { copyWaits: MAX_COPY_WAITS },
      pending,
      { kind: 'fail', code: 'CopiesPending', message: `copying files did not finish after ${MAX_COPY_WAITS} waits: 3 copies still pending` },
    ],
    [
      'the last landing attempt fails, saying how many attempts',
      { landingAttempts: MAX_LANDING_ATTEMPTS - 1 },
      transient,
      { kind: 'fail', code: 'ServerBusy', message: `copying files failed after ${MAX_LANDING_ATTEMPTS} attempts: The server is busy.` },
    ],
    [
      'copy waits do not use up attempts',
      { landingAttempts: MAX_LANDING_ATTEMPTS - 1 },
      pending,
      { kind: 'retry', landingAttempts: MAX_LANDING_ATTEMPTS - 1, copyWaits: 1, delaySeconds: 480 },
    ],
    [
      'a Retry-After longer than the backoff is the delay',
      {},
      { ...transient, retryAfterSeconds: 900 },
      { kind: 'retry', landingAttempts: 1, copyWaits: 0, delaySeconds: 900 },
    ],
    [
      'a Retry-After shorter than the backoff is not',
      {},
      { ...transient, retryAfterSeconds: 5 },
      { kind: 'retry', landingAttempts: 1, copyWaits: 0, delaySeconds: 60 },
    ],
  ])('%s', (_name, run, trouble, expected) => {
    expect(decideLandingRetry(run, trouble, { ...delays, maxDelaySeconds: 480 }, noJitter)).toEqual(expected);
  });

  it('jitter takes up to a fifth off the delay', () => {
    const decision = decideLandingRetry({}, transient, delays, () => 0.5);
    expect(decision).toMatchObject({ kind: 'retry', delaySeconds: 54 });
  });
});

describe('decideStartRetry', () => {
  const starting = (counts: { startFailures?: number; uncertainPosts?: number }) => aRun({ state: 'starting', ...counts });
  it.each([
    // counts before, the POST may have been taken, expected decision
    ['the first uncertain POST: the initial delay', {}, true, { kind: 'retry', backoffAttempt: 0, startFailures: 1, uncertainPosts: 1 }],
    [
      'the third failure in a row backs off twice',
      { startFailures: 2, uncertainPosts: 1 },
      false,
      { kind: 'retry', backoffAttempt: 2, startFailures: 3, uncertainPosts: 1 },
    ],
    [
      'a POST surely not taken is not uncertain',
      { startFailures: 1 },
      false,
      { kind: 'retry', backoffAttempt: 1, startFailures: 2, uncertainPosts: undefined },
    ],
    [
      'the last uncertain POST allowed is still retried',
      { startFailures: 3, uncertainPosts: MAX_UNCERTAIN_POSTS - 2 },
      true,
      { kind: 'retry', backoffAttempt: 3, startFailures: 4, uncertainPosts: MAX_UNCERTAIN_POSTS - 1 },
    ],
    [
      'one more uncertain POST fails the run',
      { startFailures: 4, uncertainPosts: MAX_UNCERTAIN_POSTS - 1 },
      true,
      { kind: 'fail', startFailures: 5, uncertainPosts: MAX_UNCERTAIN_POSTS },
    ],
    [
      'throttling after the uncertain POSTs ran out does not fail the run',
      { startFailures: 9, uncertainPosts: MAX_UNCERTAIN_POSTS - 1 },
      false,
      { kind: 'retry', backoffAttempt: 9, startFailures: 10, uncertainPosts: MAX_UNCERTAIN_POSTS - 1 },
    ],
  ])('%s', (_name, counts, mayHaveBeenTaken, expected) => {
    const decision = decideStartRetry(starting(counts), { mayHaveBeenTaken });
    const { startFailures, uncertainPosts, ...rest } = expected;
    expect(decision).toMatchObject(rest);
    expect([decision.run.startFailures, decision.run.uncertainPosts]).toEqual([startFailures, uncertainPosts]);
  });
});

describe('run limits', () => {
  it.each([
    ['restart', (n: number) => mayRestart({ restarts: n }), MAX_RESTARTS],
    ['revival', mayRevive, MAX_REVIVALS],
  ])('a %s is allowed below its limit and refused at it', (_name, allowed, limit) => {
    expect([allowed(0), allowed(limit - 1), allowed(limit), allowed(limit + 1)]).toEqual([true, true, false, false]);
  });

  it('a run without a restart count may restart', () => {
    expect(mayRestart({})).toBe(true);
  });

  it.each(Object.entries(BOUNDED_FAILURES))('%s is exhausted after %i tries in a row, not before', (code, limit) => {
    expect([boundedFailureExhausted(code, limit - 1), boundedFailureExhausted(code, limit)]).toEqual([false, true]);
  });

  it('a failure without a bound is never exhausted', () => {
    expect(boundedFailureExhausted('ServerBusy', 1000)).toBe(false);
  });
});

describe('earlyMessageDelaySeconds', () => {
  it('a second at first, then twice as long each return, up to a minute', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50].map(earlyMessageDelaySeconds)).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
  });
});

describe('isStalled', () => {
  const now = new Date('2026-11-04T12:00:00Z');
  const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();
  it.each([
    ['a step overdue by more than the grace', aRun({ state: 'polling', nextActionAt: ago(STALL_GRACE_SECONDS + 1) }), true],
    ['a step overdue by less than the grace', aRun({ state: 'polling', nextActionAt: ago(STALL_GRACE_SECONDS - 1) }), false],
    ['a row without nextActionAt, judged by its last update', aRun({ state: 'starting', updatedAt: ago(STALL_GRACE_SECONDS + 1) }), true],
    ['a finished run', aRun({ state: 'failed', nextActionAt: ago(STALL_GRACE_SECONDS * 10) }), false],
    [
      'a run held by a fresh landing claim',
      aRun({
        state: 'copying',
        nextActionAt: ago(STALL_GRACE_SECONDS + 1),
        landingClaimId: 'c',
        landingClaimedUntil: new Date(now.getTime() + 60_000).toISOString(),
      }),
      false,
    ],
  ])('%s', (_name, run, stalled) => {
    expect(isStalled(run, now)).toBe(stalled);
  });

  it.each([
    ['a file done a while ago: the check wait starts again from it', ago(CHECK_WAIT_SECONDS), false],
    ['a file done just over the check wait and the grace ago', ago(CHECK_WAIT_SECONDS + STALL_GRACE_SECONDS + 1), true],
    ['no file done yet', undefined, true],
  ])('a run checking its files, its own step overdue: %s', (_name, lastCheckProgressAt, stalled) => {
    const checking = aRun({ state: 'copying', nextActionAt: ago(3 * 3600) });
    expect(isStalled(checking, now, STALL_GRACE_SECONDS, lastCheckProgressAt)).toBe(stalled);
  });

  it('file progress never makes an overdue step less overdue than its own schedule says', () => {
    const dueLater = aRun({ state: 'copying', nextActionAt: ago(STALL_GRACE_SECONDS - 1) });
    expect(isStalled(dueLater, now, STALL_GRACE_SECONDS, ago(10 * 3600))).toBe(false);
  });
});

describe('decideCheckRound', () => {
  it.each([
    // the last plan, files done now, files pending, expected decision
    ['the first send', undefined, 0, 10, { kind: 'send', round: 1 }],
    ['sent once, no file finished since', { round: 1, doneFiles: 0 }, 0, 10, { kind: 'send', round: 2 }],
    ['a file finished since: the count starts again', { round: 2, doneFiles: 3 }, 4, 6, { kind: 'send', round: 1 }],
    ['a plan from before rounds were counted was round 1: this is round 2', { doneFiles: 2 }, 2, 8, { kind: 'send', round: 2 }],
    [`round ${MAX_CHECK_ROUNDS}, the last one allowed`, { round: MAX_CHECK_ROUNDS - 1, doneFiles: 5 }, 5, 5, { kind: 'send', round: MAX_CHECK_ROUNDS }],
    ['past the last round with files pending: stalled', { round: MAX_CHECK_ROUNDS, doneFiles: 5 }, 5, 5, { kind: 'stalled' }],
    [
      'past the last round with nothing pending: the run is finished, not stalled',
      { round: MAX_CHECK_ROUNDS, doneFiles: 10 },
      10,
      0,
      { kind: 'send', round: MAX_CHECK_ROUNDS + 1 },
    ],
  ] as const)('%s', (_name, previous, doneFiles, pending, expected) => {
    expect(decideCheckRound(previous, doneFiles, pending)).toEqual(expected);
  });
});
