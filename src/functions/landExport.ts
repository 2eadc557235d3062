/**
 * Landing a succeeded export: every listed file is copied server side into the run's folder
 * and verified (length, and MD5 where the source has one), and only then is `manifest.json`
 * written, so consumers can trigger on it. Copies are idempotent: a file already copied from
 * the same source version and verified is not copied again when a landing resumes. A resumed
 * landing reads the operation again, which also brings a fresh SAS.
 */
import { COPIES_PENDING, GraphRequestError, ManifestError, VerificationError, asError, isRestError } from '../errors';
import { interpretOperation, type ManifestLocation } from '../core/operation';
import { parseManifest, sourceBlobUrl, type Manifest, type ManifestBlob } from '../core/manifest';
import { MANIFEST_FILE_NAME, destinationFolder } from '../core/naming';
import { backoffDelaySeconds } from '../core/polling';
import type { Run } from '../core/run';
import type { BlobFacts } from '../adapters/destination';
import type { StoredRun } from '../adapters/ledger';
import { mapWithConcurrency } from '../concurrency';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { failRun, handleGraphFailure, operationUrlOf } from './runSteps';

/** Parallel copies per invocation: enough to hide per-request latency, far below account limits. */
export const COPY_CONCURRENCY = 16;
/** Landing attempts that hit transient storage trouble before the run fails. */
export const MAX_LANDING_ATTEMPTS = 5;
/** Landings that may end with copies still pending (each waits COPY_TIMEOUT_MS): about 4 hours. */
export const MAX_COPY_WAITS = 12;
/**
 * What storage answers when a source SAS has expired: Azure says AuthenticationFailed, Azurite
 * AuthorizationFailure, and a copy whose source cannot be read CannotVerifyCopySource. A resumed
 * landing brings a fresh SAS; if the cause is permanent (a firewall, the destination's copy scope)
 * the run fails with this code after MAX_LANDING_ATTEMPTS.
 */
const SAS_MAY_HAVE_EXPIRED = new Set(['AuthenticationFailed', 'AuthorizationFailure', 'CannotVerifyCopySource']);
/** Our manifest.json format. */
export const MANIFEST_FORMAT = 'partner-billing-export/1';

export async function landExport(stored: StoredRun, deps: Deps, log: RunLogger, location?: ManifestLocation): Promise<StoredRun> {
  let manifest: Manifest;
  try {
    manifest = await readManifest(stored.run, deps, location);
  } catch (thrown) {
    return landingFailed(stored, thrown, deps, log);
  }

  let current = await recordCopying(stored, manifest, deps, log);
  let landed: Landed[];
  try {
    landed = await landAll(current.run, manifest, deps);
  } catch (thrown) {
    if (!sasMayHaveExpired(thrown)) return landingFailed(current, thrown, deps, log);
    // A stale SAS (the first answer's may already be): read the operation again for a fresh
    // one and carry on; files already landed and verified are not copied again.
    logEvent(log, 'warn', 'source SAS refused; reading the operation again for a fresh one', { ...runFields(current.run), error: asError(thrown).message });
    try {
      manifest = await readManifest(current.run, deps);
      current = await recordCopying(current, manifest, deps, log);
      landed = await landAll(current.run, manifest, deps);
    } catch (again) {
      return landingFailed(current, again, deps, log);
    }
  }

  const folder = destinationFolder(current.run, manifest.eTag);
  const bytesCopied = landed.reduce((sum, { facts }) => sum + facts.contentLength, 0);
  const copiedAt = deps.now().toISOString();
  await deps.destination.writeJson(`${folder}${MANIFEST_FILE_NAME}`, {
    manifestFormat: MANIFEST_FORMAT,
    runId: current.run.runId,
    kind: current.run.kind,
    billingPeriod: current.run.billingPeriod,
    billingMonth: current.run.billingMonth,
    currency: current.run.currency,
    attributeSet: current.run.attributeSet,
    operationId: current.run.operationId,
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
  });

  const succeeded: Run = { ...current.run, state: 'succeeded', bytesCopied, updatedAt: copiedAt, finishedAt: copiedAt, nextActionAt: undefined, errorCode: undefined, errorMessage: undefined };
  const saved = await deps.ledger.saveRun(succeeded, current.etag);
  deps.telemetry.runChanged(log, succeeded);
  return saved;
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

/** Records where the files go, once per data version (a new eTag is a new folder). */
async function recordCopying(stored: StoredRun, manifest: Manifest, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (stored.run.state === 'copying' && stored.run.manifestETag === manifest.eTag) return stored;
  const copying: Run = {
    ...stored.run,
    state: 'copying',
    manifestETag: manifest.eTag,
    partnerTenantId: manifest.partnerTenantId,
    blobCount: manifest.blobCount,
    destination: `${deps.destination.containerName}/${destinationFolder(stored.run, manifest.eTag)}`,
    updatedAt: deps.now().toISOString(),
  };
  const saved = await deps.ledger.saveRun(copying, stored.etag);
  deps.telemetry.runChanged(log, copying);
  return saved;
}

/**
 * Lands every listed file in the run's folder: one listing of the folder says what an earlier
 * attempt already landed and verified; each other file gets one read of its source (its version,
 * length and MD5) and one Copy Blob of exactly that version, COPY_CONCURRENCY at a time, without
 * waiting for each copy; then listings of the folder wait for the copies and verify them all.
 * About two requests per file, plus a listing per 5,000.
 */
async function landAll(run: Run, manifest: Manifest, deps: Deps): Promise<Landed[]> {
  const folder = destinationFolder(run, manifest.eTag);
  const before = await deps.destination.listFolder(folder);
  const sources = new Map<string, BlobFacts>();
  await mapWithConcurrency(manifest.blobs, COPY_CONCURRENCY, (blob) =>
    namingTheFile(blob, async () => {
      const sourceUrl = sourceBlobUrl(manifest, blob.name);
      const source = await deps.destination.sourceFacts(sourceUrl);
      sources.set(blob.name, source);
      const existing = before.get(blob.name);
      const sameVersion = existing?.sourceEtag === source.etag.replace(/"/g, '');
      // Landed and verified by an earlier attempt, or still being copied by it (a second copy
      // onto a pending one is refused): the listings below settle and verify it.
      if (existing && sameVersion && (existing.copyStatus === 'pending' || verificationProblem(existing, source) === undefined)) return;
      await deps.destination.startCopy(sourceUrl, source.etag, `${folder}${blob.name}`);
    }),
  );

  const after = await deps.destination.settleFolder(folder);
  return manifest.blobs.map((blob) => {
    const landed = after.get(blob.name);
    const problem = landed ? verificationProblem(landed, sources.get(blob.name)!) : 'it is not in the destination';
    if (problem) throw new VerificationError(`copy of '${blob.name}' does not match its source: ${problem}`);
    return { blob, facts: landed! };
  });
}

/** Storage errors about one file say which file: "The specified blob does not exist." does not. */
async function namingTheFile<T>(blob: ManifestBlob, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    // The destination's errors are its own, already stripped of the request (and its SAS).
    if (isRestError(thrown)) thrown.message = `'${blob.name}': ${thrown.message}`;
    throw thrown;
  }
}

function verificationProblem(copy: BlobFacts, source: BlobFacts): string | undefined {
  if (copy.copyStatus && copy.copyStatus !== 'success') return `copy status is ${copy.copyStatus}${copy.copyStatusDescription ? ` (${copy.copyStatusDescription})` : ''}`;
  if (copy.contentLength !== source.contentLength) return `${copy.contentLength} bytes, expected ${source.contentLength}`;
  if (source.contentMD5 && copy.contentMD5 !== source.contentMD5) return `MD5 ${copy.contentMD5 ?? '(none)'}, expected ${source.contentMD5}`;
  return undefined;
}

function sasMayHaveExpired(thrown: unknown): boolean {
  return isRestError(thrown) && SAS_MAY_HAVE_EXPIRED.has(thrown.code ?? '');
}

/**
 * Where a landing that went wrong ends. A bad manifest or an operation that stopped reporting
 * success fails the run; an operation Graph forgot restarts the export; trouble that can pass
 * (Graph or storage throttling, 5xx, timeouts, a SAS still refused after a refresh, a copy that
 * did not verify) is retried by a later message, up to MAX_LANDING_ATTEMPTS; anything else fails
 * the run with the service's reason.
 */
async function landingFailed(stored: StoredRun, thrown: unknown, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (thrown instanceof ManifestError) return failRun(stored, 'InvalidManifest', thrown.message, deps, log);
  if (thrown instanceof OperationChangedError) return failRun(stored, 'OperationChanged', thrown.message, deps, log);
  if (thrown instanceof GraphRequestError && !thrown.transient) return handleGraphFailure(stored, thrown, 'reading the manifest', deps, log);

  const error = asError(thrown);
  const status = isRestError(error) ? error.statusCode : undefined;
  const code = error instanceof GraphRequestError ? error.code : isRestError(error) ? (error.code ?? `Http${status}`) : error.name;
  const passing =
    error instanceof VerificationError ||
    error instanceof GraphRequestError ||
    (isRestError(error) && (status === undefined || status === 408 || status === 429 || status >= 500 || sasMayHaveExpired(error)));
  if (!passing) {
    if (!isRestError(error)) throw error;
    return failRun(stored, code, `copying files failed: ${error.message}`, deps, log);
  }
  // Copies the service is still working on are slow, not failing: they get a wait of their own,
  // bounded separately, and do not use up the landing's attempts.
  const stillCopying = code === COPIES_PENDING;
  const copyWaits = (stored.run.copyWaits ?? 0) + (stillCopying ? 1 : 0);
  const attempts = (stored.run.landingAttempts ?? 0) + (stillCopying ? 0 : 1);
  if (copyWaits > MAX_COPY_WAITS) return failRun(stored, code, `copying files did not finish after ${MAX_COPY_WAITS} waits: ${error.message}`, deps, log);
  if (attempts >= MAX_LANDING_ATTEMPTS) return failRun(stored, code, `copying files failed after ${attempts} attempts: ${error.message}`, deps, log);

  const retryAfterSeconds = error instanceof GraphRequestError ? (error.details.retryAfterSeconds ?? 0) : 0;
  const backoff = backoffDelaySeconds(attempts - 1, { initialDelaySeconds: deps.settings.pollInitialDelaySeconds, maxDelaySeconds: deps.settings.pollMaxDelaySeconds, deadlineSeconds: Infinity }, deps.random);
  const delaySeconds = Math.ceil(Math.max(retryAfterSeconds, backoff));
  const now = deps.now();
  const next: Run = { ...stored.run, seq: stored.run.seq + 1, landingAttempts: attempts, copyWaits, updatedAt: now.toISOString(), nextActionAt: new Date(now.getTime() + delaySeconds * 1000).toISOString() };
  await deps.queue.send({ v: 1, runId: next.runId, seq: next.seq }, delaySeconds);
  const saved = await deps.ledger.saveRun(next, stored.etag);
  logEvent(log, 'warn', 'copying hit a transient failure; will resume', { ...runFields(next), error: error.message, attempt: attempts, delaySeconds });
  return saved;
}
