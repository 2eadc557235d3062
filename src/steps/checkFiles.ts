/**
 * The data check of a landed run, fanned out: once every copy is verified, the landing plans one
 * check per file in the ledger (../adapters/fileChecks.ts) and sends one queue message per file
 * (`{v, runId, seq, file}`), so many instances read the files at once and no invocation holds
 * more than one file. Each message checks its file (and writes its Parquet copy) and records the
 * result on the file's row; whichever finds no file left pending writes manifest.json with the
 * merged figures and ends the run. A redelivery redoes its own file only; manifest.json is never
 * written while a file is unchecked, and a file that cannot be read fails the run without it.
 */
import { DataFileError, LedgerConflictError, StorageRequestError, asError } from '../errors';
import { mergeFileResults, type FileCheckResult } from '../core/dataCheck';
import { rowFamilyOf, schemaFor } from '../core/dataSchema';
import { bareEtag } from '../core/etag';
import type { Manifest } from '../core/manifest';
import { MANIFEST_FILE_NAME, destinationFolder } from '../core/naming';
import { CHECK_WAIT_SECONDS, FILE_CHECK_BUSY_DELAY_SECONDS, MAX_CHECK_ROUNDS, decideCheckRound, decideFileCheckRetry, pollingPolicyOf } from '../core/policy';
import { fileCheckMessageFor } from '../core/pollMessage';
import { buildPublicManifest, withDataCheck, type LandedFile, type ManifestFacts } from '../core/publicManifest';
import { randomUUID } from 'node:crypto';
import { isCheckingFiles, landingClaimedByOther, toCheckingFiles, toSucceeded, withClaim, withoutClaim } from '../core/run';
import { noteTransientFailure } from '../core/lastError';
import { redactSecrets } from '../core/redact';
import type { DataFileOutcome } from '../adapters/dataFile';
import type { FileCheckRow, PlannedFile } from '../adapters/fileChecks';
import type { StoredRun } from '../adapters/ledger';
import { mapWithConcurrency } from '../concurrency';
import type { Deps } from '../deps';
import { logEvent, runFields, type RunLogger } from '../runLog';
import { recordSucceeded, writeManifestOnce } from './finishRun';
import { claimUntil } from './landingClaim';
import { failRun } from './runSteps';

/** Check messages sent at once. */
const SEND_CONCURRENCY = 16;

interface CheckPlan {
  readonly manifest: ManifestFacts;
  /** When the last copy was done (and, when any was pending, verified by listing). */
  readonly copiedAt: string;
  /** Times the pending checks were sent with no file finishing in between (MAX_CHECK_ROUNDS). */
  readonly round?: number;
  /** Files done when they were last sent. */
  readonly doneFiles?: number;
}

/**
 * After the landing verified every copy: plans the files' checks and sends a message for each
 * one not checked yet (a file whose copy changed since it was checked is checked again); when
 * none is left, finishes the run at once.
 */
export async function startDataChecks(stored: StoredRun, manifest: Manifest, landed: readonly LandedFile[], deps: Deps, log: RunLogger): Promise<StoredRun> {
  const { run } = stored;
  const checked = new Map((await deps.fileChecks.listFiles(run.runId, manifest.eTag)).map((row) => [row.index, row]));
  const previous = (await deps.fileChecks.readPlan(run.runId, manifest.eTag)) as CheckPlan | undefined;
  const files: PlannedFile[] = landed.map(({ blob, facts }, index) => ({
    index,
    name: blob.name,
    partitionValue: blob.partitionValue,
    byteCount: facts.contentLength,
    ...(facts.contentMD5 ? { contentMD5: facts.contentMD5 } : {}),
    // Bare: a copy's answer quotes its ETag, a listing does not.
    landedEtag: bareEtag(facts.etag ?? ''),
  }));
  const toCheck = files.filter((file) => {
    const row = checked.get(file.index);
    return !row || row.name !== file.name || bareEtag(row.landedEtag) !== file.landedEtag || !isChecked(row, deps);
  });
  const plan = {
    manifest: {
      id: manifest.id,
      eTag: manifest.eTag,
      schemaVersion: manifest.schemaVersion,
      dataFormat: manifest.dataFormat,
      createdDateTime: manifest.createdDateTime,
      partnerTenantId: manifest.partnerTenantId,
      partitionType: manifest.partitionType,
    },
    copiedAt: deps.now().toISOString(),
  };
  const doneFiles = [...checked.values()].filter((row) => row.state === 'done').length;
  return sendChecks(stored, { plan, previous, doneFiles, fileCount: files.length, toCheck }, deps, log);
}

/**
 * The landing step of a run whose files all landed and whose checks went out (a revival of a
 * check that stopped, a landing redelivered after it planned them): the checks still pending go
 * out again from the ledger alone. Reading Graph again, as a landing does, could restart an
 * export whose files are all here (an operation Graph has forgotten). Undefined when the run's
 * data version has no check plan with every file's row: a landing that did not get that far.
 */
export async function resumeDataChecks(stored: StoredRun, deps: Deps, log: RunLogger): Promise<StoredRun | undefined> {
  const { run } = stored;
  if (!isCheckingFiles(run) || run.blobCount === undefined) return undefined;
  const eTag = run.manifestETag;
  const previous = (await deps.fileChecks.readPlan(run.runId, eTag)) as CheckPlan | undefined;
  if (!previous) return undefined;
  const rows = await deps.fileChecks.listFiles(run.runId, eTag);
  if (rows.length !== run.blobCount) return undefined;
  logEvent(log, 'info', 'its files landed and their checks went out before: resuming the checks', runFields(run));
  const doneFiles = rows.filter((row) => row.state === 'done').length;
  const toCheck = rows.filter((row) => !isChecked(row, deps));
  return sendChecks(stored, { plan: previous, previous, doneFiles, fileCount: rows.length, toCheck }, deps, log);
}

/** Done, and in the output formats asked for now (a file checked without Parquet is checked again when Parquet is wanted). */
function isChecked(row: FileCheckRow, deps: Deps): boolean {
  const outcome = row.result as DataFileOutcome | undefined;
  return row.state === 'done' && wantsParquet(deps) === (outcome?.parquet !== undefined);
}

/** Whether the files get a Parquet copy beside them (OUTPUT_FORMATS). */
const wantsParquet = (deps: Deps) => deps.settings.outputFormats.includes('parquet');

/**
 * Sends one message for each file of `toCheck` and saves the run at the step they carry; with
 * none to check, finishes the run. Fails it as DataCheckStalled when the same checks went out
 * MAX_CHECK_ROUNDS times with no file finishing.
 */
async function sendChecks(
  stored: StoredRun,
  checks: {
    readonly plan: Pick<CheckPlan, 'manifest' | 'copiedAt'>;
    readonly previous: CheckPlan | undefined;
    readonly doneFiles: number;
    readonly fileCount: number;
    readonly toCheck: readonly PlannedFile[];
  },
  deps: Deps,
  log: RunLogger,
): Promise<StoredRun> {
  const { run } = stored;
  const { plan, previous, doneFiles, fileCount, toCheck } = checks;
  const eTag = plan.manifest.eTag;
  // Stalled: sent MAX_CHECK_ROUNDS times with no file finishing, each delivery ended without a result.
  const rounds = decideCheckRound(previous, doneFiles, toCheck.length);
  if (rounds.kind === 'stalled') {
    const names = toCheck.map((file) => `'${file.name}'`);
    return failRun(
      stored,
      'DataCheckStalled',
      `the data check of ${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''} was sent ${MAX_CHECK_ROUNDS} times and no file finished: each delivery ended without a result (out of memory or past the function timeout?)`,
      deps,
      log,
    );
  }
  await deps.fileChecks.savePlan(run.runId, eTag, { manifest: plan.manifest, copiedAt: plan.copiedAt, round: rounds.round, doneFiles } satisfies CheckPlan);
  // Every file already checked (a landing resumed after the checks): this landing's own claim finishes it.
  if (toCheck.length === 0) return finishChecks(stored, deps, log, run.landingClaimId);

  await deps.fileChecks.planFiles(run.runId, eTag, toCheck);
  // Messages first, then the run with the step they carry (as sendThenSave): a crash between
  // leaves messages that arrived early (they come back), and the landing's own redelivery sends them again.
  // The landing is over (its claim goes): the files' messages and, at the end, one finisher take it from here.
  const waiting = toCheckingFiles(run, CHECK_WAIT_SECONDS, deps.now());
  await mapWithConcurrency(toCheck, SEND_CONCURRENCY, (file) => deps.queue.send(fileCheckMessageFor(waiting, file.index), 0));
  const saved = await deps.ledger.saveRun(waiting, stored.etag);
  logEvent(log, 'info', 'files landed; checking their data', {
    ...runFields(saved.run),
    files: toCheck.length,
    alreadyChecked: fileCount - toCheck.length,
    parquet: wantsParquet(deps),
  });
  return saved;
}

/** One file's check, from its queue message; then, if it was the last, the run's end. */
export async function checkLandedFile(stored: StoredRun, index: number, deps: Deps, log: RunLogger): Promise<StoredRun> {
  const { run } = stored;
  const eTag = run.manifestETag;
  if (run.state !== 'copying' || !eTag) {
    logEvent(log, 'info', 'file check for a run that is not checking files dropped', { ...runFields(run), file: index });
    return stored;
  }
  const file = await deps.fileChecks.getFile(run.runId, eTag, index);
  if (!file) {
    logEvent(log, 'warn', 'file check for a file the run did not plan dropped', { ...runFields(run), file: index });
    return stored;
  }
  if (file.state === 'done') return finishIfAllChecked(stored, deps, log);

  // One file at a time per slot of this process: the others wait their turn, or go back on the queue.
  const release = await deps.fileCheckSlots.slots.take(deps.fileCheckSlots.waitMs);
  if (!release) {
    await deps.queue.send(fileCheckMessageFor(run, index), FILE_CHECK_BUSY_DELAY_SECONDS);
    logEvent(log, 'info', 'file check handed back: this process is checking other files', {
      ...runFields(run),
      file: file.name,
      delaySeconds: FILE_CHECK_BUSY_DELAY_SECONDS,
    });
    return stored;
  }
  const parquet = wantsParquet(deps);
  let outcome: DataFileOutcome;
  try {
    outcome = await deps.dataFiles.checkFile({
      folder: destinationFolder(run, eTag),
      name: file.name,
      schema: schemaFor(rowFamilyOf(run.kind), run.attributeSet),
      parquet,
      source: { byteCount: file.byteCount, ...(file.contentMD5 ? { contentMD5: file.contentMD5 } : {}) },
    });
  } catch (thrown) {
    release();
    if (thrown instanceof DataFileError) return failRun(stored, thrown.code, `the data check failed: ${thrown.message}`, deps, log);
    if (!(thrown instanceof StorageRequestError)) throw thrown;
    const decision = decideFileCheckRetry(file, thrown, pollingPolicyOf(deps.settings), deps.random);
    if (decision.kind === 'fail') return failRun(stored, thrown.code, decision.message, deps, log);
    const { attempts, delaySeconds } = decision;
    await deps.fileChecks.noteAttempt(run.runId, eTag, index, attempts, deps.now());
    await deps.queue.send(fileCheckMessageFor(run, index), delaySeconds);
    logEvent(log, 'warn', 'file check hit a transient failure; will retry', {
      ...runFields(run),
      file: file.name,
      attempt: attempts,
      delaySeconds,
      error: thrown.message,
    });
    return stored;
  }
  release();
  await deps.fileChecks.markDone(run.runId, eTag, file, outcome, deps.now());
  logEvent(log, 'info', 'file checked', {
    ...runFields(run),
    file: file.name,
    rows: outcome.check.rowCount,
    problems: outcome.check.problems,
    ...(outcome.parquet ? { parquetBytes: outcome.parquet.byteCount } : {}),
  });
  return finishIfAllChecked(stored, deps, log);
}

async function finishIfAllChecked(stored: StoredRun, deps: Deps, log: RunLogger): Promise<StoredRun> {
  if (await deps.fileChecks.anyPending(stored.run.runId, stored.run.manifestETag!)) return stored;
  return finishChecks(stored, deps, log);
}

/**
 * Every file is checked: manifest.json with the merged figures, written once, and the run
 * succeeded. Two messages that both find nothing pending write the same manifest.json; the
 * second leaves it as it is.
 */
async function finishChecks(found: StoredRun, deps: Deps, log: RunLogger, heldClaimId?: string): Promise<StoredRun> {
  const eTag = found.run.manifestETag!;
  const [plan, files] = await Promise.all([
    deps.fileChecks.readPlan(found.run.runId, eTag) as Promise<CheckPlan | undefined>,
    deps.fileChecks.listFiles(found.run.runId, eTag),
  ]);
  if (!plan || files.some((file) => file.state !== 'done')) return found;
  // One finisher: the last two files' messages can both find nothing pending. Each claims the
  // run as a landing does (an ETag-conditional save); the one that loses the race stands down
  // (LedgerConflictError); one that fails gives its claim back and its message comes again, and
  // one that dies leaves a claim that runs out, after which the sweeper's revival lands the run
  // again and finds every file checked.
  const heldUntil = landingClaimedByOther(found.run, heldClaimId, deps.now());
  if (heldUntil) {
    logEvent(log, 'info', 'another delivery is finishing this run; standing down', { ...runFields(found.run), claimedUntil: heldUntil.toISOString() });
    return found;
  }
  const stored = await deps.ledger.saveRun(withClaim(found.run, { id: randomUUID(), until: claimUntil(deps) }), found.etag);
  try {
    return await finishClaimed(stored, plan, files, deps, log);
  } catch (thrown) {
    if (thrown instanceof LedgerConflictError) throw thrown;
    // Gives the claim back, with what went wrong, before the message is delivered again: a
    // redelivery would otherwise stand down behind this dead claim, and no message would be left.
    await deps.ledger.saveRun(withoutClaim(noteTransientFailure(stored.run, failureOf(thrown), deps.now()).run), stored.etag).catch((releasing: unknown) =>
      logEvent(log, 'warn', 'could not give back the finishing claim; it runs out on its own', {
        ...runFields(stored.run),
        error: asError(releasing).message,
      }),
    );
    throw thrown;
  }
}

/** What a finisher met, as the run's last error. */
function failureOf(thrown: unknown): { readonly code: string; readonly message: string } {
  const error = asError(thrown);
  return { code: thrown instanceof StorageRequestError ? thrown.code : error.name, message: redactSecrets(`finishing the data check: ${error.message}`) };
}

async function finishClaimed(stored: StoredRun, plan: CheckPlan, files: readonly FileCheckRow[], deps: Deps, log: RunLogger): Promise<StoredRun> {
  const { run } = stored;
  const eTag = run.manifestETag!;
  const outcomes = files.map((file) => file.result as DataFileOutcome);
  const summary = mergeFileResults(outcomes.map((outcome): FileCheckResult => outcome.check));
  const landed: LandedFile[] = files.map((file) => ({
    blob: { name: file.name, partitionValue: file.partitionValue },
    facts: { contentLength: file.byteCount, ...(file.contentMD5 ? { contentMD5: file.contentMD5 } : {}) },
  }));
  const checkedFiles = files.map((file, i) => ({
    name: file.name,
    rowCount: outcomes[i]!.check.rowCount,
    ...(outcomes[i]!.parquet ? { parquet: outcomes[i]!.parquet } : {}),
  }));
  const ours = withDataCheck(buildPublicManifest(run, plan.manifest, landed, plan.copiedAt), checkedFiles, summary);
  await deps.fileChecks.saveSummary(run.runId, eTag, summary);
  const folder = destinationFolder(run, eTag);
  await writeManifestOnce(`${folder}${MANIFEST_FILE_NAME}`, ours, deps, log);
  logEvent(log, 'info', 'data checked; manifest.json written', {
    ...runFields(run),
    rows: summary.rowCount,
    customers: summary.totals.length,
    problems: summary.check.problems,
  });
  const outcome = {
    manifestETag: eTag,
    blobCount: ours.blobCount,
    destinationContainer: deps.destination.containerName,
    destinationFolder: folder,
    bytesCopied: ours.byteCount,
  };
  return recordSucceeded(stored, (current) => toSucceeded(current, outcome, new Date(ours.copiedAt)), deps, log);
}
