/**
 * The app's named errors. Each carries the data a caller needs to decide what to do
 * (retry, fail the run, poison the message) and a message that names the thing and what
 * was expected. Messages never contain tokens or SAS signatures: callers pass values
 * through `redactSecrets` before they reach an error. Every error class of the app lives here:
 * this file is bundled as a chunk of its own (scripts/chunks.mjs), so `instanceof` holds in every
 * chunk; it imports nothing, so the entry point stays free of SDK code. Wrapping errors pass the
 * original as `cause` (ES2022 ErrorOptions) instead of copying it into their text.
 */
/** One or more app settings are missing or malformed; lists every problem at once. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid app settings:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        'Set them in the Function App configuration, in the environment, or in local.settings.json (Values).',
    );
  }
}

/** A queue message that is not a poll message this app wrote. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/** A manifest that contradicts itself, points somewhere not allowed, or names unsafe blobs. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid export manifest: ${problems.join('; ')}`);
  }
}

/**
 * A failed call to Graph, or to the managed identity for its token. `transient` says whether
 * waiting and trying again can help (429, 5xx, network, timeout, a body cut short, an identity
 * that may still come up); `retryAfterSeconds` is Graph's own hint when it gave one. Codes the
 * callers know: `IdentityUnavailable` and `AuthenticationFailed` (no token: worth a few tries,
 * not hours), `InvalidJson` (a body that is not JSON: a proxy may have cut one answer short).
 */
export class GraphRequestError extends Error {
  override readonly name = 'GraphRequestError';
  constructor(
    message: string,
    readonly details: {
      readonly status?: number;
      readonly code: string;
      readonly transient: boolean;
      readonly retryAfterSeconds?: number;
      /**
       * A POST whose fate is unknown: it timed out, was reset or answered 500/502/504, so Graph
       * may have carried it out (for the export POST: started an export the caller never heard of).
       */
      readonly mayHaveBeenTaken?: boolean;
    },
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get code(): string {
    return this.details.code;
  }
  get transient(): boolean {
    return this.details.transient;
  }
}

/**
 * A failed call to Azure Storage (blobs, queues, tables), classified by the adapter that made it.
 * `code` is the service's error code (or `Http<status>`, `Timeout`, `NetworkError`); `transient`
 * follows the one status rule (./core/transientStatus.ts); `sourceRefused` says the copy source
 * refused its SAS (expired, or not allowed), which a fresh SAS may cure. The message and `cause`
 * are stripped of request URLs, so no SAS travels with them.
 */
export class StorageRequestError extends Error {
  override readonly name = 'StorageRequestError';
  constructor(
    message: string,
    readonly details: {
      readonly code: string;
      readonly status?: number;
      readonly transient: boolean;
      readonly sourceRefused: boolean;
    },
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get code(): string {
    return this.details.code;
  }
  get status(): number | undefined {
    return this.details.status;
  }
  get transient(): boolean {
    return this.details.transient;
  }
  get sourceRefused(): boolean {
    return this.details.sourceRefused;
  }
  /** The same failure, its message prefixed with what it was about (a file's name). */
  about(subject: string): StorageRequestError {
    return new StorageRequestError(`${subject}: ${this.message}`, this.details, { cause: this });
  }
}

/** A ledger row that is not what this app writes there (./core/runRecord.ts names the row and field). */
export class LedgerRowError extends Error {
  override readonly name = 'LedgerRowError';
}

/** Someone else wrote the ledger row since it was read (./adapters/ledger.ts). */
export class LedgerConflictError extends Error {
  override readonly name = 'LedgerConflictError';
}

/** The code a run fails with when copies are healthy but not finished after every allowed wait. */
export const COPIES_PENDING = 'CopiesPending';
/** Azure's code for Copy Blob onto a blob whose previous copy is still pending (409). */
export const PENDING_COPY_OPERATION = 'PendingCopyOperation';
/** Azure's code for Copy Blob whose source conditions (x-ms-source-if-match) no longer hold (412). */
export const SOURCE_CONDITION_NOT_MET = 'SourceConditionNotMet';

/**
 * A copy onto a file was already pending (from an earlier landing) and brought another version
 * than the one this landing verified against: the file is copied again by a later landing.
 */
export class CopyPendingElsewhereError extends Error {
  override readonly name = 'CopyPendingElsewhereError';
  readonly code = PENDING_COPY_OPERATION;
}

/** The operation no longer reports success while its files were being landed. */
export class OperationChangedError extends Error {
  override readonly name = 'OperationChangedError';
  readonly code = 'OperationChanged';
}

/** A copied blob that does not match its source. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

/**
 * A landed file whose data cannot be read: it does not decompress, or a line is not JSON (or,
 * for Parquet, holds a value its typed column cannot keep). Names the file and, when known, the
 * line; the run fails without manifest.json.
 */
export class DataFileError extends Error {
  override readonly name = 'DataFileError';
  readonly code = 'InvalidDataFile';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`'${file}'${line === undefined ? '' : ` line ${line}`} ${problem}`, options);
  }
}

/** Turns anything thrown into an Error, so callers can read `.message` safely. */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
