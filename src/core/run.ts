/**
 * A run is one export of one key (month, currency, attribute set), recorded in the ledger from
 * start to end. The ledger, not the queue message, is the source of truth: a message only says
 * "look at run X, step `seq`", so a redelivered, duplicated or stale message is harmless.
 *
 *   starting ──POST export──▶ polling ──succeeded──▶ copying ──verified + manifest.json──▶ succeeded
 *       │                        │                      │
 *       └────────────────────────┴──────────────────────┴──▶ failed (with a reason)
 */
import type { AttributeSet, BillingPeriod } from './settings';
import type { ExportKey } from './naming';

export type RunState = 'starting' | 'polling' | 'copying' | 'succeeded' | 'failed';
export type RunTrigger = 'timer' | 'cli' | 'http';

export interface Run extends ExportKey {
  readonly runId: string;
  readonly billingPeriod: BillingPeriod;
  readonly trigger: RunTrigger;
  readonly state: RunState;
  /** Which queue message may advance the run; every step that enqueues increments it. */
  readonly seq: number;
  readonly pollCount: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
  /** The operation's URL: no secret in it, safe to store. */
  readonly operationUrl?: string;
  readonly operationId?: string;
  readonly manifestETag?: string;
  readonly partnerTenantId?: string;
  readonly blobCount?: number;
  readonly bytesCopied: number;
  /** Landing attempts that met transient storage trouble. */
  readonly landingAttempts?: number;
  /** Landings that ended with copies still pending at the service (slow, not failed). */
  readonly copyWaits?: number;
  /** Exports started again because Graph forgot the operation (404/410). */
  readonly restarts?: number;
  /** Export POSTs in a row that failed transiently: the backoff before the next (cleared once Graph accepts one). */
  readonly startFailures?: number;
  /** Export POSTs of unknown fate (timeout, reset, 500/502/504): each may have started an export at Graph the run never learned of. */
  readonly uncertainPosts?: number;
  /** When the next message is due: the sweeper revives a run only once this has long passed. */
  readonly nextActionAt?: string;
  /** Times in a row the sweeper re-sent a stalled run's message without the run advancing since. */
  readonly revivals?: number;
  /** `progressMark` of the run when the sweeper last revived it: a different mark now means progress. */
  readonly revivedAtMark?: string;
  /**
   * The landing working on the run (a random id per landing) and until when its claim holds:
   * another delivery of the same step stands down while the claim is fresh, and takes over a stale one.
   */
  readonly landingClaimId?: string;
  readonly landingClaimedUntil?: string;
  /** `{container}/{folder}/` once known. */
  readonly destination?: string;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  /** The transient failure the run is waiting out (src/core/lastError.ts); cleared when it advances. */
  readonly lastErrorCode?: string;
  readonly lastErrorMessage?: string;
  /** How many times in a row that failure was met. */
  readonly lastErrorCount?: number;
  readonly lastErrorAt?: string;
  /** Graph answers that were not JSON (a proxy can cut one short); each is retried, a few in a row at most. */
  readonly malformedAnswers?: number;
}

export interface StartRequest {
  readonly billingPeriod: BillingPeriod;
  readonly currency: string;
  readonly attributeSet: AttributeSet;
  readonly trigger: RunTrigger;
  /** Start even when this month already landed (an operator's deliberate re-run). */
  readonly force?: boolean;
}

export function isFinished(run: Pick<Run, 'state'>): boolean {
  return run.state === 'succeeded' || run.state === 'failed';
}

/**
 * How long a landing's claim holds unless renewed; the landing renews it while it runs, so a
 * claim that ran out belongs to a landing that died (an instance recycled, a process killed),
 * and another delivery may take over within this long.
 */
export const LANDING_CLAIM_SECONDS = 120;

/** When another landing's claim on the run is still fresh (undefined: none is, the run is free to land). */
export function landingClaimedByOther(run: Pick<Run, 'landingClaimId' | 'landingClaimedUntil'>, claimId: string | undefined, now: Date): Date | undefined {
  if (!run.landingClaimId || run.landingClaimId === claimId || !run.landingClaimedUntil) return undefined;
  const until = new Date(run.landingClaimedUntil);
  return until.getTime() > now.getTime() ? until : undefined;
}

/** Where a run stands: it has advanced when this changes (a new step, or a new state). */
export function progressMark(run: Pick<Run, 'state' | 'seq'>): string {
  return `${run.state}:${run.seq}`;
}

/** Revivals so far that met no progress: the count starts again once the run has advanced. */
export function revivalsWithoutProgress(run: Pick<Run, 'state' | 'seq' | 'revivals' | 'revivedAtMark'>): number {
  if (!run.revivals) return 0;
  // A row from before revivedAtMark existed keeps its count.
  if (run.revivedAtMark === undefined) return run.revivals;
  return run.revivedAtMark === progressMark(run) ? run.revivals : 0;
}

export type StartDecision =
  | { readonly kind: 'start'; readonly supersedes?: Run }
  /** `run` is the run in the way; absent while another start is still recording it. */
  | { readonly kind: 'skip'; readonly reason: string; readonly run?: Run };

/**
 * Whether a new export may start for a key, given the key's latest run. One export at a time per
 * key; a month that landed is not exported again on a duplicate or past-due firing; a run whose
 * deadline has passed without an end (its messages were lost) is superseded.
 * For the `current` period the data grows daily, so a success blocks only the same UTC day.
 * A run that failed does not block: the next firing retries the month.
 */
/**
 * How long a key's claim may point at a run that is not recorded yet before it counts as debris
 * of a crash: a start claims the key, then records its run a moment later.
 */
export const CLAIM_GRACE_SECONDS = 120;

export function decideStart(
  latest: Run | undefined,
  request: StartRequest,
  now: Date,
  deadlineSeconds: number,
  keyClaimedAt?: string,
): StartDecision {
  if (!latest) {
    const claimAgeSeconds = keyClaimedAt ? (now.getTime() - Date.parse(keyClaimedAt)) / 1000 : Infinity;
    if (claimAgeSeconds < CLAIM_GRACE_SECONDS) return { kind: 'skip', reason: 'another start for this month is recording its run' };
    return { kind: 'start' };
  }
  if (!isFinished(latest)) {
    const ageSeconds = (now.getTime() - Date.parse(latest.startedAt)) / 1000;
    if (ageSeconds <= deadlineSeconds) {
      return { kind: 'skip', reason: `run ${latest.runId} for this month is still ${latest.state}`, run: latest };
    }
    return { kind: 'start', supersedes: latest };
  }
  if (latest.state === 'succeeded' && !request.force) {
    // A closed month (`last`) lands once; a `current` export is a snapshot that a later `last`
    // export of the same month must still replace.
    const closedMonthLanded = request.billingPeriod === 'last' && latest.billingPeriod === 'last';
    const sameDay = latest.startedAt.slice(0, 10) === now.toISOString().slice(0, 10);
    if (closedMonthLanded || sameDay) {
      return { kind: 'skip', reason: `run ${latest.runId} already landed this month at ${latest.destination ?? '(unknown)'}`, run: latest };
    }
  }
  return { kind: 'start' };
}

/*
 * How a run moves between states: every change of state is one of these pure transitions, so
 * each sets and clears the same fields every time. A run that ends (succeeded, failed) holds no
 * landing claim and has no next action; a run that advances has nothing left to wait out.
 */

const NO_CLAIM = { landingClaimId: undefined, landingClaimedUntil: undefined } as const;
const NO_LAST_ERROR = { lastErrorCode: undefined, lastErrorMessage: undefined, lastErrorCount: undefined, lastErrorAt: undefined } as const;
const NO_ERROR = { errorCode: undefined, errorMessage: undefined } as const;

/** A new run of `key`, recorded before anything is sent or POSTed. */
export function newRun(key: ExportKey, request: Pick<StartRequest, 'billingPeriod' | 'trigger'>, runId: string, now: Date): Run {
  return {
    ...key,
    runId,
    billingPeriod: request.billingPeriod,
    trigger: request.trigger,
    state: 'starting',
    seq: 0,
    pollCount: 0,
    bytesCopied: 0,
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** Graph accepted the export: the run polls its operation (the operation's id is the URL's last segment). */
export function toPolling(run: Run, operationUrl: string, now: Date): Run {
  return {
    ...run,
    ...NO_LAST_ERROR,
    ...NO_ERROR,
    state: 'polling',
    startFailures: undefined,
    operationUrl,
    operationId: new URL(operationUrl).pathname.split('/').filter(Boolean).pop() ?? '',
    updatedAt: now.toISOString(),
  };
}

/** One more poll of the operation. */
export function polled(run: Run): Run {
  return { ...run, pollCount: run.pollCount + 1 };
}

/** The run's next step, due in `delaySeconds`: the message for it carries the new `seq`. */
export function toWaiting(run: Run, delaySeconds: number, now: Date): Run {
  return { ...run, seq: run.seq + 1, updatedAt: now.toISOString(), nextActionAt: new Date(now.getTime() + delaySeconds * 1000).toISOString() };
}

/** Graph forgot the operation: the export is started again (one restart more). */
export function toRestarting(run: Run, now: Date): Run {
  return { ...run, ...NO_CLAIM, state: 'starting', operationUrl: undefined, operationId: undefined, restarts: (run.restarts ?? 0) + 1, updatedAt: now.toISOString() };
}

/**
 * A landing claims the run and records where the files go. The claim is also the run's next
 * action time, so the sweeper leaves a landing alone while it holds.
 */
export function toCopying(
  run: Run,
  landing: { readonly manifestETag: string; readonly partnerTenantId: string; readonly blobCount: number; readonly destination: string },
  claim: { readonly id: string; readonly until: Date },
  now: Date,
): Run {
  const until = claim.until.toISOString();
  return { ...run, ...landing, state: 'copying', landingClaimId: claim.id, landingClaimedUntil: until, nextActionAt: until, updatedAt: now.toISOString() };
}

/** The landing still works on the run: its claim (and the next action time) moves on. */
export function withClaimRenewed(run: Run, until: Date): Run {
  return { ...run, landingClaimedUntil: until.toISOString(), nextActionAt: until.toISOString() };
}

/** The landing is over without finishing; a later landing resumes with these counts. */
export function toLandingRetry(run: Run, counts: { readonly landingAttempts: number; readonly copyWaits: number }): Run {
  return { ...run, ...NO_CLAIM, landingAttempts: counts.landingAttempts, copyWaits: counts.copyWaits };
}

/** The files and manifest.json landed. */
export function toSucceeded(
  run: Run,
  landed: { readonly manifestETag: string; readonly blobCount: number; readonly destination: string; readonly bytesCopied: number },
  now: Date,
): Run {
  const at = now.toISOString();
  return { ...run, ...NO_CLAIM, ...NO_LAST_ERROR, ...NO_ERROR, ...landed, state: 'succeeded', nextActionAt: undefined, updatedAt: at, finishedAt: at };
}

/**
 * The run ends as failed with a reason that names the cause (already stripped of secrets). The
 * last error it was waiting out stays on the row: it is the likely cause.
 */
export function toFailed(run: Run, code: string, message: string, now: Date): Run {
  const at = now.toISOString();
  return { ...run, ...NO_CLAIM, state: 'failed', errorCode: code, errorMessage: message, nextActionAt: undefined, updatedAt: at, finishedAt: at };
}

/** The sweeper re-sends the run's current step (same `seq`), counting the revival. */
export function toRevived(run: Run, revivals: number, now: Date): Run {
  return { ...run, revivals, revivedAtMark: progressMark(run), nextActionAt: now.toISOString() };
}
