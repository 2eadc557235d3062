/**
 * Nothing stuck: a run whose next step is long overdue lost its message (moved to the poison
 * queue after repeated failures, or never sent because a process died at the wrong moment).
 * The sweeper sends the run's current step again; the ledger's `seq` makes that harmless if the
 * original turns up after all. A run revived MAX_REVIVALS times in a row without progress (its
 * step and state unchanged since the last revival) fails, saying so; a run that advanced between
 * stalls starts counting again. A landing that holds a fresh claim on its run is never revived:
 * the sweeper's write would make that landing's final save conflict; nor is a run whose file
 * checks keep finishing (../core/policy.ts, isStalled).
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { STALL_GRACE_SECONDS, isStalled, mayRevive } from '../core/policy';
import { isCheckingFiles, revivalsWithoutProgress, toRevived, type Run } from '../core/run';
import type { Deps } from '../deps';
import { LedgerConflictError } from '../errors';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { failRun } from '../steps/runSteps';
import { pollMessageFor } from '../core/pollMessage';

/** Every 10 minutes: a stalled run is found within grace + 10 minutes. */
export const REVIVE_SCHEDULE = '0 */10 * * * *';

export interface Revival {
  readonly revived: readonly string[];
  readonly failed: readonly string[];
}

export async function reviveRunsOnSchedule(_timer: Timer, context: InvocationContext, deps: Deps): Promise<void> {
  const result = await reviveStalledRuns(deps, context);
  if (result.revived.length > 0 || result.failed.length > 0) logEvent(context, 'warn', 'stalled runs handled', { ...result });
}

export async function reviveStalledRuns(deps: Deps, log: RunLogger, graceSeconds = STALL_GRACE_SECONDS): Promise<Revival> {
  await deps.ready();
  const now = deps.now();
  const revived: string[] = [];
  const failed: string[] = [];
  for (const candidate of await deps.ledger.listRuns()) {
    if (!isStalled(candidate, now, graceSeconds)) continue;
    const stored = await deps.ledger.getRun(candidate.runId);
    if (!stored || !isStalled(stored.run, now, graceSeconds, await lastCheckProgress(stored.run, deps))) continue;
    try {
      const revivals = revivalsWithoutProgress(stored.run);
      if (!mayRevive(revivals)) {
        await failRun(
          stored,
          'Stalled',
          `no progress since ${stored.run.updatedAt} (${stored.run.state}) after ${revivals} revivals; see the poison queue for its messages`,
          deps,
          log,
        );
        failed.push(stored.run.runId);
        continue;
      }
      // Recorded first, conditional on the row as read: if the run moved meanwhile this conflicts
      // and nothing is sent; a crash between the two leaves a revival the next sweep repeats.
      const saved = await deps.ledger.saveRun(toRevived(stored.run, revivals + 1, now), stored.etag);
      await deps.queue.send(pollMessageFor(saved.run), 0);
      logEvent(log, 'warn', 'stalled run revived', { ...runFields(saved.run), revivals: revivals + 1 });
      revived.push(stored.run.runId);
    } catch (thrown) {
      // The run moved on while we looked: it was not stalled after all.
      if (!(thrown instanceof LedgerConflictError)) throw thrown;
    }
  }
  return { revived, failed };
}

/** A run's files' check progress, if it is checking them. */
function lastCheckProgress(run: Run, deps: Deps): Promise<string | undefined> {
  return isCheckingFiles(run) ? deps.fileChecks.lastProgressAt(run.runId, run.manifestETag) : Promise.resolve(undefined);
}
