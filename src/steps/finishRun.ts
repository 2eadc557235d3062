/**
 * How a run whose files are checked ends: manifest.json written once, then the success recorded
 * over whatever happened to the row meanwhile. The last file's check (./checkFiles.ts) calls both.
 */
import { LedgerConflictError, asError } from '../errors';
import { FINAL_SAVE_ATTEMPTS, FINAL_SAVE_RETRY_MS } from '../core/policy';
import { describesSameFiles, type PublicManifest } from '../core/publicManifest';
import type { Run } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';

/**
 * The files and manifest.json have landed: the run succeeded, whatever happened to its row
 * meanwhile (a sweeper's write, another delivery that gave up, a transient ledger failure). On a
 * conflict the row is read again and the success recorded over it; a row already succeeded is
 * left as it is.
 */
export async function recordSucceeded(current: StoredRun, finished: (run: Run) => Run, deps: Deps, log: RunLogger): Promise<StoredRun> {
  let base = current;
  for (let attempt = 1; ; attempt++) {
    try {
      const saved = await deps.ledger.saveRun(finished(base.run), base.etag);
      deps.telemetry.runChanged(log, saved.run);
      return saved;
    } catch (thrown) {
      if (attempt >= FINAL_SAVE_ATTEMPTS) throw thrown;
      if (!(thrown instanceof LedgerConflictError)) await sleep(FINAL_SAVE_RETRY_MS * 2 ** (attempt - 1));
      let reread: StoredRun | undefined;
      try {
        reread = await deps.ledger.getRun(current.run.runId);
      } catch {
        continue;
      }
      if (!reread) throw thrown;
      if (reread.run.state === 'succeeded') return reread;
      logEvent(log, 'warn', 'the run changed while its files landed; recording it succeeded over the change', {
        ...runFields(reread.run),
        detail: asError(thrown).message,
      });
      base = reread;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/**
 * Writes manifest.json once per data version: a conditional create, so consumers get one
 * blob-created event. One already there for the same eTag and the same verified files (a
 * landing that died before its ledger save, a forced re-run of an unchanged month) is left as it
 * is; a different one (a landing that stopped half-way listing other files) is replaced.
 */
export async function writeManifestOnce(path: string, ours: PublicManifest, deps: Deps, log: RunLogger): Promise<void> {
  const result = await deps.destination.createJson(path, ours);
  if (result.created) return;
  if (describesSameFiles(result.existing, ours)) {
    logEvent(log, 'info', 'manifest.json for these verified files is already there; not writing it again', { runId: ours.runId, path });
    return;
  }
  await deps.destination.replaceJson(path, ours, result.etag);
}
