/**
 * Every limit of a run's life, and the landing's retry decision, in one place. Pure: the run's
 * counters, the trouble met, the delays configured and randomness are inputs. The poll delays
 * themselves are ./polling.ts (nextPoll); which failures are transient is ./transientStatus.ts
 * and the adapters that classify their own errors.
 */
import { backoffDelaySeconds, type PollingPolicy } from './polling';
import { isFinished, landingClaimedByOther, type Run } from './run';
import type { Settings } from './settings';

/**
 * How long a run may sit in `starting` before its first message resumes it: the start sends
 * that message before POSTing, so a crash between the POST and the ledger write is recovered.
 */
export const START_RECOVERY_DELAY_SECONDS = 300;
/** A step may run as long as the function timeout (host.json: 30 minutes) before it is overdue. */
export const STALL_GRACE_SECONDS = 30 * 60;

/**
 * How long one landing waits for its server-side copies to complete: the service copies
 * asynchronously, and a large file across accounts can take minutes. Below the 30-minute
 * function timeout; copies still pending then are a copy wait (MAX_COPY_WAITS).
 */
export const COPY_TIMEOUT_MS = 20 * 60_000;
/** Parallel copies per invocation: enough to hide per-request latency, far below account limits. */
export const COPY_CONCURRENCY = 16;
/** Landing attempts that met transient trouble (storage, Graph, a copy that did not verify) before the run fails. */
export const MAX_LANDING_ATTEMPTS = 5;
/** Landings that may end with copies still pending (each waits COPY_TIMEOUT_MS): about 4 hours. */
export const MAX_COPY_WAITS = 12;
/** Copies of one file whose source changed under them (412) within one landing before it tries later instead. */
export const SOURCE_CHANGE_RETRIES = 3;
/** Ledger saves tried before a landed run's success is left to the message's redelivery. */
export const FINAL_SAVE_ATTEMPTS = 4;
/** First pause between final-save attempts after a transient failure; doubled each time. */
export const FINAL_SAVE_RETRY_MS = 500;
/** How long a run waits for its files' checks before the sweeper may look at it (plus its grace). */
export const CHECK_WAIT_SECONDS = 30 * 60;
/**
 * File checks one process runs at once. A check is CPU work (gunzip, parse, Parquet: about 20,000
 * rows a second) in a thread of its own with a heap of its own (DATA_CHECK_HEAP_MB), so a second
 * one at once adds memory, not speed, on an instance's one or two cores: without this the host's
 * batchSize (8, and 4 more fetched) would run up to 12 side by side on one instance. Other
 * instances take the messages this one hands back.
 */
export const FILE_CHECKS_PER_PROCESS = 1;
/**
 * The old-generation heap of a data check's thread (../dataCheckThreads.ts). A check holds one
 * Parquet row group in the making (8,000 rows) and the line it reads, a few tens of MB; with the
 * heap capped, V8 collects instead of growing through a long file, and a file that would need
 * more fails its own check instead of the process.
 */
export const DATA_CHECK_HEAP_MB = 128;
/** A data check thread with no file for this long ends (a new one starts in about 0.2 s). */
export const DATA_CHECK_THREAD_IDLE_SECONDS = 60;
/**
 * How long a file check waits for one of them before it hands its message back for later (to
 * this instance or another). Its own deadline (25 minutes) starts once it runs: with this wait
 * it stays inside the 30-minute function timeout.
 */
export const FILE_CHECK_SLOT_WAIT_SECONDS = 60;
/** When a file check handed back for want of a slot is due again. */
export const FILE_CHECK_BUSY_DELAY_SECONDS = 15;
/**
 * Times the landing sends the same pending file checks with no file finishing in between (the
 * first send, then redeliveries and revivals) before the run fails: a check that never records a
 * result (its process runs out of memory or time on it every time) would otherwise go round for ever.
 */
export const MAX_CHECK_ROUNDS = 3;

/** What the landing does with the file checks still pending: send them (as round `round`), or give up. */
export type CheckRoundDecision = { readonly kind: 'send'; readonly round: number } | { readonly kind: 'stalled' };

/**
 * Counts the rounds of sending the pending file checks: a round in which no file finished since
 * the last one (the same `doneFiles`) is one more; progress starts the count again. Past
 * MAX_CHECK_ROUNDS with files still pending, the checks have stalled.
 */
export function decideCheckRound(
  previous: { readonly round?: number; readonly doneFiles?: number } | undefined,
  doneFiles: number,
  pending: number,
): CheckRoundDecision {
  const round = previous && doneFiles <= (previous.doneFiles ?? 0) ? (previous.round ?? 1) + 1 : 1;
  return pending > 0 && round > MAX_CHECK_ROUNDS ? { kind: 'stalled' } : { kind: 'send', round };
}

/** Transient storage failures one file's check meets before the run fails. */
export const MAX_CHECK_ATTEMPTS = 5;
/** How many times an export is started again after Graph forgot its operation (404/410). */
export const MAX_RESTARTS = 3;
/**
 * Export POSTs of unknown fate (a timeout, a reset, 500/502/504) a run may make before it fails:
 * each may have started an export at Graph that the run never hears of (an orphan), so they are
 * bounded, not repeated until the deadline.
 */
export const MAX_UNCERTAIN_POSTS = 5;
/** Times in a row the sweeper revives a run that made no progress before the run fails as Stalled. */
export const MAX_REVIVALS = 3;
/**
 * Failures retried only this many times in a row (the first try included) before the run fails:
 * worth a few tries, not hours (a managed identity that gives no token, an answer that is not JSON).
 */
export const BOUNDED_FAILURES: Readonly<Record<string, number>> = {
  IdentityUnavailable: 3,
  AuthenticationFailed: 3,
  InvalidJson: 3,
};

/**
 * What stopped a landing, as the landing step classified it. `stillCopying`: slow or in flux, not
 * failing (copies pending at the service, a copy pending onto a file from an earlier landing, a
 * source that kept changing under its copy); those get waits of their own, bounded separately, and
 * do not use up the landing's attempts.
 */
export interface LandingTrouble {
  readonly stillCopying: boolean;
  readonly code: string;
  readonly message: string;
  /** The service's own hint (Graph's Retry-After). */
  readonly retryAfterSeconds?: number;
}

export type LandingDecision =
  | { readonly kind: 'retry'; readonly landingAttempts: number; readonly copyWaits: number; readonly delaySeconds: number }
  | { readonly kind: 'fail'; readonly code: string; readonly message: string };

/**
 * Whether a landing that met `trouble` is tried again, and after how long: backoff over the
 * landing's attempts (from the poll delays), with the service's Retry-After as a floor.
 */
export function decideLandingRetry(
  run: Pick<Run, 'landingAttempts' | 'copyWaits'>,
  trouble: LandingTrouble,
  delays: { readonly initialDelaySeconds: number; readonly maxDelaySeconds: number },
  random: () => number,
): LandingDecision {
  const copyWaits = (run.copyWaits ?? 0) + (trouble.stillCopying ? 1 : 0);
  const landingAttempts = (run.landingAttempts ?? 0) + (trouble.stillCopying ? 0 : 1);
  if (copyWaits > MAX_COPY_WAITS)
    return { kind: 'fail', code: trouble.code, message: `copying files did not finish after ${MAX_COPY_WAITS} waits: ${trouble.message}` };
  if (landingAttempts >= MAX_LANDING_ATTEMPTS)
    return { kind: 'fail', code: trouble.code, message: `copying files failed after ${landingAttempts} attempts: ${trouble.message}` };
  const backoff = backoffDelaySeconds(Math.max(0, landingAttempts - 1), { ...delays, deadlineSeconds: Infinity }, random);
  return { kind: 'retry', landingAttempts, copyWaits, delaySeconds: Math.max(trouble.retryAfterSeconds ?? 0, backoff) };
}

export type FileCheckDecision =
  { readonly kind: 'retry'; readonly attempts: number; readonly delaySeconds: number } | { readonly kind: 'fail'; readonly message: string };

/**
 * Whether one file's check that met storage trouble is tried again, and after how long: trouble
 * that cannot pass fails the run at once, transient trouble after MAX_CHECK_ATTEMPTS; the waits
 * back off over the file's attempts (from the poll delays).
 */
export function decideFileCheckRetry(
  file: { readonly name: string; readonly attempts: number },
  trouble: { readonly transient: boolean; readonly message: string },
  delays: { readonly initialDelaySeconds: number; readonly maxDelaySeconds: number },
  random: () => number,
): FileCheckDecision {
  const attempts = file.attempts + 1;
  if (!trouble.transient || attempts >= MAX_CHECK_ATTEMPTS)
    return { kind: 'fail', message: `the data check of '${file.name}' failed${trouble.transient ? ` after ${attempts} attempts` : ''}: ${trouble.message}` };
  return { kind: 'retry', attempts, delaySeconds: backoffDelaySeconds(attempts - 1, { ...delays, deadlineSeconds: Infinity }, random) };
}

/** The poll delays and export deadline as configured: what every backoff of a run starts from. */
export function pollingPolicyOf(settings: Pick<Settings, 'pollInitialDelaySeconds' | 'pollMaxDelaySeconds' | 'exportDeadlineSeconds'>): PollingPolicy {
  return {
    initialDelaySeconds: settings.pollInitialDelaySeconds,
    maxDelaySeconds: settings.pollMaxDelaySeconds,
    deadlineSeconds: settings.exportDeadlineSeconds,
  };
}

/** Invoices one backfill may name: with both billed kinds, twice as many exports, started at BACKFILL_START_INTERVAL_MS. */
export const MAX_BACKFILL_INVOICES = 50;
/**
 * The pause between two export starts of a backfill: Graph throttles per tenant and documents no
 * rate for these exports, so a backfill starts at most two exports a second (100 in under a minute).
 */
export const BACKFILL_START_INTERVAL_MS = 500;

/** The longest an early message waits before it comes back again. */
export const MAX_EARLY_MESSAGE_DELAY_SECONDS = 60;

/**
 * How long a message that arrived before its step was saved waits before it comes back, after
 * `returns` such returns: a second at first (the save is usually a moment behind), then twice as
 * long each time up to a minute, so the messages of a landing that died between its sends and
 * its save (thousands, one per file) wait for its redelivery or the sweeper without flooding the queue.
 */
export function earlyMessageDelaySeconds(returns: number): number {
  return Math.min(2 ** returns, MAX_EARLY_MESSAGE_DELAY_SECONDS);
}

/** Whether an operation Graph forgot may be started again, or the run has restarted enough. */
export function mayRestart(run: Pick<Run, 'restarts'>): boolean {
  return (run.restarts ?? 0) < MAX_RESTARTS;
}

/** Whether the sweeper may revive a stalled run once more, given its revivals without progress. */
export function mayRevive(revivalsWithoutProgress: number): boolean {
  return revivalsWithoutProgress < MAX_REVIVALS;
}

/**
 * Stalled: unfinished, its next step long overdue, and not held by a landing still renewing its
 * claim. A run checking its files moves on only in the files' rows, not its own: each file done
 * (or retried) since `lastCheckProgressAt` gives it another CHECK_WAIT_SECONDS, as if the step
 * had been taken again, so a long check that keeps finishing files is never revived (a revival
 * would land it again and send its pending checks twice).
 */
export function isStalled(run: Run, now: Date, graceSeconds = STALL_GRACE_SECONDS, lastCheckProgressAt?: string): boolean {
  if (isFinished(run) || landingClaimedByOther(run, undefined, now)) return false;
  const stepDue = Date.parse(run.nextActionAt ?? run.updatedAt);
  const checksDue = lastCheckProgressAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(lastCheckProgressAt) + CHECK_WAIT_SECONDS * 1000;
  return now.getTime() - Math.max(stepDue, checksDue) > graceSeconds * 1000;
}

export type StartFailureDecision =
  | { readonly kind: 'retry'; readonly run: Run; readonly backoffAttempt: number }
  | { readonly kind: 'fail'; readonly run: Run; readonly uncertainPosts: number };

/**
 * An export POST failed transiently: the next one waits a backoff that grows with the failures
 * in a row (as polls do: attempt 0 is the initial delay), and a POST whose fate is unknown counts
 * towards MAX_UNCERTAIN_POSTS, after which the run fails instead of risking another orphan.
 */
export function decideStartRetry(run: Run, failure: { readonly mayHaveBeenTaken: boolean }): StartFailureDecision {
  const startFailures = (run.startFailures ?? 0) + 1;
  const uncertainPosts = (run.uncertainPosts ?? 0) + (failure.mayHaveBeenTaken ? 1 : 0);
  const counted: Run = { ...run, startFailures, ...(uncertainPosts > 0 ? { uncertainPosts } : {}) };
  if (failure.mayHaveBeenTaken && uncertainPosts >= MAX_UNCERTAIN_POSTS) return { kind: 'fail', run: counted, uncertainPosts };
  return { kind: 'retry', run: counted, backoffAttempt: startFailures - 1 };
}

/** Whether a bounded failure met `tries` times in a row has had its tries. */
export function boundedFailureExhausted(code: string, tries: number): boolean {
  const limit = BOUNDED_FAILURES[code];
  return limit !== undefined && tries >= limit;
}
