/**
 * What the CLI says when a command could not do its work: one sentence naming the endpoint
 * (origin and path only: never a key, a SAS or a token) and what to check, never a stack.
 */
import { redactSecrets, redactUrl } from '../src/core/redact';
import type { Settings, StorageConnection } from '../src/core/settings';

/** The exit codes the README lists. */
export const EXIT = { ok: 0, runFailed: 1, usage: 2, unavailable: 3 } as const;

/** Node's network error codes, as they reach us on an SDK error or its cause. */
const NETWORK_PROBLEMS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed',
};

/** Storage answers that mean "the thing is not there" or "you may not": settings, not code. */
const STORAGE_PROBLEMS: Readonly<Record<string, string>> = {
  ContainerNotFound: 'the container does not exist',
  QueueNotFound: 'the queue does not exist',
  TableNotFound: 'the table does not exist',
  ResourceNotFound: 'the resource does not exist',
  AuthenticationFailed: 'the account key or token was refused',
  AuthorizationFailure: 'the identity may not do this',
  AuthorizationPermissionMismatch: 'the identity lacks the role for this',
  InvalidResourceName: 'a name is not valid for storage',
  AccountIsDisabled: 'the account is disabled',
};

interface ErrorFacts {
  code?: string;
  statusCode?: number;
  url?: string;
  message: string;
}

/** The first code, status and URL found on the error or its causes. */
function factsOf(error: unknown): ErrorFacts {
  const facts: ErrorFacts = { message: error instanceof Error ? error.message : String(error) };
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const entry = current as { code?: unknown; statusCode?: unknown; request?: { url?: unknown }; url?: unknown; cause?: unknown; errors?: unknown };
    if (facts.code === undefined && typeof entry.code === 'string') facts.code = entry.code;
    if (facts.statusCode === undefined && typeof entry.statusCode === 'number') facts.statusCode = entry.statusCode;
    if (facts.url === undefined && typeof entry.request?.url === 'string') facts.url = entry.request.url;
    if (facts.url === undefined && typeof entry.url === 'string') facts.url = entry.url;
    current = entry.cause ?? (Array.isArray(entry.errors) ? entry.errors[0] : undefined);
  }
  return facts;
}

/** The settings whose endpoints `url` is under, to say which to check. */
function settingFor(url: string, settings: Settings | undefined, env: Record<string, string | undefined>): string | undefined {
  if (!settings) return undefined;
  const target = normalised(url);
  if (target === undefined) return undefined;
  const owners: Array<[string, string[]]> = [
    ['AzureWebJobsStorage', storageEndpoints(settings.appStorage)],
    ['PARTNER_STORAGE', storageEndpoints(settings.partnerStorage)],
    ['GRAPH_BASE_URL', endpointsIn(settings.graphBaseUrl)],
    ['IDENTITY_ENDPOINT', endpointsIn(env.IDENTITY_ENDPOINT ?? process.env.IDENTITY_ENDPOINT ?? '')],
  ];
  // An endpoint with a path (Azurite's http://host:port/account) must match on the path too.
  const under = (endpoint: string) => target === endpoint || target.startsWith(`${endpoint}/`);
  const matching = owners.filter(([, endpoints]) => endpoints.some(under)).map(([name]) => name);
  return matching.length > 0 ? matching.join(' and ') : undefined;
}

function storageEndpoints(connection: StorageConnection): string[] {
  if (connection.kind === 'identity') return endpointsIn([connection.blobServiceUri, connection.queueServiceUri, connection.tableServiceUri].join(' '));
  const account = /AccountName=([^;]+)/i.exec(connection.connectionString)?.[1];
  const suffix = /EndpointSuffix=([^;]+)/i.exec(connection.connectionString)?.[1] ?? 'core.windows.net';
  const derived = account ? ['blob', 'queue', 'table'].map((service) => `https://${account}.${service}.${suffix}`) : [];
  if (/UseDevelopmentStorage=true/i.test(connection.connectionString))
    derived.push(...['10000', '10001', '10002'].map((port) => `http://127.0.0.1:${port}/devstoreaccount1`));
  return [...endpointsIn(connection.connectionString), ...endpointsIn(derived.join(' '))];
}

function endpointsIn(text: string): string[] {
  return [...text.matchAll(/https?:\/\/[^\s;"']+/gi)].flatMap((match) => normalised(match[0]) ?? []);
}

/** Origin and path, lower case, without query or trailing slash. */
function normalised(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * One line for an error a command could not get past, and its exit code: 3 (a service could
 * not be reached or refused; or an internal error). Bad usage and settings are handled before.
 */
export function describeFailure(
  error: unknown,
  settings: Settings | undefined,
  env: Record<string, string | undefined> = {},
): { line: string; exitCode: number } {
  const facts = factsOf(error);
  const where = facts.url ? redactUrl(facts.url) : undefined;
  const setting = facts.url ? settingFor(facts.url, settings, env) : undefined;
  const check = setting
    ? `check ${setting} and that the service is running and reachable from here`
    : 'check the settings that name it and that the service is running and reachable from here';
  const network = facts.code ? NETWORK_PROBLEMS[facts.code] : undefined;
  if (network) {
    return { line: `Could not reach ${where ?? 'a service'}: ${network} (${facts.code}); ${check}.`, exitCode: EXIT.unavailable };
  }
  const storage = facts.code ? STORAGE_PROBLEMS[facts.code] : undefined;
  if (where && (storage || facts.statusCode !== undefined)) {
    const what = storage ?? `it answered HTTP ${facts.statusCode}`;
    return { line: `${where} refused the request: ${what} (${facts.code ?? `HTTP ${facts.statusCode}`}); ${check}.`, exitCode: EXIT.unavailable };
  }
  // Not a service's answer: a defect or an unforeseen condition. One line still, without secrets.
  const message = redactSecrets(facts.message.split('\n', 1)[0] ?? '');
  return {
    line: `Internal error: ${message}${where ? ` (while calling ${where})` : ''}. Please report it with the command you ran.`,
    exitCode: EXIT.unavailable,
  };
}
