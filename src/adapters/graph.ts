/**
 * Microsoft Graph's partner billing export API over fetch. The bearer token goes only to the
 * origin of GRAPH_BASE_URL: a Location, navigation link or redirect to any other origin is
 * refused before a request is made. Transient failures (429, 5xx, network, timeout) are retried
 * a few times in process, honouring Retry-After; longer waits are left to the caller, which
 * schedules them on the queue instead of sleeping.
 */
import type { TokenCredential } from '@azure/identity';
import { GraphRequestError, asError } from '../errors';
import { backoffDelaySeconds, parseRetryAfter } from '../core/polling';
import { redactSecrets, redactUrl } from '../core/redact';
import type { AttributeSet, BillingPeriod } from '../core/settings';

export interface ExportRequestBody {
  readonly currencyCode: string;
  readonly billingPeriod: BillingPeriod;
  readonly attributeSet: AttributeSet;
}

export interface GraphResponse {
  readonly body: unknown;
  readonly retryAfterSeconds?: number;
}

export interface GraphClient {
  /** POSTs the unbilled usage export; returns the operation URL from `Location`. */
  startExport(body: ExportRequestBody): Promise<{ readonly operationUrl: string }>;
  /** GETs an operation or manifest URL on the Graph origin. */
  get(url: string): Promise<GraphResponse>;
}

export interface GraphClientOptions {
  readonly baseUrl: string;
  readonly credential: TokenCredential;
  readonly fetch?: typeof fetch;
  /** Per attempt. @default 30000 */
  readonly timeoutMs?: number;
  /** Attempts for a transient failure before giving it to the caller. @default 3 */
  readonly attempts?: number;
  /** The longest in-process wait between attempts; a longer Retry-After goes to the caller. @default 30 */
  readonly maxInProcessWaitSeconds?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const MAX_REDIRECTS = 3;

export function createGraphClient(options: GraphClientOptions): GraphClient {
  const base = new URL(options.baseUrl);
  const scope = `${base.origin}/.default`;
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
    if (parsed.origin !== base.origin) {
      throw permanent(
        `${what} '${redactUrl(parsed.href)}' is not on the Graph origin ${base.origin}; refusing to send it the token`,
        'ForeignOrigin',
      );
    }
    return parsed;
  }

  async function send(method: 'GET' | 'POST', url: URL, body?: string): Promise<Response> {
    let target = url;
    for (let redirects = 0; ; redirects++) {
      const token = await options.credential.getToken(scope);
      if (!token) throw permanent(`no token for ${scope} from the managed identity`, 'NoToken');
      const response = await doFetch(target, {
        method,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          authorization: `Bearer ${token.token}`,
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

  /** One call, retried in process while the wait is short. */
  async function call(method: 'GET' | 'POST', url: URL, body?: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let failure: GraphRequestError;
      try {
        const response = await send(method, url, body);
        if (response.ok) return response;
        failure = await errorFromResponse(response, method, url);
      } catch (thrown) {
        if (thrown instanceof GraphRequestError) throw thrown;
        failure = networkError(thrown, method, url, timeoutMs);
      }
      const hint = failure.details.retryAfterSeconds;
      const waitSeconds = Math.max(hint ?? 0, backoffDelaySeconds(attempt, { initialDelaySeconds: 1, maxDelaySeconds: maxWaitSeconds, deadlineSeconds: Infinity }, Math.random));
      if (!failure.transient || attempt + 1 >= attempts || waitSeconds > maxWaitSeconds) throw failure;
      await sleep(waitSeconds * 1000);
    }
  }

  return {
    async startExport(request) {
      const url = onGraphOrigin(`${base.href.replace(/\/+$/, '')}/reports/partners/billing/usage/unbilled/export`, 'export URL');
      const response = await call('POST', url, JSON.stringify(request));
      await response.body?.cancel();
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
      const response = await call('GET', url);
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw permanent(`GET ${redactUrl(url.href)} answered ${response.status} with a body that is not JSON: ${redactSecrets(text.slice(0, 200))}`, 'InvalidJson', response.status);
      }
      const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), new Date());
      return retryAfterSeconds === undefined ? { body } : { body, retryAfterSeconds };
    },
  };
}

function permanent(message: string, code: string, status?: number): GraphRequestError {
  return new GraphRequestError(message, { code, transient: false, ...(status === undefined ? {} : { status }) });
}

/** 408, 429 and 5xx can pass; any other 4xx will not, and Graph's own message says why. */
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
  const transient = response.status === 408 || response.status === 429 || response.status >= 500;
  const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), new Date());
  return new GraphRequestError(
    redactSecrets(`${method} ${redactUrl(url.href)} failed with ${response.status} ${code}${detail ? `: ${detail}` : ''}`),
    { status: response.status, code, transient, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
  );
}

function networkError(thrown: unknown, method: string, url: URL, timeoutMs: number): GraphRequestError {
  const error = asError(thrown);
  const timedOut = error.name === 'TimeoutError' || error.name === 'AbortError';
  const reason = timedOut ? `no answer within ${timeoutMs} ms` : `${error.message}${error.cause ? ` (${asError(error.cause).message})` : ''}`;
  return new GraphRequestError(redactSecrets(`${method} ${redactUrl(url.href)} failed: ${reason}`), {
    code: timedOut ? 'Timeout' : 'NetworkError',
    transient: true,
  });
}
