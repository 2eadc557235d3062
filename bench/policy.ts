/**
 * What the polling policy allows, from src/core/polling.ts itself: the poll times the backoff
 * schedules when every poll happens exactly when it is due and takes no time. The first poll is
 * due one backoff after the POST (attempt 0); after the k-th poll answers "running", the next is
 * due max(Retry-After, backoff(k)) later, rounded up to whole seconds as the queue needs.
 * Jitter is random, so the answer is a distribution over many draws.
 */
import { nextPoll, type PollingPolicy } from '../src/core/polling';
import { median, quantile } from './stats';

export interface PolicyCase {
  /** Seconds from the POST until the operation reports success. */
  readonly operationSeconds: number;
  /** Retry-After on each pending answer; null when Graph sends none. */
  readonly retryAfterSeconds: number | null;
  readonly initialDelaySeconds: number;
  readonly maxDelaySeconds: number;
}

export interface PolicyOutcome {
  /** Operation GETs, the last of them the one that sees success. */
  readonly gets: number;
  /** Seconds between the operation completing and the GET that sees it. */
  readonly noticeDelaySeconds: number;
}

export interface PolicyDistribution {
  readonly gets: { readonly median: number; readonly min: number; readonly max: number };
  readonly noticeDelaySeconds: { readonly median: number; readonly p95: number; readonly max: number };
}

/** One schedule, with `random` drawing the jitter. */
export function idealSchedule(policyCase: PolicyCase, random: () => number): PolicyOutcome {
  const policy: PollingPolicy = {
    initialDelaySeconds: policyCase.initialDelaySeconds,
    maxDelaySeconds: policyCase.maxDelaySeconds,
    deadlineSeconds: 24 * 3600,
  };
  const startedAt = new Date(0);
  const wait = (attempt: number, now: number, retryAfterSeconds?: number): number => {
    const decision = nextPoll(
      { attempt, startedAt, now: new Date(now * 1000), ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
      policy,
      random,
    );
    if (decision.kind !== 'wait') throw new Error(decision.reason);
    return decision.delaySeconds;
  };
  let now = wait(0, 0);
  for (let gets = 1; ; gets++) {
    if (now >= policyCase.operationSeconds) return { gets, noticeDelaySeconds: now - policyCase.operationSeconds };
    now += wait(gets, now, policyCase.retryAfterSeconds ?? undefined);
  }
}

/** A random source that replays recorded draws (then 0.5, should the schedule need more). */
export function replay(draws: readonly number[]): () => number {
  let next = 0;
  return () => draws[next++] ?? 0.5;
}

/** The distribution over `draws` schedules with a seeded generator (same answer every run). */
export function policyDistribution(policyCase: PolicyCase, draws = 10_000): PolicyDistribution {
  let state = 0x2545f491;
  const random = (): number => {
    // xorshift32: enough for jitter draws.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const outcomes = Array.from({ length: draws }, () => idealSchedule(policyCase, random));
  const gets = outcomes.map((outcome) => outcome.gets);
  const delays = outcomes.map((outcome) => outcome.noticeDelaySeconds);
  return {
    gets: { median: median(gets), min: Math.min(...gets), max: Math.max(...gets) },
    noticeDelaySeconds: { median: median(delays), p95: quantile(delays, 0.95), max: Math.max(...delays) },
  };
}
