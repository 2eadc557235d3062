/**
 * Storage failures, classified where they arise: every storage adapter (destination, ledger,
 * poll queue, seen events) turns what the SDK throws into a StorageRequestError, so nothing above the
 * adapters looks at the SDK's RestError. The SDK's error keeps its request (with the SAS, or a
 * SharedKey signature in its headers) on a hidden property; the cause kept here is a copy
 * without it.
 */
import { StorageRequestError, asError } from '../errors';
import { redactSecrets, redactUrl } from '../core/redact';
import { isTransientStatus } from '../core/transientStatus';

/**
 * What storage answers when a copy source's SAS is refused: Azure says AuthenticationFailed,
 * Azurite AuthorizationFailure, and a copy whose source cannot be read CannotVerifyCopySource.
 * A fresh SAS may cure it; if the cause is permanent (a firewall, the destination's copy scope)
 * the landing's attempts run out.
 */
const SOURCE_REFUSAL_CODES = new Set(['AuthenticationFailed', 'AuthorizationFailure', 'CannotVerifyCopySource']);

interface SdkRestError extends Error {
  readonly code?: string;
  readonly statusCode?: number;
  readonly response?: { readonly headers: { get(name: string): string | undefined } };
  readonly request?: { readonly url?: unknown };
}

/**
 * By name, as the SDK's own isRestError does: the SDK clients are bundled in a chunk of their
 * own (scripts/chunks.mjs), and the blob, queue and table packages may each carry a copy.
 */
function isSdkRestError(thrown: unknown): thrown is SdkRestError {
  return thrown instanceof Error && thrown.name === 'RestError';
}

export interface StorageErrorOptions {
  /** The call read a copy source through its SAS (Get Blob Properties on the source, Copy Blob), so a refusal may be the SAS's. */
  readonly copySource?: boolean;
  /** What the call was about (a file's name): a storage failure's message is prefixed with it. */
  readonly about?: string;
}

/**
 * The StorageRequestError for anything a storage call threw (a plain Error for what is not a storage failure).
 * A HEAD request's error has no body, so its service code comes from the x-ms-error-code header.
 */
export function storageErrorFrom(thrown: unknown, options: StorageErrorOptions = {}): Error {
  const error = classify(thrown, options.copySource === true);
  return options.about !== undefined && error instanceof StorageRequestError ? error.about(options.about) : error;
}

/**
 * The classified error, and whether the service answered one of `statuses` (then the error is a
 * StorageRequestError). `thrown` may be classified already (storageErrorFrom with options).
 */
export function failure(
  thrown: unknown,
  ...statuses: number[]
): { readonly is: true; readonly error: StorageRequestError } | { readonly is: false; readonly error: Error } {
  const error = storageErrorFrom(thrown);
  return error instanceof StorageRequestError && statuses.includes(error.status ?? 0) ? { is: true, error } : { is: false, error };
}

function classify(thrown: unknown, copySource: boolean): Error {
  if (thrown instanceof StorageRequestError) return thrown;
  if (isSdkRestError(thrown)) {
    const status = thrown.statusCode;
    const code = thrown.code ?? thrown.response?.headers.get('x-ms-error-code') ?? (status ? `Http${status}` : 'NetworkError');
    const message = redactSecrets(thrown.message.trim() || `${code}${status ? ` (HTTP ${status})` : ''}`);
    // The request's URL without its query (no SAS), so a reader can say which endpoint failed.
    const url = typeof thrown.request?.url === 'string' ? redactUrl(thrown.request.url) : undefined;
    const cause = Object.assign(new Error(message), {
      name: 'RestError',
      code,
      ...(status === undefined ? {} : { statusCode: status }),
      ...(url ? { url } : {}),
    });
    const sourceRefused = copySource && SOURCE_REFUSAL_CODES.has(code);
    return new StorageRequestError(
      message,
      { code, ...(status === undefined ? {} : { status }), transient: isTransientStatus(status) || sourceRefused, sourceRefused },
      { cause },
    );
  }
  const error = asError(thrown);
  // A call past its deadline: a transient failure like a dropped connection.
  if (error.name === 'AbortError' || error.name === 'TimeoutError') {
    return new StorageRequestError(
      `no answer within the call's deadline: ${redactSecrets(error.message)}`,
      { code: 'Timeout', transient: true, sourceRefused: false },
      { cause: error },
    );
  }
  // Not the SDK's: a bug or an unexpected failure, passed on stripped of secrets (and so without
  // the original as its cause, whose text may quote a SAS).
  return new Error(redactSecrets(error.message));
}

/** Runs one storage call, classifying what it throws. */
export async function classified<T>(call: () => Promise<T>, options: StorageErrorOptions = {}): Promise<T> {
  try {
    return await call();
  } catch (thrown) {
    throw storageErrorFrom(thrown, options);
  }
}
