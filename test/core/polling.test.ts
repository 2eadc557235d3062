import { describe, expect, it } from 'vitest';
import { backoffDelaySeconds, nextPoll, parseRetryAfter } from '../../src/core/polling';

const policy = { initialDelaySeconds: 60, maxDelaySeconds: 600, deadlineSeconds: 6 * 3600 };
const noJitter = () => 0;
const fullJitter = () => 0.999999;
const startedAt = new Date('2026-11-03T06:00:00Z');
const at = (seconds: number) => new Date(startedAt.getTime() + seconds * 1000);

describe('backoffDelaySeconds', () => {
  it.each([
    [0, 60],
    [1, 120],
    [2, 240],
    [3, 480],
    [4, 600],
    [50, 600],
  ])('doubles from the initial delay and caps it (attempt %i → %i s)', (attempt, expected) => {
    expect(backoffDelaySeconds(attempt, policy, noJitter)).toBe(expected);
  });

  it('takes at most 20 % off with jitter, never exceeding the cap', () => {
    expect(backoffDelaySeconds(4, policy, fullJitter)).toBeCloseTo(480, 3);
    expect(backoffDelaySeconds(0, policy, () => 0.5)).toBe(54);
  });
});

describe('nextPoll', () => {
  it('waits the backoff delay when Graph gives no Retry-After', () => {
    expect(nextPoll({ attempt: 1, startedAt, now: at(60) }, policy, noJitter)).toEqual({ kind: 'wait', delaySeconds: 120 });
  });

  it('honours a Retry-After longer than the backoff', () => {
    expect(nextPoll({ attempt: 0, startedAt, now: at(0), retryAfterSeconds: 900 }, policy, noJitter)).toEqual({ kind: 'wait', delaySeconds: 900 });
  });

  it('keeps the backoff when Retry-After is shorter', () => {
    expect(nextPoll({ attempt: 2, startedAt, now: at(0), retryAfterSeconds: 5 }, policy, noJitter)).toEqual({ kind: 'wait', delaySeconds: 240 });
  });

  it('shortens the last backoff so the final poll lands on the deadline', () => {
    expect(nextPoll({ attempt: 9, startedAt, now: at(policy.deadlineSeconds - 30) }, policy, noJitter)).toEqual({ kind: 'wait', delaySeconds: 30 });
  });

  it('gives up once the deadline has passed, saying which setting', () => {
    const decision = nextPoll({ attempt: 40, startedAt, now: at(policy.deadlineSeconds) }, policy, noJitter);
    expect(decision).toEqual({ kind: 'giveUp', reason: 'the export did not finish within EXPORT_DEADLINE_SECONDS (21600 s); gave up after 21600 s' });
  });

  it('says an export that was never accepted was never accepted, not that it did not finish', () => {
    const decision = nextPoll({ attempt: 3, startedAt, now: at(policy.deadlineSeconds + 5), notAccepted: true }, policy, noJitter);
    expect(decision).toEqual({
      kind: 'giveUp',
      reason: 'the export was never accepted (no export POST was answered 202 Accepted) within EXPORT_DEADLINE_SECONDS (21600 s); gave up after 21605 s',
    });
  });

  it('never asks the queue for more than 7 days, nor less than a second', () => {
    expect(
      nextPoll({ attempt: 0, startedAt, now: at(0), retryAfterSeconds: 30 * 24 * 3600 }, { ...policy, deadlineSeconds: 60 * 24 * 3600 }, noJitter),
    ).toEqual({
      kind: 'wait',
      delaySeconds: 7 * 24 * 3600,
    });
    expect(nextPoll({ attempt: 0, startedAt, now: at(0) }, { initialDelaySeconds: 1, maxDelaySeconds: 1, deadlineSeconds: 10 }, fullJitter)).toEqual({
      kind: 'wait',
      delaySeconds: 1,
    });
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2026-11-03T06:00:00Z');
  it.each([
    ['120', 120],
    [' 0 ', 0],
    ['Tue, 03 Nov 2026 06:01:30 GMT', 90],
    ['Tue, 03 Nov 2026 05:59:00 GMT', 0],
    [null, undefined],
    ['', undefined],
    ['soon', undefined],
    ['-5', undefined],
    ['1.5', undefined],
  ])('reads %j as %j seconds', (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });
});
