/**
 * The queue function. A message names a run and a step; the ledger says what the run is
 * doing, and this moves it one step: start the export, poll the operation, or land the files.
 * Expected trouble (Graph saying no, transient errors, bad manifests) ends in the ledger,
 * never in an exception; only a message that is not ours goes to the poison queue.
 */
import type { InvocationContext } from '@azure/functions';
import { InvalidMessageError } from '../errors';
import { interpretOperation } from '../core/operation';
import { parsePollMessage, type PollMessage } from '../core/pollMessage';
import { earlyMessageDelaySeconds } from '../core/policy';
import { isFinished, isNoData, polled } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { checkLandedFile } from '../steps/checkFiles';
import { landExport } from '../steps/landExport';
import { answered, beginExport, endWithNoData, failRun, handleGraphFailure, operationUrlOf, schedulePoll, unlessSomeoneElseWon } from '../steps/runSteps';

export async function pollExport(queueEntry: unknown, context: InvocationContext, deps: Deps): Promise<void> {
  let message: PollMessage;
  try {
    message = parsePollMessage(queueEntry);
  } catch (thrown) {
    if (!(thrown instanceof InvalidMessageError)) throw thrown;
    // The adapter stores it base64, as the host keeps poison messages, so an operator can move it back unchanged.
    await deps.queue.sendToPoison(typeof queueEntry === 'string' ? queueEntry : JSON.stringify(queueEntry));
    logEvent(context, 'error', 'message moved to the poison queue', {
      queue: deps.queue.name,
      reason: thrown.message,
      dequeueCount: context.triggerMetadata?.dequeueCount,
    });
    return;
  }

  await deps.ready();
  const stored = await deps.ledger.getRun(message.runId);
  if (!stored) {
    logEvent(context, 'warn', 'message for an unknown run dropped', { runId: message.runId, seq: message.seq });
    return;
  }
  const { run } = stored;
  if (!isFinished(run) && message.seq === run.seq + 1) {
    // Sent just before the save that makes its step current (messages first, then the run: a
    // restart's goes at once, a file check's as soon as the landing plans it): early, not stale.
    // It comes back in a moment. If that save never happens, the unfinished delivery repeats the
    // step and saves it, or the sweeper revives the run; either makes this message current or stale.
    const returns = message.early ?? 0;
    const delaySeconds = earlyMessageDelaySeconds(returns);
    await deps.queue.send({ ...message, early: returns + 1 }, delaySeconds);
    logEvent(context, 'info', `${message.file === undefined ? 'message' : 'file check'} arrived before its step was saved; again shortly`, {
      runId: run.runId,
      seq: message.seq,
      currentSeq: run.seq,
      ...(message.file === undefined ? {} : { file: message.file }),
      delaySeconds,
    });
    return;
  }
  if (isFinished(run) || message.seq !== run.seq) {
    logEvent(context, 'info', 'stale message dropped', { runId: run.runId, state: run.state, seq: message.seq, currentSeq: run.seq });
    return;
  }

  // A message naming a file is one of the data check's (../steps/checkFiles.ts).
  const step = message.file === undefined ? () => advance(stored, deps, context) : () => checkLandedFile(stored, message.file!, deps, context);
  await unlessSomeoneElseWon(step, context, runFields(run));
}

function advance(stored: StoredRun, deps: Deps, log: RunLogger): Promise<StoredRun> {
  switch (stored.run.state) {
    case 'starting':
      return beginExport(stored, deps, log);
    case 'polling':
      return pollOperation(stored, deps, log);
    case 'copying':
      return landExport(stored, deps, log);
    case 'succeeded':
    case 'failed':
    case 'noData':
    case 'noNewData':
      return Promise.resolve(stored);
  }
}

async function pollOperation(stored: StoredRun, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const asked: StoredRun = { ...stored, run: polled(stored.run) };
  let response;
  try {
    response = await deps.graph.get(operationUrlOf(stored.run));
  } catch (thrown) {
    return handleGraphFailure(asked, thrown, 'polling the export operation', deps, log);
  }

  const state = interpretOperation(response.body);
  switch (state.kind) {
    case 'pending':
      logEvent(log, 'info', `export ${state.status}`, runFields(asked.run));
      return schedulePoll(answered(asked), response.retryAfterSeconds, deps, log);
    case 'failed':
      if (isNoData(state.code)) return endWithNoData(asked, state.code, `Graph has no data for this export: ${state.message} (code ${state.code})`, deps, log);
      return failRun(asked, state.code, `Graph reported the export failed: ${state.message} (code ${state.code})`, deps, log);
    case 'invalid':
      return failRun(asked, 'InvalidOperation', state.reason, deps, log);
    case 'succeeded':
      logEvent(log, 'info', 'export succeeded at Graph', runFields(asked.run));
      return landExport(answered(asked), deps, log, state.manifest);
  }
}
