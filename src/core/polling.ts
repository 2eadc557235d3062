/**
 * When to poll a running export next. Exponential backoff with jitter, from the initial delay
 * up to the cap, with Graph's `Retry-After` as a floor (it says when asking again can help);
 * once the deadline has passed the run gives up. Pure: time and randomness are inputs.
 */
import { MAX_QUEUE_DELAY_SECONDS } from './settings';

export interface PollingPolicy {
  readonly initialDelaySeconds: number;
  readonly maxDelaySeconds: number;
  readonly deadlineSeconds: number;
}

export type NextPoll = { readonly kind: 'wait'; readonly delaySeconds: number } | { readonly kind: 'giveUp'; readonly reason: string };

/** Jitter takes up to this fraction off each delay, so many runs do not poll in lock step. */
const JITTER_FRACTION = 0.2;

/**
 * The backoff delay before poll number `attempt + 1`: initial × 2^attempt, capped, minus up to
 * 20 % jitter. `random` returns a number in [0, 1).
 */
export function backoffDelaySeconds(attempt: number, policy: PollingPolicy, random: () => number): number {
  const exponential = policy.initialDelaySeconds * 2 ** Math.min(attempt, 30);
  const capped = Math.min(policy.maxDelaySeconds, exponential);
  return capped * (1 - JITTER_FRACTION * random());
}

/**
 * `notAccepted`: the run is still trying to start its export (no POST got 202 yet), so at the
 * deadline it says so rather than that an export "did not finish".
 */
export function nextPoll(
  input: { readonly attempt: number; readonly startedAt: Date; readonly now: Date; readonly retryAfterSeconds?: number; readonly notAccepted?: boolean },
  policy: PollingPolicy,
  random: () => number,
): NextPoll {
  const elapsedSeconds = (input.now.getTime() - input.startedAt.getTime()) / 1000;
  const remainingSeconds = policy.deadlineSeconds - elapsedSeconds;
  if (remainingSeconds <= 0) {
    const what = input.notAccepted ? 'the export was never accepted (no export POST was answered 202 Accepted)' : 'the export did not finish';
    return {
      kind: 'giveUp',
      reason: `${what} within EXPORT_DEADLINE_SECONDS (${policy.deadlineSeconds} s); gave up after ${Math.round(elapsedSeconds)} s`,
    };
  }
  // The backoff never overshoots the deadline, so the last poll happens right at it;
  // Retry-After is honoured even when it reaches past the deadline.
  const backoff = Math.min(backoffDelaySeconds(input.attempt, policy, random), remainingSeconds);
  const delay = Math.max(input.retryAfterSeconds ?? 0, backoff);
  return { kind: 'wait', delaySeconds: queueDelaySeconds(Math.max(1, delay)) };
}

/**
 * A delay as a queue can take it: whole seconds, from 0 up to the queue's 7-day limit on a
 * message's visibility timeout (a longer one is refused with 400 OutOfRangeQueryParameterValue).
 */
export function queueDelaySeconds(delaySeconds: number): number {
  if (!Number.isFinite(delaySeconds)) return delaySeconds > 0 ? MAX_QUEUE_DELAY_SECONDS : 0;
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)));
}

/**
 * `Retry-After` is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns whole
 * seconds from `now`, or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, Math.ceil((date - now.getTime()) / 1000));
}
