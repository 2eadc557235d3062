/**
 * Landing a succeeded export: every listed file is copied server side into the run's folder
 * and verified (length, and MD5 where the source has one), and only then is `manifest.json`
 * written, so consumers can trigger on it. Copies are idempotent: a file already copied from
 * the same source version and verified is not copied again when a landing resumes. A resumed
 * landing reads the operation again, which also brings a fresh SAS.
 */
import { RestError } from '@azure/storage-blob';
import { ManifestError, VerificationError, asError } from '../errors';
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
  let manifestLocation = location;
  if (!manifestLocation) {
    let response;
    try {
      response = await deps.graph.get(operationUrlOf(stored.run));
    } catch (thrown) {
      return handleGraphFailure(stored, thrown, 'reading the operation to resume copying', deps, log);
    }
    const state = interpretOperation(response.body);
    if (state.kind !== 'succeeded') {
      return failRun(stored, 'OperationChanged', `the operation no longer reports success (now ${state.kind}) while its files were being copied`, deps, log);
    }
    manifestLocation = state.manifest;
  }

  let manifest: Manifest;
  try {
    const body = manifestLocation.kind === 'inline' ? manifestLocation.manifest : (await deps.graph.get(manifestLocation.url)).body;
    manifest = parseManifest(body, deps.settings.sourceHosts);
  } catch (thrown) {
    if (thrown instanceof ManifestError) return failRun(stored, 'InvalidManifest', thrown.message, deps, log);
    return handleGraphFailure(stored, thrown, 'reading the manifest', deps, log);
  }

  const folder = destinationFolder(stored.run, manifest.eTag);
  let current = stored;
  if (stored.run.state !== 'copying') {
    const copying: Run = {
      ...stored.run,
      state: 'copying',
      manifestETag: manifest.eTag,
      partnerTenantId: manifest.partnerTenantId,
      blobCount: manifest.blobCount,
      destination: `${deps.destination.containerName}/${folder}`,
      updatedAt: deps.now().toISOString(),
    };
    current = await deps.ledger.saveRun(copying, stored.etag);
    deps.telemetry.runChanged(log, copying);
  }

  let landed: Array<{ blob: ManifestBlob; facts: BlobFacts }>;
  try {
    landed = await mapWithConcurrency(manifest.blobs, COPY_CONCURRENCY, async (blob) => ({ blob, facts: await landBlob(manifest, blob, folder, deps) }));
  } catch (thrown) {
    return retryOrFail(current, thrown, deps, log);
  }

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

  const succeeded: Run = { ...current.run, state: 'succeeded', bytesCopied, updatedAt: copiedAt, finishedAt: copiedAt, errorCode: undefined, errorMessage: undefined };
  const saved = await deps.ledger.saveRun(succeeded, current.etag);
  deps.telemetry.runChanged(log, succeeded);
  return saved;
}

/** Copies one file unless an earlier attempt already landed and verified this very version. */
async function landBlob(manifest: Manifest, blob: ManifestBlob, folder: string, deps: Deps): Promise<BlobFacts> {
  const sourceUrl = sourceBlobUrl(manifest, blob.name);
  const source = await deps.destination.sourceFacts(sourceUrl);
  const path = `${folder}${blob.name}`;
  const existing = await deps.destination.facts(path);
  if (existing && existing.sourceEtag === source.etag.replace(/"/g, '') && verificationProblem(existing, source) === undefined) return existing;

  const copied = await deps.destination.copy(sourceUrl, source.etag, path);
  const problem = verificationProblem(copied, source);
  if (problem) throw new VerificationError(`copy of '${blob.name}' does not match its source: ${problem}`);
  return copied;
}

function verificationProblem(copy: BlobFacts, source: BlobFacts): string | undefined {
  if (copy.copyStatus && copy.copyStatus !== 'success') return `copy status is ${copy.copyStatus}${copy.copyStatusDescription ? ` (${copy.copyStatusDescription})` : ''}`;
  if (copy.contentLength !== source.contentLength) return `${copy.contentLength} bytes, expected ${source.contentLength}`;
  if (source.contentMD5 && copy.contentMD5 !== source.contentMD5) return `MD5 ${copy.contentMD5 ?? '(none)'}, expected ${source.contentMD5}`;
  return undefined;
}

/**
 * Storage trouble that can pass (throttling, 5xx, timeouts, an expired SAS, a copy that did not
 * verify) is retried by a later message, which reads the operation again for a fresh SAS;
 * anything else, or too many attempts, fails the run with the storage service's reason.
 */
async function retryOrFail(stored: StoredRun, thrown: unknown, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const error = asError(thrown);
  const status = error instanceof RestError ? error.statusCode : undefined;
  const code = error instanceof RestError ? (error.code ?? `Http${status}`) : error.name;
  const passing =
    error instanceof VerificationError ||
    (error instanceof RestError && (status === undefined || status === 408 || status === 429 || status >= 500 || SAS_MAY_HAVE_EXPIRED.has(code)));
  const attempts = (stored.run.landingAttempts ?? 0) + 1;
  if (!passing || attempts >= MAX_LANDING_ATTEMPTS) {
    const why = passing ? ` (after ${attempts} attempts)` : '';
    return failRun(stored, code, `copying files failed${why}: ${error.message}`, deps, log);
  }

  const delaySeconds = Math.ceil(backoffDelaySeconds(attempts - 1, { initialDelaySeconds: deps.settings.pollInitialDelaySeconds, maxDelaySeconds: deps.settings.pollMaxDelaySeconds, deadlineSeconds: Infinity }, deps.random));
  const next: Run = { ...stored.run, seq: stored.run.seq + 1, landingAttempts: attempts, updatedAt: deps.now().toISOString() };
  await deps.queue.send({ v: 1, runId: next.runId, seq: next.seq }, delaySeconds);
  const saved = await deps.ledger.saveRun(next, stored.etag);
  logEvent(log, 'warn', 'copying hit a transient failure; will resume', { ...runFields(next), error: error.message, attempt: attempts, delaySeconds });
  return saved;
}
