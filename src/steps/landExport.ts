/**
 * Landing a succeeded export: every listed file is copied server side into the run's folder and
 * verified (./landFiles.ts), and only then is `manifest.json` (../core/publicManifest.ts)
 * written, so consumers can trigger on it. A resumed landing reads the operation again, which
 * also brings a fresh SAS. What a failure means, and how often it is tried again, is the landing
 * policy (../core/policy.ts).
 */
import { randomUUID } from 'node:crypto';
import {
  COPIES_PENDING,
  CopyPendingElsewhereError,
  GraphRequestError,
  LedgerConflictError,
  ManifestError,
  OperationChangedError,
  StorageRequestError,
  VerificationError,
  asError,
} from '../errors';
import { interpretOperation, type ManifestLocation } from '../core/operation';
import { parseManifest, type Manifest } from '../core/manifest';
import { decideLandingRetry, pollingPolicyOf, type LandingTrouble } from '../core/policy';
import { isFinished, isSameDataAsLanded, landingClaimedByOther, toLandingRetry, toNoNewData, type Run } from '../core/run';
import { noteTransientFailure } from '../core/lastError';
import { destinationFolder } from '../core/naming';
import { pollMessageFor } from '../core/pollMessage';
import { redactSecrets } from '../core/redact';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { claimedRun, holdClaim } from './landingClaim';
import { resumeDataChecks, startDataChecks } from './checkFiles';
import { landAll, type LandAllResult } from './landFiles';
import { endRun, failRun, handleGraphFailure, operationUrlOf, sendThenSave } from './runSteps';

export async function landExport(stored: StoredRun, deps: Deps, log: RunLogger, location?: ManifestLocation): Promise<StoredRun> {
  // Another delivery of this step (a redelivery after a recycle, a revival, a second worker) is
  // landing the run: two landings at once could verify each other's half-done copies.
  const heldUntil = landingClaimedByOther(stored.run, undefined, deps.now());
  if (heldUntil) return standDown(stored, heldUntil, deps, log);

  // Its files landed and their checks went out (a revival, a redelivery): those checks resume.
  try {
    const resumed = await resumeDataChecks(stored, deps, log);
    if (resumed) return resumed;
  } catch (thrown) {
    if (thrown instanceof LedgerConflictError) throw thrown;
    return landingFailed(await stillThisStep(stored, deps), thrown, deps, log);
  }

  const claimId = randomUUID();
  let manifest: Manifest;
  try {
    manifest = await readManifest(stored.run, deps, location);
  } catch (thrown) {
    return landingFailed(stored, thrown, deps, log);
  }

  // The key landed this very data before: nothing to copy (../core/run.ts, toNoNewData).
  if (isSameDataAsLanded(stored.run, manifest.eTag, deps.destination.containerName)) return endWithNoNewData(stored, manifest, deps, log);

  const claimed = claimedRun(stored.run, manifest, claimId, deps);
  const claim = await holdClaim(stored, claimed, deps);
  const isNewVersion = (run: Run) => !(stored.run.state === 'copying' && stored.run.manifestETag === run.manifestETag);
  if (isNewVersion(claimed)) deps.telemetry.runChanged(log, claim.current().run);
  let landed: LandAllResult;
  try {
    landed = await landAll(claim.current().run, manifest, deps);
  } catch (thrown) {
    if (!(thrown instanceof StorageRequestError && thrown.sourceRefused)) return landingFailed(await claim.end(), thrown, deps, log);
    // A stale SAS (the first answer's may already be): read the operation again for a fresh
    // one and carry on; files already landed and verified are not copied again.
    logEvent(log, 'warn', 'source SAS refused; reading the operation again for a fresh one', { ...runFields(claim.current().run), error: thrown.message });
    try {
      const refreshed = await readManifest(claim.current().run, deps);
      manifest = refreshed;
      const { run: reclaimed } = await claim.update((run) => claimedRun(run, refreshed, claimId, deps));
      if (reclaimed.manifestETag !== stored.run.manifestETag) deps.telemetry.runChanged(log, reclaimed);
      landed = await landAll(claim.current().run, manifest, deps);
    } catch (again) {
      return landingFailed(await claim.end(), again, deps, log);
    }
  }
  if (landed.kind === 'copiesPending')
    return landingRetryOrFail(await claim.end(), { stillCopying: true, code: COPIES_PENDING, message: landed.message }, deps, log);
  // Proved still ours by one more conditional write, not taken on trust from the background
  // renewals (they may have failed, and the claim lapsed): on a conflict the landing stands down
  // (LedgerConflictError), on a ledger failure it stops and its message is delivered again, in
  // both cases before writing manifest.json over what another landing may be doing. The files
  // stay verified; the landing that resumes does not copy them again.
  let current: StoredRun;
  try {
    current = await claim.confirm();
  } catch (thrown) {
    if (!(thrown instanceof LedgerConflictError))
      logEvent(log, 'warn', 'could not prove this landing still holds the run; not writing manifest.json', {
        ...runFields(claim.current().run),
        error: asError(thrown).message,
      });
    throw thrown;
  }

  // Every copy verified: the data check of each file (./checkFiles.ts) writes manifest.json.
  try {
    return await startDataChecks(current, manifest, landed.landed, deps, log);
  } catch (thrown) {
    // Every file already checked, the finisher may have written the row (its claim, then that
    // claim given back with the failure): go on from the row as it is now.
    if (thrown instanceof LedgerConflictError) throw thrown;
    return landingFailed(await stillThisStep(current, deps), thrown, deps, log);
  }
}

/**
 * The run's row as it is now, when it is still at this landing's step with no one else's fresh
 * claim on it (the finisher of the data check may have written it since `as`); otherwise
 * LedgerConflictError: the run moved on (it succeeded, another landing took it), and this
 * delivery stands down instead of writing over it.
 */
async function stillThisStep(as: StoredRun, deps: Deps): Promise<StoredRun> {
  const now = await deps.ledger.getRun(as.run.runId);
  if (!now || isFinished(now.run) || now.run.seq !== as.run.seq || landingClaimedByOther(now.run, as.run.landingClaimId, deps.now()))
    throw new LedgerConflictError(
      `run ${as.run.runId} moved on while its landing step went wrong (now ${now?.run.state ?? 'gone'}, step ${now?.run.seq ?? '?'})`,
    );
  return now;
}

async function endWithNoNewData(stored: StoredRun, manifest: Manifest, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const found = {
    manifestETag: manifest.eTag,
    blobCount: manifest.blobCount,
    destinationContainer: deps.destination.containerName,
    destinationFolder: destinationFolder(stored.run, manifest.eTag),
  };
  return endRun(stored, toNoNewData(stored.run, found, deps.now()), deps, log);
}

/**
 * Leaves the run to the landing that holds it, writing nothing to its row (a write would make
 * that landing's final save conflict). The same step is sent again for when the claim runs out:
 * by then the holder has moved the run on (the message is stale and dropped), or it died and this
 * delivery takes over.
 */
async function standDown(stored: StoredRun, heldUntil: Date, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const waitSeconds = Math.max(1, (heldUntil.getTime() - deps.now().getTime()) / 1000);
  const delaySeconds = await deps.queue.send(pollMessageFor(stored.run), waitSeconds);
  logEvent(log, 'info', 'another landing holds this run; standing down until its claim runs out', {
    ...runFields(stored.run),
    claimedUntil: heldUntil.toISOString(),
    delaySeconds,
  });
  return stored;
}

/**
 * The manifest, from the success just seen or (resuming, or for a fresh SAS) by reading the
 * operation again; checked before anything is written.
 */
async function readManifest(run: Run, deps: Deps, location?: ManifestLocation): Promise<Manifest> {
  let manifestLocation = location;
  if (!manifestLocation) {
    const state = interpretOperation((await deps.graph.get(operationUrlOf(run))).body);
    if (state.kind !== 'succeeded')
      throw new OperationChangedError(`the operation no longer reports success (now ${state.kind}) while its files were being copied`);
    manifestLocation = state.manifest;
  }
  const body = manifestLocation.kind === 'inline' ? manifestLocation.manifest : (await deps.graph.get(manifestLocation.url)).body;
  return parseManifest(body, deps.settings.sourceHosts);
}

/**
 * Where a landing that went wrong ends. A bad manifest or an operation that stopped reporting
 * success fails the run; an operation Graph forgot restarts the export; trouble that can pass
 * (Graph or storage throttling, 5xx, timeouts, a SAS still refused after a refresh, a copy that
 * did not verify, copies slow or in flux) is tried again as the landing policy allows; anything
 * else fails the run with the service's reason. Whatever comes next, this landing's claim goes.
 */
async function landingFailed(stored: StoredRun, thrown: unknown, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (thrown instanceof ManifestError) return failRun(stored, 'InvalidManifest', thrown.message, deps, log);
  if (thrown instanceof OperationChangedError) return failRun(stored, thrown.code, thrown.message, deps, log);
  if (thrown instanceof GraphRequestError && !thrown.transient) return handleGraphFailure(stored, thrown, 'reading the manifest', deps, log);
  if (thrown instanceof StorageRequestError && !thrown.transient && thrown.status !== 412)
    return failRun(stored, thrown.code, `copying files failed: ${thrown.message}`, deps, log);
  const trouble = landingTrouble(thrown);
  if (!trouble) throw thrown;
  return landingRetryOrFail(stored, trouble, deps, log);
}

/** What a landing met, as the landing policy reads it; undefined for what is not a landing's trouble (a bug). */
function landingTrouble(thrown: unknown): LandingTrouble | undefined {
  // A copy pending onto a file from an earlier landing (409 PendingCopyOperation), a source that
  // kept changing under its copy (412): slow or in flux, not failing.
  if (thrown instanceof CopyPendingElsewhereError) return { stillCopying: true, code: thrown.code, message: thrown.message };
  if (thrown instanceof StorageRequestError) return { stillCopying: thrown.status === 412, code: thrown.code, message: thrown.message };
  if (thrown instanceof VerificationError) return { stillCopying: false, code: thrown.name, message: thrown.message };
  if (thrown instanceof GraphRequestError) {
    const { retryAfterSeconds } = thrown.details;
    return { stillCopying: false, code: thrown.code, message: thrown.message, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
  }
  return undefined;
}

/**
 * Sends the landing's next attempt, or fails the run once the landing policy says it is enough.
 * What it waits out is recorded on the run as its last error, as for every rescheduled failure,
 * so `status` says why a copying run waits.
 */
async function landingRetryOrFail(stored: StoredRun, trouble: LandingTrouble, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const noted = noteTransientFailure(stored.run, { code: trouble.code, message: redactSecrets(`copying files: ${trouble.message}`) }, deps.now());
  const withTrouble: StoredRun = { ...stored, run: noted.run };
  if (noted.kind === 'giveUp') return failRun(withTrouble, trouble.code, `copying files: ${trouble.message} (met ${noted.tries} times in a row)`, deps, log);
  const decision = decideLandingRetry(stored.run, trouble, pollingPolicyOf(deps.settings), deps.random);
  if (decision.kind === 'fail') return failRun(withTrouble, decision.code, decision.message, deps, log);
  const saved = await sendThenSave(stored, toLandingRetry(noted.run, decision), decision.delaySeconds, deps);
  logEvent(log, 'warn', 'copying hit a transient failure; will resume', {
    ...runFields(saved.run),
    error: trouble.message,
    attempt: decision.landingAttempts,
    delaySeconds: decision.delaySeconds,
  });
  return saved;
}
