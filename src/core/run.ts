/**
 * A run is one export of one key (a kind, its subject: month and currency, or an invoice, and an
 * attribute set), recorded in the ledger from start to end. The ledger, not the queue message, is
 * the source of truth: a message only says "look at run X, step `seq`", so a redelivered,
 * duplicated or stale message is harmless. Every kind goes through the same states:
 *
 *   starting ──POST export──▶ polling ──succeeded──▶ copying ──verified + manifest.json──▶ succeeded
 *       │                        │   │                  │
 *       │                        │   └─5000─▶ noData    └──same eTag as last landed──▶ noNewData
 *       └────────────────────────┴──────────────────────┴──▶ failed (with a reason)
 *
 * noData (Graph had nothing to export) and noNewData (the data landed before, unchanged) are
 * ends, not failures, as Cost Management exports report DataNotAvailable and NewDataNotAvailable.
 */
import type { AttributeSet, BillingPeriod } from './settings';
import { billingMonthFor, isBilled, type BilledExportKey, type BilledKind, type ExportKey, type UnbilledExportKey, type UnbilledKind } from './naming';

export type RunState = 'starting' | 'polling' | 'copying' | 'succeeded' | 'failed' | 'noData' | 'noNewData';
export type RunTrigger = 'timer' | 'cli' | 'http' | 'event' | 'backfill';

/** Every state a run can be in, in the order of a run's life. */
export const RUN_STATES: readonly RunState[] = ['starting', 'polling', 'copying', 'succeeded', 'failed', 'noData', 'noNewData'];
export const RUN_TRIGGERS: readonly RunTrigger[] = ['timer', 'cli', 'http', 'event', 'backfill'];

/** What every run has, whatever its kind. */
export interface RunDetails {
  readonly runId: string;
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
  /**
   * The eTag the key had last landed when this run started, and the container it landed in: the
   * same eTag again, for the same container, is noNewData.
   */
  readonly lastLandedETag?: string;
  readonly lastLandedContainer?: string;
  readonly partnerTenantId?: string;
  readonly blobCount?: number;
  readonly bytesCopied: number;
  /** Landing attempts that met transient storage trouble. */
  readonly landingAttempts?: number;
  /** Landings that ended with copies still pending at the service (slow, not failed). */
  readonly copyWaits?: number;
  /**
   * When the landing handed every landed file to its data check (ISO 8601): the run's files are
   * all there, and a later delivery of its landing step resumes the checks instead of landing again.
   */
  readonly checksSentAt?: string;
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
  /** Where the files go (or, for noNewData, already are), once known: the container and the folder in it (trailing slash). */
  readonly destinationContainer?: string;
  readonly destinationFolder?: string;
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

/** A run of unbilled data: its month, currency, and the period it was asked for. */
export type UnbilledRun = RunDetails & UnbilledExportKey & { readonly billingPeriod: BillingPeriod };
/** A run of billed data: its invoice. */
export type BilledRun = RunDetails & BilledExportKey;
export type Run = UnbilledRun | BilledRun;

interface StartCommon {
  readonly attributeSet: AttributeSet;
  readonly trigger: RunTrigger;
  /** Start even when this key already landed (an operator's deliberate re-run). */
  readonly force?: boolean;
}
export type UnbilledStartRequest = StartCommon & { readonly kind: UnbilledKind; readonly billingPeriod: BillingPeriod; readonly currency: string };
export type BilledStartRequest = StartCommon & { readonly kind: BilledKind; readonly invoiceId: string };
export type StartRequest = UnbilledStartRequest | BilledStartRequest;

/** The ledger key a start request exports: an unbilled period becomes its month as of `now`. */
export function keyForRequest(request: BilledStartRequest, now: Date): BilledExportKey;
export function keyForRequest(request: UnbilledStartRequest, now: Date): UnbilledExportKey;
export function keyForRequest(request: StartRequest, now: Date): ExportKey;
export function keyForRequest(request: StartRequest, now: Date): ExportKey {
  if (isBilled(request)) return { kind: request.kind, invoiceId: request.invoiceId, attributeSet: request.attributeSet } satisfies BilledExportKey;
  return { kind: request.kind, billingMonth: billingMonthFor(request.billingPeriod, now), currency: request.currency, attributeSet: request.attributeSet };
}

/**
 * Why an unbilled run must not POST its export now, or undefined. Graph's billingPeriod is
 * relative to the day Graph receives the POST (`current` is the month in progress, `last` the
 * one before), and the body cannot name a month; a run whose POST is retried, or restarted after
 * its operation was gone, on the far side of a month boundary would export another month than
 * its key and land it in its key's folder. Such a run ends instead, saying which period names
 * its month now.
 */
export function billingPeriodMovedReason(run: Run, now: Date): string | undefined {
  if (isBilled(run)) return undefined;
  const askedMonth = billingMonthFor(run.billingPeriod, now);
  if (askedMonth === run.billingMonth) return undefined;
  const last = billingMonthFor('last', now);
  const instead =
    last === run.billingMonth ? `; billing period 'last' exports ${run.billingMonth} now` : `; Graph no longer exports ${run.billingMonth} as unbilled data`;
  return (
    `the run exports ${run.billingMonth} (billing period '${run.billingPeriod}' when it started), but billing period '${run.billingPeriod}' ` +
    `is ${askedMonth} now (UTC), so the export was not POSTed${instead}`
  );
}

/** Where the run's subject is named in messages: `invoice G016907411` or `month 2026-10 (EUR)`. */
export function subjectOf(run: ExportKey): string {
  return isBilled(run) ? `invoice ${run.invoiceId}` : `month ${run.billingMonth} (${run.currency})`;
}

/** `{container}/{folder}` where the run's files land, once known. */
export function destinationOf(run: Pick<RunDetails, 'destinationContainer' | 'destinationFolder'>): string | undefined {
  return run.destinationContainer !== undefined && run.destinationFolder !== undefined ? `${run.destinationContainer}/${run.destinationFolder}` : undefined;
}

const FINISHED_STATES: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'noData', 'noNewData']);

/** Ended: nothing more will happen to the run (succeeded, failed, noData, noNewData). */
export function isFinished(run: Pick<Run, 'state'>): boolean {
  return FINISHED_STATES.has(run.state);
}

/** Ended without a failure: the run-failed alert ignores these. */
export function isFailure(run: Pick<Run, 'state'>): boolean {
  return run.state === 'failed';
}

/** The data of the key is in the destination as of this run: it landed, or it was there already. */
export function hasLanded(run: Pick<Run, 'state'>): boolean {
  return run.state === 'succeeded' || run.state === 'noNewData';
}

/** What the key had landed as of `run` (eTag and container): its own data if it landed, else what it started with. */
export function landedDataOf(
  run: Pick<Run, 'state' | 'manifestETag' | 'destinationContainer' | 'lastLandedETag' | 'lastLandedContainer'>,
): { readonly lastLandedETag: string; readonly lastLandedContainer: string } | undefined {
  if (hasLanded(run) && run.manifestETag !== undefined && run.destinationContainer !== undefined)
    return { lastLandedETag: run.manifestETag, lastLandedContainer: run.destinationContainer };
  return run.lastLandedETag !== undefined && run.lastLandedContainer !== undefined
    ? { lastLandedETag: run.lastLandedETag, lastLandedContainer: run.lastLandedContainer }
    : undefined;
}

/** Whether Graph's data for the run (eTag) is what the key already landed in `container`. */
export function isSameDataAsLanded(run: Pick<Run, 'lastLandedETag' | 'lastLandedContainer'>, eTag: string, container: string): boolean {
  return run.lastLandedETag === eTag && run.lastLandedContainer === container;
}

/** Graph's `failedOperation` code for "No data available": the export has nothing, not a failure. */
export const NO_DATA_CODE = '5000';

export function isNoData(code: string): boolean {
  return code.trim() === NO_DATA_CODE;
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
 * How long a key's claim may point at a run that is not recorded yet before it counts as debris
 * of a crash: a start claims the key, then records its run a moment later.
 */
export const CLAIM_GRACE_SECONDS = 120;

/**
 * Whether a new export may start for a key, given the key's latest run. One export at a time per
 * key; a key that landed is not exported again on a duplicate or past-due firing, a replayed event
 * or a backfill (unless forced); a run whose deadline has passed without an end (its messages were
 * lost) is superseded. An invoice lands once. For unbilled data, a closed month (`last`) lands
 * once, and the `current` period's data grows daily, so a landing blocks only the same UTC day.
 * A run that failed or found no data does not block: the next firing tries again.
 */
export function decideStart(latest: Run | undefined, request: StartRequest, now: Date, deadlineSeconds: number, keyClaimedAt?: string): StartDecision {
  const subject = isBilled(request) ? 'invoice' : 'month';
  if (!latest) {
    const claimAgeSeconds = keyClaimedAt ? (now.getTime() - Date.parse(keyClaimedAt)) / 1000 : Infinity;
    if (claimAgeSeconds < CLAIM_GRACE_SECONDS) return { kind: 'skip', reason: `another start for this ${subject} is recording its run` };
    return { kind: 'start' };
  }
  if (!isFinished(latest)) {
    const ageSeconds = (now.getTime() - Date.parse(latest.startedAt)) / 1000;
    if (ageSeconds <= deadlineSeconds) {
      return { kind: 'skip', reason: `run ${latest.runId} for this ${subject} is still ${latest.state}`, run: latest };
    }
    return { kind: 'start', supersedes: latest };
  }
  if (hasLanded(latest) && !request.force) {
    // A noNewData run copied nothing: it found the data that landed before, and points at it.
    const how = latest.state === 'noNewData' ? `found this ${subject}'s data unchanged; it landed at` : `already landed this ${subject} at`;
    const landed = () => ({ kind: 'skip', reason: `run ${latest.runId} ${how} ${destinationOf(latest) ?? '(unknown)'}`, run: latest }) as const;
    if (isBilled(request) || isBilled(latest)) return landed();
    // A closed month (`last`) lands once; a `current` export is a snapshot that a later `last`
    // export of the same month must still replace.
    const closedMonthLanded = request.billingPeriod === 'last' && latest.billingPeriod === 'last';
    const sameDay = latest.startedAt.slice(0, 10) === now.toISOString().slice(0, 10);
    if (closedMonthLanded || sameDay) return landed();
  }
  return { kind: 'start' };
}

/*
 * How a run moves between states: every change of state is one of these pure transitions, so
 * each sets and clears the same fields every time. A run that ends (succeeded, failed) holds no
 * landing claim and has no next action; a run that advances has nothing left to wait out.
 */

const NO_CLAIM = { landingClaimId: undefined, landingClaimedUntil: undefined } as const;
/** No transient failure to wait out (./lastError.ts records one). */
export const NO_LAST_ERROR = { lastErrorCode: undefined, lastErrorMessage: undefined, lastErrorCount: undefined, lastErrorAt: undefined } as const;
const NO_ERROR = { errorCode: undefined, errorMessage: undefined } as const;

/**
 * A new run of the request's key, recorded before anything is sent or POSTed. It remembers the
 * eTag the key last landed (from the key's latest run), so the same data again is noNewData.
 */
export function newRun(request: StartRequest, runId: string, now: Date, latest?: Run): Run {
  const landed = latest ? landedDataOf(latest) : undefined;
  const details = {
    runId,
    trigger: request.trigger,
    state: 'starting',
    seq: 0,
    pollCount: 0,
    bytesCopied: 0,
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
    ...landed,
  } as const;
  if (isBilled(request)) return { ...keyForRequest(request, now), ...details };
  return { ...keyForRequest(request, now), billingPeriod: request.billingPeriod, ...details };
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

/**
 * The landing verified every copy and hands its files to their data checks (one message each,
 * carrying the new `seq`): its claim goes, a finisher takes its own when every file is done.
 */
export function toCheckingFiles(run: Run, delaySeconds: number, now: Date): Run {
  return { ...toWaiting(run, delaySeconds, now), ...NO_CLAIM, checksSentAt: now.toISOString() };
}

/** Graph forgot the operation: the export is started again (one restart more). */
export function toRestarting(run: Run, now: Date): Run {
  return {
    ...run,
    ...NO_CLAIM,
    state: 'starting',
    operationUrl: undefined,
    operationId: undefined,
    restarts: (run.restarts ?? 0) + 1,
    updatedAt: now.toISOString(),
  };
}

/**
 * A landing claims the run and records where the files go. The claim is also the run's next
 * action time, so the sweeper leaves a landing alone while it holds.
 */
export function toCopying(
  run: Run,
  landing: {
    readonly manifestETag: string;
    readonly partnerTenantId: string;
    readonly blobCount: number;
    readonly destinationContainer: string;
    readonly destinationFolder: string;
  },
  claim: { readonly id: string; readonly until: Date },
  now: Date,
): Run {
  const until = claim.until.toISOString();
  return {
    ...run,
    ...landing,
    state: 'copying',
    landingClaimId: claim.id,
    landingClaimedUntil: until,
    nextActionAt: until,
    updatedAt: now.toISOString(),
    checksSentAt: undefined,
  };
}

/** The landing still works on the run: its claim (and the next action time) moves on. */
export function withClaimRenewed(run: Run, until: Date): Run {
  return { ...run, landingClaimedUntil: until.toISOString(), nextActionAt: until.toISOString() };
}

/** A delivery (a landing, or the data check's finisher) claims the run until `claim.until`. */
export function withClaim(run: Run, claim: { readonly id: string; readonly until: Date }): Run {
  return { ...withClaimRenewed(run, claim.until), landingClaimId: claim.id };
}

/** Its files all landed and went to their data checks, which have not all finished (toCheckingFiles). */
export function isCheckingFiles(run: Run): run is Run & { readonly manifestETag: string; readonly checksSentAt: string } {
  return run.state === 'copying' && run.checksSentAt !== undefined && run.manifestETag !== undefined;
}

/** A delivery's claim given back, unfinished: the next delivery of its step goes on at once. */
export function withoutClaim(run: Run): Run {
  return { ...run, ...NO_CLAIM };
}

/** The landing is over without finishing; a later landing resumes with these counts. */
export function toLandingRetry(run: Run, counts: { readonly landingAttempts: number; readonly copyWaits: number }): Run {
  return { ...run, ...NO_CLAIM, landingAttempts: counts.landingAttempts, copyWaits: counts.copyWaits };
}

/** The files and manifest.json landed. */
export function toSucceeded(
  run: Run,
  landed: {
    readonly manifestETag: string;
    readonly blobCount: number;
    readonly destinationContainer: string;
    readonly destinationFolder: string;
    readonly bytesCopied: number;
  },
  now: Date,
): Run {
  const at = now.toISOString();
  return {
    ...run,
    ...NO_CLAIM,
    ...NO_LAST_ERROR,
    ...NO_ERROR,
    ...landed,
    state: 'succeeded',
    nextActionAt: undefined,
    checksSentAt: undefined,
    updatedAt: at,
    finishedAt: at,
  };
}

/**
 * The run ends as failed with a reason that names the cause (already stripped of secrets). The
 * last error it was waiting out stays on the row: it is the likely cause.
 */
export function toFailed(run: Run, code: string, message: string, now: Date): Run {
  const at = now.toISOString();
  return { ...run, ...NO_CLAIM, state: 'failed', errorCode: code, errorMessage: message, nextActionAt: undefined, updatedAt: at, finishedAt: at };
}

/**
 * Graph had no data for the export (`5000 No data available`): the run ends, not as a failure;
 * Graph's code and message stay on the run to say why.
 */
export function toNoData(run: Run, code: string, message: string, now: Date): Run {
  const at = now.toISOString();
  return {
    ...run,
    ...NO_CLAIM,
    ...NO_LAST_ERROR,
    state: 'noData',
    errorCode: code,
    errorMessage: message,
    nextActionAt: undefined,
    updatedAt: at,
    finishedAt: at,
  };
}

/**
 * Graph's data has the eTag the key already landed: nothing is copied, and the run points at the
 * folder where that data is (the layout is deterministic).
 */
export function toNoNewData(
  run: Run,
  found: { readonly manifestETag: string; readonly blobCount: number; readonly destinationContainer: string; readonly destinationFolder: string },
  now: Date,
): Run {
  const at = now.toISOString();
  return { ...run, ...NO_CLAIM, ...NO_LAST_ERROR, ...NO_ERROR, ...found, state: 'noNewData', nextActionAt: undefined, updatedAt: at, finishedAt: at };
}

/** The sweeper re-sends the run's current step (same `seq`), counting the revival. */
export function toRevived(run: Run, revivals: number, now: Date): Run {
  return { ...run, revivals, revivedAtMark: progressMark(run), nextActionAt: now.toISOString() };
}
