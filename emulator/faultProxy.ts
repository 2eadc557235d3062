/**
 * A fault-injecting HTTP proxy in front of Azurite: one loopback port per storage service
 * (blob, queue, table), each forwarding to the matching Azurite port, so that the storage SDKs
 * can be made to see connection resets, 500/503 responses and delays, for robustness tests and
 * chaos runs. Bodies are streamed both ways (never buffered), and the request is forwarded as it
 * came (method, path, query, header names and values, Authorization, x-ms-*), so shared-key and
 * SAS signatures stay valid: they cover the account path, never the host or port.
 *
 * The Host header is forwarded unchanged (Azurite builds the URLs in its responses, such as a
 * listing's ServiceEndpoint or a table's odata.metadata, from it, so they keep pointing at the
 * proxy), with one exception for server-side copies: see `upstreamHostFor`.
 *
 * Faults are decided per request, in the order the requests arrive, by the first rule (in the
 * order added) that matches and fires; a rule with `probability` draws from the proxy's seeded
 * random, so the same seed and the same sequence of requests inject the same faults.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Azurite } from './azurite';
import { seededRandom } from './deterministic';
import { closeServer, listenOnLoopback, LOOPBACK_HOST } from './httpServer';

export type StorageService = 'blob' | 'queue' | 'table';

export type StorageFault =
  /** Destroys the client's connection (TCP reset) without a response; the request never reaches Azurite. */
  | { kind: 'reset' }
  /**
   * An Azure-shaped error response; the request never reaches Azurite. 500/503 are
   * InternalError/ServerBusy; 409 and 412 need the service's `code`, for answers Azurite does not
   * give where Azure does, e.g. 409 PendingCopyOperation (Copy Blob onto a blob whose copy is
   * still pending) or 412 SourceConditionNotMet (Copy Blob whose x-ms-source-if-match no longer holds).
   */
  | { kind: 'status'; status: 500 | 503; retryAfterSeconds?: number }
  | { kind: 'status'; status: 409 | 412; code: string; message?: string }
  /** Holds the request this long, then forwards it (not if the client has given up meanwhile). */
  | { kind: 'delay'; ms: number }
  /**
   * Forwards the request, then changes Azurite's answer before the client sees it: replaces
   * response headers (names any case) and text in the body (the body is then read whole and its
   * Content-Length recomputed). For what Azure reports and Azurite never does, e.g. a copy still
   * pending (`x-ms-copy-status: pending`, `<CopyStatus>pending</CopyStatus>` in a listing: Azurite
   * finishes every copy at once) or a copy whose length or MD5 differs from its source.
   */
  | { kind: 'rewrite'; headers?: Record<string, string>; body?: ReadonlyArray<{ find: string | RegExp; replace: string }> };

export interface FaultRule {
  /** Which requests: by service (derived from which upstream port the proxy fronts), HTTP method, and a path/query pattern. All optional = any. */
  service?: StorageService;
  /** Compared case-insensitively. */
  method?: string;
  /** Matched against the path + query of the incoming request, e.g. `/devstoreaccount1/polls/messages?visibilitytimeout=30`. */
  path?: RegExp;
  fault: StorageFault;
  /** Apply to the next N matching requests (default: every matching request until removed). */
  times?: number;
  /** Or apply at random with this probability per matching request, using the proxy's seeded random. With `times`, at most N of them. */
  probability?: number;
}

export interface InjectedFault {
  service: StorageService;
  kind: StorageFault['kind'];
  method: string;
  /** Path + query of the request, with a SAS signature (`sig=`) redacted. */
  path: string;
}

export interface FaultProxy {
  /** Proxy endpoints: same account path scheme as Azurite (http://127.0.0.1:P/<account>). */
  blobEndpoint(account: string): string;
  queueEndpoint(account: string): string;
  tableEndpoint(account: string): string;
  /** A connection string for the account whose endpoints point at the proxy (same key as Azurite's). */
  connectionString(account: string): string;
  /** Adds a rule after the existing ones; returns a function that removes it (safe to call more than once). */
  addRule(rule: FaultRule): () => void;
  clearRules(): void;
  /** Faults injected so far, in the order they were decided: for figures like "faults injected by kind". */
  injected(): InjectedFault[];
  /** Closes the listening ports, drops client and upstream connections and cancels pending delays. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  azurite: Azurite;
  /** Seed of the random that `probability` rules draw from (default 1): the same seed gives the same chaos. */
  seed?: number;
  /** Called with one line per injected fault (never with headers or a SAS signature). Silent by default. */
  log?: (line: string) => void;
}

const SERVICES: readonly StorageService[] = ['blob', 'queue', 'table'];
const DEFAULT_SEED = 1;

/** Headers that describe one connection, not the request: the proxy's own connections carry their own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect']);

const ERROR_TEXT = {
  503: { code: 'ServerBusy', message: 'The server is currently unable to receive requests. Please retry your request.' },
  500: { code: 'InternalError', message: 'Server encountered an internal error. Please try again after some time.' },
} as const;

/** Azure's messages for the 409/412 codes tests inject (any other code needs its own `message`). */
const CODE_MESSAGES: Readonly<Record<string, string>> = {
  PendingCopyOperation: 'There is currently a pending copy operation.',
  SourceConditionNotMet: 'The source condition specified using HTTP conditional header(s) is not met.',
  ConditionNotMet: 'The condition specified using HTTP conditional header(s) is not met.',
};

interface ActiveRule {
  readonly rule: FaultRule;
  remaining: number;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { azurite, log } = options;
  const random = seededRandom(options.seed ?? DEFAULT_SEED);
  const upstreamPort: Record<StorageService, number> = { blob: azurite.blobPort, queue: azurite.queuePort, table: azurite.tablePort };
  // Keep-alive to Azurite; Node's agent retires an idle socket before the server's Keep-Alive timeout.
  const agent = new Agent({ keepAlive: true });
  let rules: ActiveRule[] = [];
  const injected: InjectedFault[] = [];
  const pendingDelays = new Map<NodeJS.Timeout, ServerResponse>();
  const upstreamRequests = new Set<ClientRequest>();
  let stopped = false;

  const decide = (service: StorageService, request: IncomingMessage): StorageFault | undefined => {
    const method = request.method ?? 'GET';
    const path = request.url ?? '/';
    for (const active of rules) {
      const { rule } = active;
      if (active.remaining <= 0) continue;
      if (rule.service !== undefined && rule.service !== service) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path !== undefined) {
        rule.path.lastIndex = 0; // a /g or /y pattern would otherwise match every other request
        if (!rule.path.test(path)) continue;
      }
      if (rule.probability !== undefined && random() >= rule.probability) continue;
      active.remaining -= 1;
      if (active.remaining <= 0) rules = rules.filter((other) => other !== active);
      const record: InjectedFault = { service, kind: rule.fault.kind, method, path: redactSignature(path) };
      injected.push(record);
      log?.(`fault proxy: ${describeFault(rule.fault)} on ${service} ${method} ${record.path}`);
      return rule.fault;
    }
    return undefined;
  };

  const forward = (service: StorageService, request: IncomingMessage, response: ServerResponse, rewrite?: Extract<StorageFault, { kind: 'rewrite' }>): void => {
    const upstream = httpRequest({
      host: LOOPBACK_HOST,
      port: upstreamPort[service],
      method: request.method,
      path: request.url,
      headers: forwardedHeaders(request, service === 'blob' ? upstreamHostFor(request, azurite.blobPort) : undefined),
      agent,
    });
    upstreamRequests.add(upstream);
    upstream.once('close', () => upstreamRequests.delete(upstream));
    upstream.on('response', (upstreamResponse) => {
      if (rewrite) {
        sendRewritten(upstreamResponse, response, rewrite);
        return;
      }
      response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.statusMessage, endToEnd(upstreamResponse.rawHeaders));
      // Cut off mid-body upstream: cut the client off too, rather than end a short body as if complete.
      upstreamResponse.on('error', () => response.destroy());
      upstreamResponse.on('close', () => {
        if (!upstreamResponse.complete) response.destroy();
      });
      upstreamResponse.pipe(response);
    });
    // Azurite went away or reset the connection: the client sees its connection drop, as it would have directly.
    upstream.on('error', () => response.destroy());
    // The client gave up (or its connection failed): stop the upstream request too.
    response.once('close', () => {
      if (!response.writableFinished) upstream.destroy();
    });
    request.on('error', () => upstream.destroy());
    request.pipe(upstream);
  };

  const handle = (service: StorageService, request: IncomingMessage, response: ServerResponse): void => {
    const fault = stopped ? undefined : decide(service, request);
    if (fault === undefined) {
      forward(service, request, response);
      return;
    }
    switch (fault.kind) {
      case 'reset':
        // Read the request to its end first, so the client is waiting for a response (not still
        // writing, which would surface as EPIPE) when the reset arrives: it sees ECONNRESET.
        afterRequestBody(request, () => resetConnection(response));
        return;
      case 'status':
        afterRequestBody(request, () => sendStorageError(service, request, response, fault));
        return;
      case 'rewrite':
        forward(service, request, response, fault);
        return;
      case 'delay': {
        const timer = setTimeout(() => {
          pendingDelays.delete(timer);
          if (!response.destroyed) forward(service, request, response);
        }, fault.ms);
        pendingDelays.set(timer, response);
        response.once('close', () => {
          clearTimeout(timer);
          pendingDelays.delete(timer);
        });
        return;
      }
    }
  };

  const servers = new Map<StorageService, Server>();
  const ports = new Map<StorageService, number>();
  const closeAll = async (): Promise<void> => {
    stopped = true;
    for (const [timer, response] of pendingDelays) {
      clearTimeout(timer);
      response.destroy();
    }
    pendingDelays.clear();
    for (const upstream of upstreamRequests) upstream.destroy();
    await Promise.allSettled([...servers.values()].map((server) => closeServer(server)));
    agent.destroy();
  };
  try {
    for (const service of SERVICES) {
      // No request timeout: a large upload through the proxy may take as long as it takes.
      const server = createServer({ requestTimeout: 0 }, (request, response) => handle(service, request, response));
      servers.set(service, server);
      ports.set(service, await listenOnLoopback(server));
    }
  } catch (error) {
    await closeAll();
    throw error;
  }

  const endpoint = (service: StorageService, account: string): string => {
    azurite.accountKey(account); // an account Azurite does not serve is a typo: throws RangeError
    return `http://${LOOPBACK_HOST}:${ports.get(service)}/${account}`;
  };
  let stopping: Promise<void> | undefined;

  return {
    blobEndpoint: (account) => endpoint('blob', account),
    queueEndpoint: (account) => endpoint('queue', account),
    tableEndpoint: (account) => endpoint('table', account),
    connectionString: (account) =>
      [
        'DefaultEndpointsProtocol=http',
        `AccountName=${account}`,
        `AccountKey=${azurite.accountKey(account)}`,
        `BlobEndpoint=${endpoint('blob', account)}`,
        `QueueEndpoint=${endpoint('queue', account)}`,
        `TableEndpoint=${endpoint('table', account)}`,
      ].join(';') + ';',
    addRule(rule) {
      validateRule(rule);
      const active: ActiveRule = { rule, remaining: rule.times ?? Number.POSITIVE_INFINITY };
      rules = [...rules, active];
      return () => {
        rules = rules.filter((other) => other !== active);
      };
    },
    clearRules() {
      rules = [];
    },
    injected: () => injected.map((record) => ({ ...record })),
    stop() {
      stopping ??= closeAll();
      return stopping;
    },
  };
}

/**
 * Azurite copies only within one instance, and decides "same instance" by comparing the copy
 * source URL's host (host:port) with the destination request's Host header
 * (BlobHandler.validateCopySource; checked when the source is another account or carries a SAS).
 * Through the proxy the destination request's Host is the proxy's host:port, so a source URL on
 * Azurite's own port would be refused with CannotVerifyCopySource. The proxy and Azurite are one
 * storage instance with two doors, so when the source names the same host the client addressed
 * and Azurite's blob port, the Host is forwarded as the source's host: Azurite then sees the same
 * instance, exactly as if the client had addressed it directly. A source on the proxy's own port
 * already matches (Azurite then reads the source through the proxy); any other source is left for
 * Azurite to refuse as it always would. Host is covered by neither SharedKey nor SAS signatures.
 */
function upstreamHostFor(request: IncomingMessage, azuriteBlobPort: number): string | undefined {
  const copySource = request.headers['x-ms-copy-source'];
  const host = request.headers.host;
  if (typeof copySource !== 'string' || host === undefined) return undefined;
  try {
    const source = new URL(copySource);
    const addressed = new URL(`http://${host}`);
    return source.hostname === addressed.hostname && source.port === String(azuriteBlobPort) ? source.host : undefined;
  } catch {
    return undefined;
  }
}

/** The request's headers as received (names keep their case: Azurite keeps x-ms-meta-* case), minus hop-by-hop ones. */
function forwardedHeaders(request: IncomingMessage, host: string | undefined): string[] {
  const headers = endToEnd(request.rawHeaders);
  if (host === undefined) return headers;
  const withHost: string[] = ['Host', host];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'host') withHost.push(headers[i]!, headers[i + 1]!);
  }
  return withHost;
}

function endToEnd(rawHeaders: readonly string[]): string[] {
  const named = new Set(HOP_BY_HOP);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const token of rawHeaders[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!named.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** Reads (and discards) the rest of the request body, streaming, then calls `then` unless the client went away. */
function afterRequestBody(request: IncomingMessage, then: () => void): void {
  request.once('end', then);
  request.resume();
}

function resetConnection(response: ServerResponse): void {
  const socket = response.socket;
  if (!socket) return;
  // A TCP RST rather than a FIN: what a dropped connection looks like to the client (ECONNRESET).
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** Azurite's answer with the rule's headers and body replacements applied. */
function sendRewritten(upstreamResponse: IncomingMessage, response: ServerResponse, rewrite: Extract<StorageFault, { kind: 'rewrite' }>): void {
  const chunks: Buffer[] = [];
  upstreamResponse.on('data', (chunk: Buffer) => chunks.push(chunk));
  upstreamResponse.on('error', () => response.destroy());
  upstreamResponse.on('end', () => {
    if (response.destroyed) return;
    let body = Buffer.concat(chunks);
    if (rewrite.body?.length) {
      let text = body.toString('utf8');
      for (const { find, replace } of rewrite.body) text = typeof find === 'string' ? text.split(find).join(replace) : text.replace(find, replace);
      body = Buffer.from(text, 'utf8');
    }
    const replaced = new Set(Object.keys(rewrite.headers ?? {}).map((name) => name.toLowerCase()));
    const headers: string[] = [];
    const kept = endToEnd(upstreamResponse.rawHeaders);
    for (let i = 0; i + 1 < kept.length; i += 2) {
      const name = kept[i]!.toLowerCase();
      if (replaced.has(name) || (rewrite.body?.length && (name === 'content-length' || name === 'transfer-encoding' || name === 'content-md5'))) continue;
      headers.push(kept[i]!, kept[i + 1]!);
    }
    for (const [name, value] of Object.entries(rewrite.headers ?? {})) headers.push(name, value);
    if (rewrite.body?.length) headers.push('Content-Length', String(body.length));
    response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.statusMessage, headers);
    response.end(body);
  });
}

function sendStorageError(service: StorageService, request: IncomingMessage, response: ServerResponse, fault: Extract<StorageFault, { kind: 'status' }>): void {
  if (response.destroyed) return;
  const status = fault.status;
  const retryAfterSeconds = 'retryAfterSeconds' in fault ? fault.retryAfterSeconds : undefined;
  const { code, message } =
    'code' in fault ? { code: fault.code, message: fault.message ?? CODE_MESSAGES[fault.code] ?? fault.code } : ERROR_TEXT[fault.status];
  const requestId = randomUUID();
  const fullMessage = `${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}`;
  const body =
    service === 'table'
      ? JSON.stringify({ 'odata.error': { code, message: { lang: 'en-US', value: fullMessage } } })
      : `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${fullMessage}</Message></Error>`;
  const headers: Record<string, string | number> = {
    'Content-Type': service === 'table' ? 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8' : 'application/xml',
    'x-ms-error-code': code,
    'x-ms-request-id': requestId,
  };
  const version = request.headers['x-ms-version'];
  if (typeof version === 'string') headers['x-ms-version'] = version;
  const clientRequestId = request.headers['x-ms-client-request-id'];
  if (typeof clientRequestId === 'string') headers['x-ms-client-request-id'] = clientRequestId;
  if (retryAfterSeconds !== undefined) headers['Retry-After'] = retryAfterSeconds;
  // A HEAD response has no body (the SDK then reads the error code from x-ms-error-code).
  const withBody = request.method !== 'HEAD';
  headers['Content-Length'] = withBody ? Buffer.byteLength(body) : 0;
  response.writeHead(status, headers);
  response.end(withBody ? body : undefined);
}

function validateRule(rule: FaultRule): void {
  const { fault } = rule;
  if (rule.times !== undefined && !(Number.isInteger(rule.times) && rule.times > 0)) {
    throw new RangeError(`fault rule times must be a positive integer, got ${rule.times}`);
  }
  if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
    throw new RangeError(`fault rule probability must be between 0 and 1, got ${rule.probability}`);
  }
  if (rule.service !== undefined && !SERVICES.includes(rule.service)) {
    throw new RangeError(`fault rule service must be one of ${SERVICES.join(', ')}, got ${String(rule.service)}`);
  }
  switch (fault.kind) {
    case 'reset':
      return;
    case 'status':
      if (fault.status === 409 || fault.status === 412) {
        if (typeof fault.code !== 'string' || !/^[A-Za-z]+$/.test(fault.code))
          throw new RangeError(`a ${fault.status} status fault needs the service's error code, got ${String(fault.code)}`);
        return;
      }
      if (fault.status !== 500 && fault.status !== 503)
        throw new RangeError(`a status fault is 500, 503, 409 or 412, got ${String((fault as { status: unknown }).status)}`);
      if (
        'retryAfterSeconds' in fault &&
        fault.retryAfterSeconds !== undefined &&
        !(Number.isInteger(fault.retryAfterSeconds) && fault.retryAfterSeconds >= 0)
      ) {
        throw new RangeError(`retryAfterSeconds must be a non-negative integer, got ${String(fault.retryAfterSeconds)}`);
      }
      return;
    case 'delay':
      if (!(Number.isFinite(fault.ms) && fault.ms >= 0)) throw new RangeError(`a delay fault needs a non-negative ms, got ${fault.ms}`);
      return;
    case 'rewrite':
      if (!fault.headers && !fault.body?.length) throw new RangeError('a rewrite fault needs headers or body replacements');
      return;
    default:
      throw new RangeError(`unknown fault kind ${String((fault as { kind: unknown }).kind)}`);
  }
}

function describeFault(fault: StorageFault): string {
  switch (fault.kind) {
    case 'reset':
      return 'reset';
    case 'status':
      if ('code' in fault) return `${fault.status} ${fault.code}`;
      return `${fault.status}${fault.retryAfterSeconds === undefined ? '' : ` (Retry-After ${fault.retryAfterSeconds} s)`}`;
    case 'delay':
      return `delay ${fault.ms} ms`;
    case 'rewrite':
      return `rewrite ${[...Object.keys(fault.headers ?? {}), ...(fault.body?.length ? ['body'] : [])].join(', ')}`;
  }
}

/** A SAS signature is a secret; the other SAS fields (expiry, permissions) are not, and help a reader. */
function redactSignature(pathAndQuery: string): string {
  return pathAndQuery.replace(/([?&]sig=)[^&#]*/gi, '$1REDACTED');
}
