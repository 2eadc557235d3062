/**
 * Microsoft Graph's partner billing export API over fetch. The token is always for Microsoft
 * Graph (GRAPH_TOKEN_SCOPE), whatever host GRAPH_BASE_URL names, and it goes only to the origin
 * of GRAPH_BASE_URL. A Location, navigation link or redirect on Graph's own origin, as a proxy in
 * front of Graph passes them through, is followed through GRAPH_BASE_URL's origin with the same
 * path; any other origin is refused before a request is made.
 *
 * Transient failures are retried a few times in process, honouring Retry-After; longer waits are
 * left to the caller, which schedules them on the queue instead of sleeping. The export POST is
 * repeated in process only when Graph surely did not take it (429, 503, connection refused);
 * after an ambiguous failure (timeout, reset, 500/502/504) Graph may have started an export, so
 * the caller decides later, from the ledger.
 */
import { AggregateAuthenticationError, AuthenticationError, AuthenticationRequiredError, type TokenCredential } from '@azure/identity';
import { GraphRequestError, asError } from '../errors';
import { backoffDelaySeconds, parseRetryAfter } from '../core/polling';
import { redactSecrets, redactUrl } from '../core/redact';
import { isTransientStatus } from '../core/transientStatus';
import { DEFAULT_GRAPH_TOKEN_SCOPE } from '../core/settings';
import type { ExportKind, ExportRequest } from '../core/naming';

/**
 * Each kind's export action, under /reports/partners/billing (Graph's documented short form):
 * https://learn.microsoft.com/graph/api/partners-billing-billedusage-export and its siblings.
 */
export const EXPORT_ACTION_PATHS: Readonly<Record<ExportKind, string>> = {
  'unbilled-usage': 'usage/unbilled/export',
  'unbilled-reconciliation': 'reconciliation/unbilled/export',
  'billed-usage': 'usage/billed/export',
  'billed-reconciliation': 'reconciliation/billed/export',
};

export interface GraphResponse {
  readonly body: unknown;
  readonly retryAfterSeconds?: number;
}

export interface GraphClient {
  /** POSTs the kind's export with its body; returns the operation URL from `Location`. */
  startExport(request: ExportRequest): Promise<{ readonly operationUrl: string }>;
  /** GETs an operation or manifest URL on the Graph origin. */
  get(url: string): Promise<GraphResponse>;
}

export interface GraphClientOptions {
  readonly baseUrl: string;
  /** The one scope the token is asked for. @default https://graph.microsoft.com/.default */
  readonly tokenScope?: string;
  readonly credential: TokenCredential;
  readonly fetch?: typeof fetch;
  /** Per attempt, from the request until the whole body has arrived. @default 30000 */
  readonly timeoutMs?: number;
  /** Attempts for a transient failure before giving it to the caller. @default 3 */
  readonly attempts?: number;
  /** The longest in-process wait between attempts; a longer Retry-After goes to the caller. @default 30 */
  readonly maxInProcessWaitSeconds?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Microsoft Graph's own origin: where Graph's Location headers and navigation links point. */
export const GRAPH_ORIGIN = 'https://graph.microsoft.com';

const MAX_REDIRECTS = 3;

/** Statuses that say the request was not taken: repeating a POST cannot start a second export. */
const NOT_ACCEPTED_STATUSES = new Set([429, 503]);

export function createGraphClient(options: GraphClientOptions): GraphClient {
  const base = new URL(options.baseUrl);
  const scope = options.tokenScope ?? DEFAULT_GRAPH_TOKEN_SCOPE;
  // Graph's paths start at its version segment; a gateway may mount Graph under a prefix.
  const graphRootPrefix = base.pathname.replace(/\/+$/, '').replace(/\/(v1\.0|beta)$/, '');
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const attempts = options.attempts ?? 3;
  const maxWaitSeconds = options.maxInProcessWaitSeconds ?? 30;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  /** Only URLs on the Graph origin ever receive the token. */
  function onGraphOrigin(url: string, what: string): URL {
    let parsed: URL;
    try {
      parsed = new URL(url, base);
    } catch {
      throw permanent(`${what} '${redactUrl(url)}' is not a URL`, 'InvalidUrl');
    }
    // Credentials in a URL are never followed (fetch refuses them anyway, quoting them in its error).
    if (parsed.username !== '' || parsed.password !== '')
      throw permanent(`${what} '${redactUrl(parsed.href)}' carries credentials: expected a URL without user information`, 'InvalidUrl');
    if (parsed.origin === base.origin) return parsed;
    if (parsed.origin === GRAPH_ORIGIN) {
      // A proxy passed Graph's own URL through: reach it the way the app reaches Graph. The path
      // is set, never parsed against the origin: '//host/...' must not become another host.
      const throughBase = new URL(base.origin);
      throughBase.pathname = `${graphRootPrefix}${parsed.pathname}`;
      throughBase.search = parsed.search;
      return throughBase;
    }
    throw permanent(`${what} '${redactUrl(parsed.href)}' is not on the Graph origin ${base.origin}; refusing to send it the token`, 'ForeignOrigin');
  }

  async function bearerToken(): Promise<string> {
    let token;
    try {
      token = await options.credential.getToken(scope);
    } catch (thrown) {
      throw identityError(thrown, scope);
    }
    if (!token) throw new GraphRequestError(`the managed identity returned no token for ${scope}`, { code: 'IdentityUnavailable', transient: true });
    return token.token;
  }

  async function send(method: 'GET' | 'POST', url: URL, signal: AbortSignal, body?: string): Promise<Response> {
    let target = url;
    for (let redirects = 0; ; redirects++) {
      const token = await bearerToken();
      const response = await doFetch(target, {
        method,
        redirect: 'manual',
        signal,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'client-request-id': crypto.randomUUID(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
      });
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || response.status === 304 || !location) return response;
      await response.body?.cancel();
      if (redirects >= MAX_REDIRECTS) throw permanent(`more than ${MAX_REDIRECTS} redirects from ${redactUrl(url.href)}`, 'TooManyRedirects');
      target = onGraphOrigin(new URL(location, target).href, 'redirect');
    }
  }

  /**
   * One call with its body read inside the attempt (the timeout covers a body that stalls after
   * the headers), retried in process while the wait is short and repeating is safe.
   */
  async function call(method: 'GET' | 'POST', url: URL, body?: string): Promise<{ readonly response: Response; readonly text: string }> {
    for (let attempt = 0; ; attempt++) {
      let failure: GraphRequestError;
      let surelyNotAccepted: boolean;
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const response = await send(method, url, signal, body);
        if (response.ok) {
          if (method === 'GET') return { response, text: await response.text() };
          await response.body?.cancel();
          return { response, text: '' };
        }
        failure = await errorFromResponse(response, method, url);
        surelyNotAccepted = NOT_ACCEPTED_STATUSES.has(response.status);
      } catch (thrown) {
        if (thrown instanceof GraphRequestError) throw thrown;
        failure = networkError(thrown, method, url, timeoutMs);
        surelyNotAccepted = connectionRefused(thrown);
      }
      const hint = failure.details.retryAfterSeconds;
      const waitSeconds = Math.max(
        hint ?? 0,
        backoffDelaySeconds(attempt, { initialDelaySeconds: 1, maxDelaySeconds: maxWaitSeconds, deadlineSeconds: Infinity }, Math.random),
      );
      const safeToRepeat = method === 'GET' || surelyNotAccepted;
      if (!failure.transient || !safeToRepeat || attempt + 1 >= attempts || waitSeconds > maxWaitSeconds) {
        throw method === 'POST' && failure.transient && !surelyNotAccepted
          ? new GraphRequestError(failure.message, { ...failure.details, mayHaveBeenTaken: true }, { cause: failure.cause })
          : failure;
      }
      await sleep(waitSeconds * 1000);
    }
  }

  return {
    async startExport(request) {
      const url = onGraphOrigin(`${base.href.replace(/\/+$/, '')}/reports/partners/billing/${EXPORT_ACTION_PATHS[request.kind]}`, 'export URL');
      // An unknown or too old invoice may be refused here (400 with Graph's reason) or fail the
      // operation later: either way the run fails with Graph's own code and message.
      const { response } = await call('POST', url, JSON.stringify(request.body));
      const location = response.headers.get('location');
      if (response.status !== 202 || !location) {
        throw permanent(
          `POST ${redactUrl(url.href)} answered ${response.status}${location ? '' : ' without a Location header'}: expected 202 Accepted with Location`,
          'UnexpectedResponse',
        );
      }
      return { operationUrl: onGraphOrigin(location, 'operation Location').href };
    },

    async get(target) {
      const url = onGraphOrigin(target, 'URL');
      const { response, text } = await call('GET', url);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        // Transient: a proxy can cut one answer short; the caller bounds how often it asks again.
        throw new GraphRequestError(
          `GET ${redactUrl(url.href)} answered ${response.status} with a body that is not JSON: ${redactSecrets(text.slice(0, 200))}`,
          { code: 'InvalidJson', transient: true, status: response.status },
        );
      }
      const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), new Date());
      return retryAfterSeconds === undefined ? { body } : { body, retryAfterSeconds };
    },
  };
}

/**
 * A credential that gives no token: the managed identity is missing, names an identity that is
 * not assigned, or Entra ID refused (AADSTS). Transient, because an identity can still come up
 * (a new assignment, an endpoint restarting), but the caller gives it only a few tries.
 * DefaultAzureCredential reports every credential it tried; the managed identity's answer is the
 * one that matters in Azure, so it comes first.
 */
function identityError(thrown: unknown, scope: string): GraphRequestError {
  const error = asError(thrown);
  // By name as well: a bundle can hold two copies of @azure/identity.
  const causes =
    error instanceof AggregateAuthenticationError || error.name === 'AggregateAuthenticationError'
      ? (error as AggregateAuthenticationError).errors.map(asError)
      : [error];
  const refused = causes.some(
    (cause) =>
      cause instanceof AuthenticationError ||
      cause instanceof AuthenticationRequiredError ||
      cause.name === 'AuthenticationError' ||
      cause.name === 'AuthenticationRequiredError',
  );
  const managedIdentity = causes.filter((cause) => cause.message.startsWith('ManagedIdentityCredential'));
  const detail = (managedIdentity.length > 0 ? managedIdentity : causes).map((cause) => cause.message.replace(/\s+/g, ' ').trim()).join(' | ');
  const message = `the managed identity ${refused ? 'was refused' : 'could not provide'} a token for ${scope}: ${detail.slice(0, 1000)}`;
  return new GraphRequestError(redactSecrets(message), { code: refused ? 'AuthenticationFailed' : 'IdentityUnavailable', transient: true }, { cause: error });
}

function permanent(message: string, code: string, status?: number): GraphRequestError {
  return new GraphRequestError(message, { code, transient: false, ...(status === undefined ? {} : { status }) });
}

/** Transient by the one status rule (../core/transientStatus.ts); Graph's own message says why. */
async function errorFromResponse(response: Response, method: string, url: URL): Promise<GraphRequestError> {
  const text = await response.text().catch(() => '');
  let code = `Http${response.status}`;
  let detail = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') detail = parsed.error.message;
  } catch {
    // Not JSON: keep the start of the text.
  }
  const transient = isTransientStatus(response.status);
  const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), new Date());
  return new GraphRequestError(redactSecrets(`${method} ${redactUrl(url.href)} failed with ${response.status} ${code}${detail ? `: ${detail}` : ''}`), {
    status: response.status,
    code,
    transient,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/** fetch failed before the request left: nothing listened, so Graph cannot have taken it. */
function connectionRefused(thrown: unknown): boolean {
  const cause = asError(thrown).cause as { code?: unknown } | undefined;
  return cause?.code === 'ECONNREFUSED';
}

function networkError(thrown: unknown, method: string, url: URL, timeoutMs: number): GraphRequestError {
  const error = asError(thrown);
  const timedOut = error.name === 'TimeoutError' || error.name === 'AbortError';
  const reason = timedOut ? `no answer within ${timeoutMs} ms` : `${error.message}${error.cause ? ` (${asError(error.cause).message})` : ''}`;
  return new GraphRequestError(
    redactSecrets(`${method} ${redactUrl(url.href)} failed: ${reason}`),
    {
      code: timedOut ? 'Timeout' : 'NetworkError',
      transient: true,
    },
    { cause: error },
  );
}
