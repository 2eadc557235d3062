/**
 * The steps that move a run along, shared by the handlers in ../functions: the timer and the
 * HTTP API (which start runs), the queue handler (which advances them) and the sweeper. Each
 * state change is a transition of ../core/run.ts; each limit and delay is ../core/policy.ts and
 * ../core/polling.ts. A step that continues later sends the next message first and then saves
 * the run with its new `seq` (sendThenSave): a crash in between leaves a message the ledger calls
 * stale, and the unfinished delivery comes back and repeats the step. Telemetry follows the save.
 */
import { GraphRequestError, LedgerConflictError, asError } from '../errors';
import { noteTransientFailure, withoutLastError } from '../core/lastError';
import { exportRequestFor } from '../core/naming';
import { pollMessageFor } from '../core/pollMessage';
import { decideStartRetry, mayRestart, pollingPolicyOf } from '../core/policy';
import { nextPoll, queueDelaySeconds } from '../core/polling';
import { redactSecrets } from '../core/redact';
import { billingPeriodMovedReason, toFailed, toNoData, toPolling, toRestarting, toWaiting, type Run } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';

export type Step = (stored: StoredRun, deps: Deps, log: RunLogger) => Promise<StoredRun>;

/** POSTs the export and schedules the first poll. */
export const beginExport: Step = async (stored, deps, log) => {
  const { run } = stored;
  const periodMoved = billingPeriodMovedReason(run, deps.now());
  if (periodMoved) return failRun(stored, 'BillingPeriodMoved', periodMoved, deps, log);
  let operationUrl: string;
  try {
    ({ operationUrl } = await deps.graph.startExport(exportRequestFor(run)));
  } catch (thrown) {
    return handleGraphFailure(stored, thrown, 'starting the export', deps, log);
  }
  const saved = await schedulePoll({ ...stored, run: toPolling(run, operationUrl, deps.now()) }, undefined, deps, log);
  // A poll scheduled (not a run failed at its deadline, which reports itself).
  if (saved.run.state === 'polling') deps.telemetry.runChanged(log, saved.run);
  return saved;
};

/**
 * Sends the message for the run's next step, due in `delaySeconds` (held to what the queue can
 * take), then saves the run waiting for it: the message shape and the order, once.
 */
export async function sendThenSave(stored: StoredRun, run: Run, delaySeconds: number, deps: Deps): Promise<StoredRun> {
  const delay = queueDelaySeconds(delaySeconds);
  const waiting = toWaiting(run, delay, deps.now());
  await deps.queue.send(pollMessageFor(waiting), delay);
  return deps.ledger.saveRun(waiting, stored.etag);
}

/**
 * Sends the message for the next poll, after the backoff or Graph's Retry-After, or fails the
 * run once its deadline has passed.
 */
export async function schedulePoll(stored: StoredRun, retryAfterSeconds: number | undefined, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const { run } = stored;
  // A run still starting has no polls to count: its backoff follows its failed export POSTs.
  const notAccepted = run.state === 'starting';
  const attempt = notAccepted ? Math.max(0, (run.startFailures ?? 1) - 1) : run.pollCount;
  const decision = nextPoll(
    { attempt, notAccepted, startedAt: new Date(run.startedAt), now: deps.now(), ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
    pollingPolicyOf(deps.settings),
    deps.random,
  );
  if (decision.kind === 'giveUp') {
    // What it was waiting out is the likely cause; keep it.
    const lastError = run.lastErrorCode ? `; the last error was ${run.lastErrorCode}: ${run.lastErrorMessage ?? ''}` : '';
    return failRun(stored, 'DeadlineExceeded', `${decision.reason}${lastError}`, deps, log);
  }
  const saved = await sendThenSave(stored, run, decision.delaySeconds, deps);
  logEvent(log, 'info', 'next poll scheduled', { ...runFields(saved.run), delaySeconds: decision.delaySeconds, retryAfterSeconds });
  return saved;
}

/** Saves the run as it ended (conditional on the row as read), then reports the change. */
export async function endRun(stored: StoredRun, ended: Run, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const saved = await deps.ledger.saveRun(ended, stored.etag);
  deps.telemetry.runChanged(log, saved.run);
  return saved;
}

/** Ends a run as failed with a reason that names the cause. */
export async function failRun(stored: StoredRun, code: string, message: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  return endRun(stored, toFailed(stored.run, code, redactSecrets(message), deps.now()), deps, log);
}

/** Ends a run as noData: Graph had nothing to export (not a failure; Graph's reason is kept). */
export async function endWithNoData(stored: StoredRun, code: string, message: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  return endRun(stored, toNoData(stored.run, code, redactSecrets(message), deps.now()), deps, log);
}

/**
 * Transient Graph trouble waits like a running export, recorded on the run as its last error;
 * trouble that is worth only a few tries (no token from the managed identity, a body that is not
 * JSON: BOUNDED_FAILURES in ../core/policy.ts) ends the run once it has been met that many times
 * in a row. An operation Graph no longer knows (404/410: operations are short-lived) starts the
 * export again, a bounded number of times: the run goes back to `starting` and its next message,
 * sent at once, POSTs the export; anything else ends the run.
 */
export async function handleGraphFailure(stored: StoredRun, thrown: unknown, doing: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (!(thrown instanceof GraphRequestError)) throw thrown;
  const status = thrown.details.status;
  if ((status === 404 || status === 410) && stored.run.operationUrl) {
    if (!mayRestart(stored.run)) {
      return failRun(
        stored,
        'OperationGone',
        `${doing}: the operation was gone (${status}) and the export was already restarted ${stored.run.restarts ?? 0} times: ${thrown.message}`,
        deps,
        log,
      );
    }
    const restarting = toRestarting(stored.run, deps.now());
    logEvent(log, 'warn', 'operation gone; starting the export again', { ...runFields(stored.run), status, restarts: restarting.restarts });
    return sendThenSave(stored, restarting, 0, deps);
  }
  if (thrown.transient) {
    const decision = noteTransientFailure(stored.run, { code: thrown.code, message: redactSecrets(`${doing}: ${thrown.message}`) }, deps.now());
    let noted: StoredRun = { ...stored, run: decision.run };
    if (decision.kind === 'giveUp') return failRun(noted, thrown.code, `${doing}: ${thrown.message} (met ${decision.tries} times in a row)`, deps, log);
    if (noted.run.state === 'starting') {
      // The export POST itself failed: back off over the failures in a row, and stop once
      // repeating it has risked too many exports Graph may have started unseen.
      const start = decideStartRetry(noted.run, { mayHaveBeenTaken: thrown.details.mayHaveBeenTaken === true });
      noted = { ...noted, run: start.run };
      if (start.kind === 'fail') {
        return failRun(
          noted,
          thrown.code,
          `${doing}: ${thrown.message} (${start.uncertainPosts} export POSTs of unknown fate in this run; not repeated again, since each may have started an export at Graph)`,
          deps,
          log,
        );
      }
    }
    logEvent(log, 'warn', `transient failure ${doing}; will retry`, {
      ...runFields(stored.run),
      errorCode: thrown.code,
      error: thrown.message,
      tries: decision.run.lastErrorCount,
    });
    return schedulePoll(noted, thrown.details.retryAfterSeconds, deps, log);
  }
  return failRun(stored, thrown.code, `${doing}: ${thrown.message}`, deps, log);
}

/** The run once Graph answered: whatever it was waiting out is over. */
export function answered(stored: StoredRun): StoredRun {
  return { ...stored, run: withoutLastError(stored.run) };
}

/**
 * Runs a step, treating a ledger conflict as "another worker got there first": the step's
 * effects are idempotent, so this delivery simply stands down.
 */
export async function unlessSomeoneElseWon(step: () => Promise<unknown>, log: RunLogger, fields: Record<string, unknown>): Promise<void> {
  try {
    await step();
  } catch (thrown) {
    if (thrown instanceof LedgerConflictError) {
      logEvent(log, 'info', 'another worker advanced this run; standing down', { ...fields, detail: asError(thrown).message });
      return;
    }
    throw thrown;
  }
}

export function operationUrlOf(run: Run): string {
  if (!run.operationUrl) throw new Error(`run ${run.runId} is ${run.state} but has no operation URL`);
  return run.operationUrl;
}
