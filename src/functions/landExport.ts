/**
 * Landing a succeeded export: every listed file is copied server side into the run's folder
 * and verified (length, and MD5 where the source has one), and only then is `manifest.json`
 * written, so consumers can trigger on it. Copies are idempotent: a file already copied from
 * the same source version and verified is not copied again when a landing resumes. A resumed
 * landing reads the operation again, which also brings a fresh SAS.
 */
import { randomUUID } from 'node:crypto';
import { COPIES_PENDING, CopyPendingElsewhereError, GraphRequestError, LedgerConflictError, ManifestError, StorageRequestError, VerificationError, asError } from '../errors';
import { interpretOperation, type ManifestLocation } from '../core/operation';
import { parseManifest, sourceBlobUrl, type Manifest, type ManifestBlob } from '../core/manifest';
import { MANIFEST_FILE_NAME, destinationFolder } from '../core/naming';
import { decideLandingRetry, FINAL_SAVE_ATTEMPTS, FINAL_SAVE_RETRY_MS, SOURCE_CHANGE_RETRIES, type LandingTrouble } from '../core/policy';
import { LANDING_CLAIM_SECONDS, landingClaimedByOther, type Run } from '../core/run';
import type { BlobFacts } from '../adapters/destination';
import type { StoredRun } from '../adapters/ledger';
import { mapWithConcurrency } from '../concurrency';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { failRun, handleGraphFailure, operationUrlOf } from './runSteps';

/** Parallel copies per invocation: enough to hide per-request latency, far below account limits. */
export const COPY_CONCURRENCY = 16;
/** Our manifest.json format. */
export const MANIFEST_FORMAT = 'partner-billing-export/1';

export async function landExport(stored: StoredRun, deps: Deps, log: RunLogger, location?: ManifestLocation): Promise<StoredRun> {
  // Another delivery of this step (a redelivery after a recycle, a revival, a second worker) is
  // landing the run: two landings at once could verify each other's half-done copies.
  const heldUntil = landingClaimedByOther(stored.run, undefined, deps.now());
  if (heldUntil) return standDown(stored, heldUntil, deps, log);

  const claimId = randomUUID();
  let manifest: Manifest;
  try {
    manifest = await readManifest(stored.run, deps, location);
  } catch (thrown) {
    return landingFailed(stored, thrown, deps, log);
  }

  // Conditional on the row as read: of two deliveries that got this far, one claims, the other
  // gets LedgerConflictError and stands down. The claim is renewed while the landing runs.
  const claim = holdClaim(await claimLanding(stored, manifest, claimId, deps, log), deps);
  let landed: LandAllResult;
  try {
    landed = await landAll(claim.current().run, manifest, deps);
  } catch (thrown) {
    if (!sasMayHaveExpired(thrown)) return landingFailed(await claim.end(), thrown, deps, log);
    // A stale SAS (the first answer's may already be): read the operation again for a fresh
    // one and carry on; files already landed and verified are not copied again.
    logEvent(log, 'warn', 'source SAS refused; reading the operation again for a fresh one', { ...runFields(claim.current().run), error: asError(thrown).message });
    try {
      manifest = await readManifest(claim.current().run, deps);
      const refreshed = manifest;
      const { run: reclaimed } = await claim.update((run) => claimedRun(run, refreshed, claimId, deps));
      if (reclaimed.manifestETag !== stored.run.manifestETag) deps.telemetry.runChanged(log, reclaimed);
      landed = await landAll(claim.current().run, manifest, deps);
    } catch (again) {
      return landingFailed(await claim.end(), again, deps, log);
    }
  }
  // Still ours as of its last renewal (else this throws LedgerConflictError and the landing
  // stands down before writing manifest.json over another landing's files).
  const current = await claim.end();
  if (landed.kind === 'copiesPending') return landingRetryOrFail(current, { stillCopying: true, code: COPIES_PENDING, message: landed.message }, deps, log);
  const files = landed.landed;

  const folder = destinationFolder(current.run, manifest.eTag);
  const bytesCopied = files.reduce((sum, { facts }) => sum + facts.contentLength, 0);
  const copiedAt = deps.now().toISOString();
  const ours = manifestJson(current.run, manifest, files, bytesCopied, copiedAt);
  try {
    await writeManifestOnce(`${folder}${MANIFEST_FILE_NAME}`, ours, deps, log);
  } catch (thrown) {
    return landingFailed(current, thrown, deps, log);
  }

  const finished = (run: Run): Run => ({
    ...withoutClaim(run),
    state: 'succeeded',
    manifestETag: manifest.eTag,
    blobCount: files.length,
    destination: `${deps.destination.containerName}/${folder}`,
    bytesCopied,
    updatedAt: copiedAt,
    finishedAt: copiedAt,
    nextActionAt: undefined,
    errorCode: undefined,
    errorMessage: undefined,
  });
  return recordSucceeded(current, finished, deps, log);
}


/**
 * The files and manifest.json have landed: the run succeeded, whatever happened to its row
 * meanwhile (a sweeper's write, another delivery that gave up, a transient ledger failure). On a
 * conflict the row is read again and the success recorded over it; a row already succeeded is
 * left as it is.
 */
async function recordSucceeded(current: StoredRun, finished: (run: Run) => Run, deps: Deps, log: RunLogger): Promise<StoredRun> {
  let base = current;
  for (let attempt = 1; ; attempt++) {
    try {
      const succeeded = finished(base.run);
      const saved = await deps.ledger.saveRun(succeeded, base.etag);
      deps.telemetry.runChanged(log, succeeded);
      return saved;
    } catch (thrown) {
      if (attempt >= FINAL_SAVE_ATTEMPTS) throw thrown;
      const conflict = thrown instanceof LedgerConflictError;
      if (!conflict) await sleep(FINAL_SAVE_RETRY_MS * 2 ** (attempt - 1));
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
async function writeManifestOnce(path: string, ours: AppManifest, deps: Deps, log: RunLogger): Promise<void> {
  const result = await deps.destination.createJson(path, ours);
  if (result.created) return;
  if (describesSameFiles(result.existing, ours)) {
    logEvent(log, 'info', 'manifest.json for these verified files is already there; not writing it again', { runId: ours.runId, path });
    return;
  }
  await deps.destination.replaceJson(path, ours, result.etag);
}

function describesSameFiles(existing: unknown, ours: AppManifest): boolean {
  if (typeof existing !== 'object' || existing === null) return false;
  const other = existing as Partial<AppManifest>;
  const key = (blobs: AppManifest['blobs'] | undefined) => JSON.stringify((blobs ?? []).map(({ name, byteCount, contentMD5 }) => [name, byteCount, contentMD5 ?? null]));
  return other.manifestFormat === MANIFEST_FORMAT && other.eTag === ours.eTag && key(other.blobs) === key(ours.blobs);
}

type AppManifest = ReturnType<typeof manifestJson>;

function manifestJson(run: Run, manifest: Manifest, landed: readonly Landed[], bytesCopied: number, copiedAt: string) {
  return {
    manifestFormat: MANIFEST_FORMAT,
    runId: run.runId,
    kind: run.kind,
    billingPeriod: run.billingPeriod,
    billingMonth: run.billingMonth,
    currency: run.currency,
    attributeSet: run.attributeSet,
    operationId: run.operationId,
    manifestId: manifest.id,
    eTag: manifest.eTag,
    partnerTenantId: manifest.partnerTenantId,
    schemaVersion: manifest.schemaVersion,
    dataFormat: manifest.dataFormat,
    partitionType: manifest.partitionType,
    exportedAt: manifest.createdDateTime,
    copiedAt,
    blobCount: landed.length,
    byteCount: bytesCopied,
    blobs: landed.map(({ blob, facts }) => ({
      name: blob.name,
      partitionValue: blob.partitionValue,
      byteCount: facts.contentLength,
      ...(facts.contentMD5 ? { contentMD5: facts.contentMD5 } : {}),
    })),
  };
}

/**
 * Leaves the run to the landing that holds it, writing nothing to its row (a write would make
 * that landing's final save conflict). The same step is sent again for when the claim runs out:
 * by then the holder has moved the run on (the message is stale and dropped), or it died and this
 * delivery takes over.
 */
async function standDown(stored: StoredRun, heldUntil: Date, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const waitSeconds = Math.max(1, (heldUntil.getTime() - deps.now().getTime()) / 1000);
  const delaySeconds = await deps.queue.send({ v: 1, runId: stored.run.runId, seq: stored.run.seq }, waitSeconds);
  logEvent(log, 'info', 'another landing holds this run; standing down until its claim runs out', { ...runFields(stored.run), claimedUntil: heldUntil.toISOString(), delaySeconds });
  return stored;
}

function withoutClaim(run: Run): Run {
  return { ...run, landingClaimId: undefined, landingClaimedUntil: undefined };
}

interface Landed {
  readonly blob: ManifestBlob;
  readonly facts: BlobFacts;
}

/** The operation no longer says it succeeded, while its files were being landed. */
class OperationChangedError extends Error {
  override readonly name = 'OperationChangedError';
}

/**
 * The manifest, from the success just seen or (resuming, or for a fresh SAS) by reading the
 * operation again; checked before anything is written.
 */
async function readManifest(run: Run, deps: Deps, location?: ManifestLocation): Promise<Manifest> {
  let manifestLocation = location;
  if (!manifestLocation) {
    const state = interpretOperation((await deps.graph.get(operationUrlOf(run))).body);
    if (state.kind !== 'succeeded') throw new OperationChangedError(`the operation no longer reports success (now ${state.kind}) while its files were being copied`);
    manifestLocation = state.manifest;
  }
  const body = manifestLocation.kind === 'inline' ? manifestLocation.manifest : (await deps.graph.get(manifestLocation.url)).body;
  return parseManifest(body, deps.settings.sourceHosts);
}

/**
 * Claims the run for this landing and records where the files go: a new data version (a new
 * eTag) is a new folder. The claim is also the run's next action time, so the sweeper leaves a
 * landing alone while it holds.
 */
async function claimLanding(stored: StoredRun, manifest: Manifest, claimId: string, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const newVersion = !(stored.run.state === 'copying' && stored.run.manifestETag === manifest.eTag);
  const claimed = claimedRun(stored.run, manifest, claimId, deps);
  const saved = await deps.ledger.saveRun(claimed, stored.etag);
  if (newVersion) deps.telemetry.runChanged(log, claimed);
  return saved;
}

function claimedRun(run: Run, manifest: Manifest, claimId: string, deps: Deps): Run {
  const now = deps.now();
  const claimedUntil = new Date(now.getTime() + claimSeconds(deps) * 1000).toISOString();
  return {
    ...run,
    state: 'copying',
    manifestETag: manifest.eTag,
    partnerTenantId: manifest.partnerTenantId,
    blobCount: manifest.blobCount,
    destination: `${deps.destination.containerName}/${destinationFolder(run, manifest.eTag)}`,
    landingClaimId: claimId,
    landingClaimedUntil: claimedUntil,
    nextActionAt: claimedUntil,
    updatedAt: now.toISOString(),
  };
}

/** A landing's claim on its run, renewed in the background until the landing ends it. */
interface HeldClaim {
  /** The run's row as this landing last wrote it. */
  current(): StoredRun;
  /** Writes the row (after any renewal in flight), conditional on the landing's last write. */
  update(change: (run: Run) => Run): Promise<StoredRun>;
  /** Stops renewing; the row as last written, or LedgerConflictError if another landing took the run over. */
  end(): Promise<StoredRun>;
}

/** The claim's lease: LANDING_CLAIM_SECONDS unless the composition root chose another. */
function claimSeconds(deps: Deps): number {
  return deps.landingClaimSeconds ?? LANDING_CLAIM_SECONDS;
}

function holdClaim(claimed: StoredRun, deps: Deps): HeldClaim {
  let current = claimed;
  let lost: LedgerConflictError | undefined;
  let writes: Promise<unknown> = Promise.resolve();
  const update = (change: (run: Run) => Run): Promise<StoredRun> => {
    const write = writes.then(async () => {
      if (lost) throw lost;
      current = await deps.ledger.saveRun(change(current.run), current.etag);
      return current;
    });
    writes = write.catch(() => undefined);
    return write;
  };
  const renew = (run: Run): Run => {
    const until = new Date(deps.now().getTime() + claimSeconds(deps) * 1000).toISOString();
    return { ...run, landingClaimedUntil: until, nextActionAt: until };
  };
  // Renewed four times per lease: a renewal that fails transiently has three more chances.
  const timer = setInterval(() => {
    update(renew).catch((thrown: unknown) => {
      // Another landing took over a claim this one let run out: this one must not finish.
      if (thrown instanceof LedgerConflictError) lost = thrown;
      // Anything else is transient: the next renewal tries again.
    });
  }, (claimSeconds(deps) * 1000) / 4);
  timer.unref();
  return {
    current: () => current,
    update,
    async end() {
      clearInterval(timer);
      await writes;
      if (lost) throw lost;
      return current;
    },
  };
}

/**
 * Lands every listed file in the run's folder: one listing of the folder says what an earlier
 * attempt already landed and verified; each other file gets one read of its source (its version,
 * length and MD5) and one Copy Blob of exactly that version, COPY_CONCURRENCY at a time, without
 * waiting for each copy; then listings of the folder wait for the copies and verify them all.
 * About two requests per file, plus a listing per 5,000.
 */
type LandAllResult = { readonly kind: 'landed'; readonly landed: Landed[] } | { readonly kind: 'copiesPending'; readonly message: string };

async function landAll(run: Run, manifest: Manifest, deps: Deps): Promise<LandAllResult> {
  const folder = destinationFolder(run, manifest.eTag);
  const before = await deps.destination.listFolder(folder);
  const sources = new Map<string, BlobFacts>();
  /** Files onto which another copy was still pending: what it copied is checked after settling. */
  const copiedByAnother = new Set<string>();
  await mapWithConcurrency(manifest.blobs, COPY_CONCURRENCY, (blob) =>
    namingTheFile(blob, async () => {
      const sourceUrl = sourceBlobUrl(manifest, blob.name);
      for (let attempt = 1; ; attempt++) {
        const source = await deps.destination.sourceFacts(sourceUrl);
        sources.set(blob.name, source);
        const existing = attempt === 1 ? before.get(blob.name) : undefined;
        const sameVersion = existing?.sourceEtag === source.etag.replace(/"/g, '');
        // Landed and verified by an earlier attempt, or still being copied by it (a second copy
        // onto a pending one is refused): the listings below settle and verify it.
        if (existing && sameVersion && (existing.copyStatus === 'pending' || verificationProblem(existing, source) === undefined)) return;
        try {
          if ((await deps.destination.startCopy(sourceUrl, source.etag, `${folder}${blob.name}`)) === 'alreadyPending') copiedByAnother.add(blob.name);
          return;
        } catch (thrown) {
          // The source changed between reading its version and copying it (412 on If-Match):
          // read it again and copy the version that is there now.
          if (isSourceChanged(thrown) && attempt < SOURCE_CHANGE_RETRIES) continue;
          throw thrown;
        }
      }
    }),
  );

  const settled = await deps.destination.settleFolder(folder);
  if (settled.kind === 'copiesPending') return { kind: 'copiesPending', message: `${settled.pending} copies into ${folder} still pending after ${settled.waitedSeconds} s` };
  const after = settled.listed;
  const landedFiles = manifest.blobs.map((blob) => {
    const landed = after.get(blob.name);
    const source = sources.get(blob.name)!;
    const problem = landed ? verificationProblem(landed, source) : 'it is not in the destination';
    if (copiedByAnother.has(blob.name) && (problem || landed?.sourceEtag !== source.etag.replace(/"/g, ''))) {
      // Another copy was pending onto this file and brought something else: copy it again on
      // the next landing, which the refused copy does not count against.
      throw new CopyPendingElsewhereError(`'${blob.name}': another copy onto it was pending and did not bring this source version${problem ? ` (${problem})` : ''}`);
    }
    if (problem) throw new VerificationError(`copy of '${blob.name}' does not match its source: ${problem}`);
    return { blob, facts: landed! };
  });
  return { kind: 'landed', landed: landedFiles };
}


function isSourceChanged(thrown: unknown): boolean {
  return thrown instanceof StorageRequestError && thrown.status === 412;
}

/** Storage errors about one file say which file: "The specified blob does not exist." does not. */
async function namingTheFile<T>(blob: ManifestBlob, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    // The destination's errors are its own, already stripped of the request (and its SAS).
    throw thrown instanceof StorageRequestError ? thrown.about(`'${blob.name}'`) : thrown;
  }
}

function verificationProblem(copy: BlobFacts, source: BlobFacts): string | undefined {
  if (copy.copyStatus && copy.copyStatus !== 'success') return `copy status is ${copy.copyStatus}${copy.copyStatusDescription ? ` (${copy.copyStatusDescription})` : ''}`;
  if (copy.contentLength !== source.contentLength) return `${copy.contentLength} bytes, expected ${source.contentLength}`;
  if (source.contentMD5 && copy.contentMD5 !== source.contentMD5) return `MD5 ${copy.contentMD5 ?? '(none)'}, expected ${source.contentMD5}`;
  return undefined;
}

function sasMayHaveExpired(thrown: unknown): boolean {
  return thrown instanceof StorageRequestError && thrown.sourceRefused;
}


/**
 * Where a landing that went wrong ends. A bad manifest or an operation that stopped reporting
 * success fails the run; an operation Graph forgot restarts the export; trouble that can pass
 * (Graph or storage throttling, 5xx, timeouts, a SAS still refused after a refresh, a copy that
 * did not verify) is retried by a later message, as the landing policy (../core/policy.ts) allows;
 * anything else fails the run with the service's reason.
 */
async function landingFailed(stored: StoredRun, thrown: unknown, deps: Deps, log: RunLogger): Promise<StoredRun> {
  // Whatever comes next, this landing is over: its claim goes with it.
  const released: StoredRun = { ...stored, run: withoutClaim(stored.run) };
  if (thrown instanceof ManifestError) return failRun(released, 'InvalidManifest', thrown.message, deps, log);
  if (thrown instanceof OperationChangedError) return failRun(released, 'OperationChanged', thrown.message, deps, log);
  if (thrown instanceof GraphRequestError && !thrown.transient) return handleGraphFailure(released, thrown, 'reading the manifest', deps, log);

  const error = asError(thrown);
  const storage = error instanceof StorageRequestError ? error : undefined;
  // A copy pending onto a file from an earlier landing (409 PendingCopyOperation), a source that
  // kept changing under its copy (412): slow or in flux, not failing.
  if (error instanceof CopyPendingElsewhereError || storage?.status === 412) return landingRetryOrFail(released, { stillCopying: true, code: error instanceof CopyPendingElsewhereError ? error.code : storage!.code, message: error.message }, deps, log);
  if (error instanceof VerificationError) return landingRetryOrFail(released, { stillCopying: false, code: error.name, message: error.message }, deps, log);
  if (error instanceof GraphRequestError) return landingRetryOrFail(released, { stillCopying: false, code: error.code, message: error.message, ...(error.details.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.details.retryAfterSeconds }) }, deps, log);
  if (!storage) throw error;
  if (!storage.transient) return failRun(released, storage.code, `copying files failed: ${storage.message}`, deps, log);
  return landingRetryOrFail(released, { stillCopying: false, code: storage.code, message: storage.message }, deps, log);
}

/** Sends the landing's next attempt, or fails the run once the landing policy says it is enough. */
async function landingRetryOrFail(released: StoredRun, trouble: LandingTrouble, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const decision = decideLandingRetry(released.run, trouble, { initialDelaySeconds: deps.settings.pollInitialDelaySeconds, maxDelaySeconds: deps.settings.pollMaxDelaySeconds }, deps.random);
  if (decision.kind === 'fail') return failRun(released, decision.code, decision.message, deps, log);
  const now = deps.now();
  const next: Run = { ...withoutClaim(released.run), seq: released.run.seq + 1, landingAttempts: decision.landingAttempts, copyWaits: decision.copyWaits, updatedAt: now.toISOString() };
  const delaySeconds = await deps.queue.send({ v: 1, runId: next.runId, seq: next.seq }, decision.delaySeconds);
  const saved = await deps.ledger.saveRun({ ...next, nextActionAt: new Date(now.getTime() + delaySeconds * 1000).toISOString() }, released.etag);
  logEvent(log, 'warn', 'copying hit a transient failure; will resume', { ...runFields(next), error: trouble.message, attempt: decision.landingAttempts, delaySeconds });
  return saved;
}
