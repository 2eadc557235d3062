/**
 * The app's named errors. Each carries the data a caller needs to decide what to do
 * (retry, fail the run, poison the message) and a message that names the thing and what
 * was expected. Messages never contain tokens or SAS signatures: callers pass values
 * through `redactSecrets` before they reach an error.
 */
import type { RestError } from '@azure/core-rest-pipeline';

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
    },
  ) {
    super(message);
  }
  get code(): string {
    return this.details.code;
  }
  get transient(): boolean {
    return this.details.transient;
  }
}

/** Someone else wrote the ledger row since it was read (./adapters/ledger.ts). */
export class LedgerConflictError extends Error {
  override readonly name = 'LedgerConflictError';
}

/** The code of the destination's settleFolder error when copies are healthy but not finished yet. */
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

/** A copied blob that does not match its source. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

/** Turns anything thrown into an Error, so callers can read `.message` safely. */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

/**
 * Whether a storage call failed with the Azure SDK's RestError. By name, as the SDK's own
 * isRestError does: the SDK clients are bundled in a file of their own (scripts/bundle.mjs),
 * with their own copy of the class, and the entry point does not load the SDK at all.
 */
export function isRestError(thrown: unknown): thrown is RestError {
  return thrown instanceof Error && thrown.name === 'RestError';
}
