/**
 * The steps that move a run along, shared by the timer (which starts runs) and the queue
 * handler (which advances them). Each step that continues later sends the next message
 * first and then saves the run with its new `seq`: a crash in between leaves a message the
 * ledger calls stale, and the unfinished delivery comes back and repeats the step.
 */
import { GraphRequestError, LedgerConflictError, asError } from '../errors';
import { noteTransientFailure, withoutLastError } from '../core/lastError';
import { nextPoll } from '../core/polling';
import { mayRestart } from '../core/policy';
import { redactSecrets } from '../core/redact';
import type { Run } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';

export type Step = (stored: StoredRun, deps: Deps, log: RunLogger) => Promise<StoredRun>;

/** POSTs the export and schedules the first poll. */
export const beginExport: Step = async (stored, deps, log) => {
  const { run } = stored;
  let operationUrl: string;
  try {
    ({ operationUrl } = await deps.graph.startExport({ currencyCode: run.currency, billingPeriod: run.billingPeriod, attributeSet: run.attributeSet }));
  } catch (thrown) {
    return handleGraphFailure(stored, thrown, 'starting the export', deps, log);
  }
  const polling: Run = {
    ...withoutLastError(run),
    state: 'polling',
    operationUrl,
    operationId: new URL(operationUrl).pathname.split('/').filter(Boolean).pop() ?? '',
    errorCode: undefined,
    errorMessage: undefined,
  };
  deps.telemetry.runChanged(log, polling);
  return schedulePoll({ ...stored, run: polling }, undefined, deps, log);
};

/**
 * Sends the message for the next poll, after the backoff or Graph's Retry-After, or fails the
 * run once its deadline has passed.
 */
export async function schedulePoll(stored: StoredRun, retryAfterSeconds: number | undefined, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const { run } = stored;
  const now = deps.now();
  const decision = nextPoll(
    { attempt: run.pollCount, startedAt: new Date(run.startedAt), now, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
    {
      initialDelaySeconds: deps.settings.pollInitialDelaySeconds,
      maxDelaySeconds: deps.settings.pollMaxDelaySeconds,
      deadlineSeconds: deps.settings.exportDeadlineSeconds,
    },
    deps.random,
  );
  if (decision.kind === 'giveUp') {
    // What it was waiting out is the likely cause; keep it.
    const lastError = run.lastErrorCode ? `; the last error was ${run.lastErrorCode}: ${run.lastErrorMessage ?? ''}` : '';
    return failRun(stored, 'DeadlineExceeded', `${decision.reason}${lastError}`, deps, log);
  }

  const next: Run = { ...run, seq: run.seq + 1, updatedAt: now.toISOString(), nextActionAt: new Date(now.getTime() + decision.delaySeconds * 1000).toISOString() };
  await deps.queue.send({ v: 1, runId: run.runId, seq: next.seq }, decision.delaySeconds);
  const saved = await deps.ledger.saveRun(next, stored.etag);
  logEvent(log, 'info', 'next poll scheduled', { ...runFields(next), delaySeconds: decision.delaySeconds, retryAfterSeconds });
  return saved;
}

/** Ends a run as failed with a reason that names the cause. */
export async function failRun(stored: StoredRun, code: string, message: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const now = deps.now().toISOString();
  const failed: Run = { ...stored.run, state: 'failed', errorCode: code, errorMessage: redactSecrets(message), updatedAt: now, finishedAt: now };
  const saved = await deps.ledger.saveRun(failed, stored.etag);
  deps.telemetry.runChanged(log, failed);
  return saved;
}


/**
 * Transient Graph trouble waits like a running export, recorded on the run as its last error;
 * trouble that is worth only a few tries (no token from the managed identity, a body that is not
 * JSON: BOUNDED_FAILURES in ../core/policy.ts) ends the run once it has been met that many times in a row. An
 * operation Graph no longer knows (404/410: operations are short-lived) starts the export again,
 * a bounded number of times; anything else ends the run.
 */
export async function handleGraphFailure(stored: StoredRun, thrown: unknown, doing: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (thrown instanceof GraphRequestError) {
    const status = thrown.details.status;
    if ((status === 404 || status === 410) && stored.run.operationUrl) {
      const restarts = stored.run.restarts ?? 0;
      if (!mayRestart(stored.run)) {
        return failRun(stored, 'OperationGone', `${doing}: the operation was gone (${status}) and the export was already restarted ${restarts} times: ${thrown.message}`, deps, log);
      }
      logEvent(log, 'warn', 'operation gone; starting the export again', { ...runFields(stored.run), status, restarts: restarts + 1 });
      const restarting: Run = { ...stored.run, state: 'starting', operationUrl: undefined, operationId: undefined, restarts: restarts + 1, updatedAt: deps.now().toISOString() };
      return beginExport({ ...stored, run: restarting }, deps, log);
    }
    if (thrown.transient) {
      const decision = noteTransientFailure(stored.run, { code: thrown.code, message: redactSecrets(`${doing}: ${thrown.message}`) }, deps.now());
      const noted: StoredRun = { ...stored, run: decision.run };
      if (decision.kind === 'giveUp') return failRun(noted, thrown.code, `${doing}: ${thrown.message} (met ${decision.tries} times in a row)`, deps, log);
      logEvent(log, 'warn', `transient failure ${doing}; will retry`, { ...runFields(stored.run), errorCode: thrown.code, error: thrown.message, tries: decision.run.lastErrorCount });
      return schedulePoll(noted, thrown.details.retryAfterSeconds, deps, log);
    }
    return failRun(stored, thrown.code, `${doing}: ${thrown.message}`, deps, log);
  }
  throw thrown;
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
