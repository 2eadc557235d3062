/**
 * App settings, parsed once at start-up into a typed value. Every problem is collected so that
 * one message names every bad setting and the form it expects. Pure: takes the environment as
 * an argument and never reads process.env itself.
 *
 * Names are case-insensitive, as the Functions host's configuration treats them
 * (`PARTNER_STORAGE__BlobServiceUri` is `PARTNER_STORAGE__blobServiceUri`), although Linux
 * environment variables are case-sensitive: so two spellings of one name that disagree are an
 * error, instead of one of them winning by the order of the environment.
 */
import { SettingsError } from '../errors';
import { isLoopbackHost } from './hosts';
import { redactSecrets } from './redact';
import { isCurrencyCode } from './requestFields';
import { BILLED_KINDS, UNBILLED_KINDS, isExportKind, type BilledKind, type UnbilledKind } from './naming';
import { OUTPUT_FORMAT_CHOICES, parseOutputFormats, type OutputFormat } from './dataOutputs';

export type BillingPeriod = 'current' | 'last';
export type AttributeSet = 'full' | 'basic';

/** How to reach a storage account: a connection string, or Entra ID (managed identity). */
export type StorageConnection =
  | { readonly kind: 'connectionString'; readonly connectionString: string }
  | {
      readonly kind: 'identity';
      readonly blobServiceUri?: string;
      readonly queueServiceUri?: string;
      readonly tableServiceUri?: string;
      /** Client ID of a user-assigned managed identity; absent means the default identity. */
      readonly clientId?: string;
      /** Azure resource ID of a user-assigned managed identity (`__managedIdentityResourceId`). */
      readonly resourceId?: string;
      /** `managedidentity` forces ManagedIdentityCredential, as the Functions host does. */
      readonly credential?: 'managedidentity';
    };

export interface Settings {
  /** @default https://graph.microsoft.com/v1.0 (no trailing slash) */
  readonly graphBaseUrl: string;
  /**
   * The scope of the Graph token: Microsoft Graph's, whatever host GRAPH_BASE_URL names (a proxy
   * or gateway in front of Graph passes Graph's token through). @default https://graph.microsoft.com/.default
   */
  readonly graphTokenScope: string;
  /** The app's own account: poll queue and run ledger. */
  readonly appStorage: StorageConnection;
  /** The partner's destination account. */
  readonly partnerStorage: StorageConnection;
  /** @default billing-exports */
  readonly partnerContainer: string;
  /** Six-field NCRONTAB in UTC. @default 0 0 6 3-5 * * */
  readonly exportSchedule: string;
  /** ISO 4217 codes, upper case, without duplicates. */
  readonly currencies: readonly string[];
  /** The unbilled kinds the timer starts per currency, without duplicates. @default ['unbilled-usage'] */
  readonly exportKinds: readonly UnbilledKind[];
  /** The billed kinds an invoice-ready event (and a backfill by default) starts per invoice. @default both */
  readonly billedExportKinds: readonly BilledKind[];
  /** @default last */
  readonly billingPeriod: BillingPeriod;
  /** @default full */
  readonly attributeSet: AttributeSet;
  /** @default billing-export-polls */
  readonly pollQueue: string;
  /** @default 60 */
  readonly pollInitialDelaySeconds: number;
  /** @default 600 */
  readonly pollMaxDelaySeconds: number;
  /** @default 21600 (6 hours) */
  readonly exportDeadlineSeconds: number;
  /** Host names (exact) or suffixes (starting with a dot). @default ['.blob.core.windows.net'] */
  readonly sourceHosts: readonly string[];
  /** Where Partner Center's webhook signing certificate may be downloaded from. @default ['3psostorageacct.blob.core.windows.net'] */
  readonly webhookCertificateHosts: readonly string[];
  /** What lands: the raw files, and (by default) a Parquet copy of each. @default ['raw', 'parquet'] */
  readonly outputFormats: readonly OutputFormat[];
  /** Application Insights, when APPLICATIONINSIGHTS_CONNECTION_STRING is set; else events go to the log. */
  readonly applicationInsights?: ApplicationInsightsSettings;
}

export interface ApplicationInsightsSettings {
  readonly connectionString: string;
  /**
   * From APPLICATIONINSIGHTS_AUTHENTICATION_STRING (`Authorization=AAD[;ClientId=<guid>]`): ingest
   * with Entra ID as the managed identity (a user-assigned one when clientId is set), for
   * resources with local authentication disabled.
   */
  readonly entraId?: { readonly clientId?: string };
}

export const DEFAULTS = {
  GRAPH_BASE_URL: 'https://graph.microsoft.com/v1.0',
  PARTNER_CONTAINER: 'billing-exports',
  // On the 3rd, 4th and 5th of each month at 06:00 UTC: last month's usage is complete by then,
  // before invoices (6th-8th) turn it into billed data. A month that landed is not exported again,
  // so the later firings only retry a month that failed.
  EXPORT_SCHEDULE: '0 0 6 3-5 * *',
  EXPORT_KINDS: 'unbilled-usage',
  BILLED_EXPORT_KINDS: 'billed-usage,billed-reconciliation',
  EXPORT_BILLING_PERIOD: 'last',
  EXPORT_ATTRIBUTE_SET: 'full',
  POLL_QUEUE: 'billing-export-polls',
  POLL_INITIAL_DELAY_SECONDS: '60',
  POLL_MAX_DELAY_SECONDS: '600',
  EXPORT_DEADLINE_SECONDS: '21600',
  EXPORT_SOURCE_HOSTS: '.blob.core.windows.net',
  OUTPUT_FORMATS: 'raw,parquet',
} as const;

/**
 * GRAPH_TOKEN_SCOPE's default. The partner billing API exists only in the global cloud, so the
 * audience is always global Graph. Not in DEFAULTS: the deployment does not set it (every entry of
 * DEFAULTS is a parameter of infra/main.bicep), because only a gateway with its own audience needs it.
 */
export const DEFAULT_GRAPH_TOKEN_SCOPE = 'https://graph.microsoft.com/.default';

/** The longest a queue message can stay invisible (7 days), so the longest poll delay. */
export const MAX_QUEUE_DELAY_SECONDS = 7 * 24 * 3600;
/** The poison queue is `<POLL_QUEUE>-poison`, and a queue name has at most 63 characters. */
const MAX_POLL_QUEUE_LENGTH = 63 - '-poison'.length;

type Env = Readonly<Record<string, string | undefined>>;
/** Reads one setting by name, whatever its casing; blank counts as unset. */
type Read = (name: string, fallback?: string) => string | undefined;

export function parseSettings(env: Env): Settings {
  const problems: string[] = [];
  const read = caseInsensitiveReader(env, problems);

  const graphBaseUrl = parseBaseUrl(read('GRAPH_BASE_URL', DEFAULTS.GRAPH_BASE_URL)!, problems);
  const graphTokenScope = parseTokenScope(read('GRAPH_TOKEN_SCOPE', DEFAULT_GRAPH_TOKEN_SCOPE)!, problems);
  const appStorage = parseStorageConnection(read, 'AzureWebJobsStorage', ['queue', 'table'], problems);
  const partnerStorage = parseStorageConnection(read, 'PARTNER_STORAGE', ['blob'], problems);

  const partnerContainer = read('PARTNER_CONTAINER', DEFAULTS.PARTNER_CONTAINER)!;
  if (!isStorageName(partnerContainer, 63)) {
    problems.push(
      `PARTNER_CONTAINER is '${partnerContainer}': expected a container name of 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit`,
    );
  }

  const exportSchedule = read('EXPORT_SCHEDULE', DEFAULTS.EXPORT_SCHEDULE)!;
  const scheduleProblem = ncrontabProblem(exportSchedule);
  if (scheduleProblem) problems.push(`EXPORT_SCHEDULE is '${exportSchedule}': ${scheduleProblem}`);

  const currencies = parseCurrencies(read('EXPORT_CURRENCIES'), problems);
  const exportKinds = parseKinds(read('EXPORT_KINDS', DEFAULTS.EXPORT_KINDS)!, 'EXPORT_KINDS', UNBILLED_KINDS, 'BILLED_EXPORT_KINDS', problems);
  const billedExportKinds = parseKinds(
    read('BILLED_EXPORT_KINDS', DEFAULTS.BILLED_EXPORT_KINDS)!,
    'BILLED_EXPORT_KINDS',
    BILLED_KINDS,
    'EXPORT_KINDS',
    problems,
  );
  const billingPeriod = parseChoice(
    read('EXPORT_BILLING_PERIOD', DEFAULTS.EXPORT_BILLING_PERIOD)!,
    'EXPORT_BILLING_PERIOD',
    ['current', 'last'] as const,
    problems,
  );
  const attributeSet = parseChoice(read('EXPORT_ATTRIBUTE_SET', DEFAULTS.EXPORT_ATTRIBUTE_SET)!, 'EXPORT_ATTRIBUTE_SET', ['full', 'basic'] as const, problems);

  const pollQueue = read('POLL_QUEUE', DEFAULTS.POLL_QUEUE)!;
  if (!isStorageName(pollQueue, MAX_POLL_QUEUE_LENGTH)) {
    problems.push(
      `POLL_QUEUE is '${pollQueue}': expected a queue name of 3-${MAX_POLL_QUEUE_LENGTH} lower-case letters, digits and single hyphens (room is left for the '-poison' suffix)`,
    );
  }

  const pollInitialDelaySeconds = parseSeconds(
    read('POLL_INITIAL_DELAY_SECONDS', DEFAULTS.POLL_INITIAL_DELAY_SECONDS)!,
    'POLL_INITIAL_DELAY_SECONDS',
    problems,
  );
  const pollMaxDelaySeconds = parseSeconds(read('POLL_MAX_DELAY_SECONDS', DEFAULTS.POLL_MAX_DELAY_SECONDS)!, 'POLL_MAX_DELAY_SECONDS', problems);
  const exportDeadlineSeconds = parseSeconds(read('EXPORT_DEADLINE_SECONDS', DEFAULTS.EXPORT_DEADLINE_SECONDS)!, 'EXPORT_DEADLINE_SECONDS', problems);
  if (pollInitialDelaySeconds > pollMaxDelaySeconds) {
    problems.push(
      `POLL_INITIAL_DELAY_SECONDS (${pollInitialDelaySeconds}) is larger than POLL_MAX_DELAY_SECONDS (${pollMaxDelaySeconds}): expected initial <= max`,
    );
  }
  if (pollMaxDelaySeconds > MAX_QUEUE_DELAY_SECONDS) {
    problems.push(
      `POLL_MAX_DELAY_SECONDS is ${pollMaxDelaySeconds}: expected at most ${MAX_QUEUE_DELAY_SECONDS} (7 days, the longest a queue message can be delayed)`,
    );
  }

  const sourceHosts = parseSourceHosts(read('EXPORT_SOURCE_HOSTS', DEFAULTS.EXPORT_SOURCE_HOSTS)!, problems);
  const webhookCertificateHosts = parseWebhookCertificateHosts(read('WEBHOOK_CERTIFICATE_HOSTS', DEFAULT_WEBHOOK_CERTIFICATE_HOSTS)!, problems);
  const outputFormatsText = read('OUTPUT_FORMATS', DEFAULTS.OUTPUT_FORMATS)!;
  const outputFormats = parseOutputFormats(outputFormatsText) ?? [];
  if (outputFormats.length === 0)
    problems.push(`OUTPUT_FORMATS is '${outputFormatsText}': expected ${OUTPUT_FORMAT_CHOICES.join(' or ')} (the raw files always land)`);
  const applicationInsights = parseApplicationInsights(
    read('APPLICATIONINSIGHTS_CONNECTION_STRING'),
    read('APPLICATIONINSIGHTS_AUTHENTICATION_STRING'),
    problems,
  );

  if (problems.length > 0) throw new SettingsError(problems);
  return {
    graphBaseUrl,
    graphTokenScope,
    appStorage: appStorage!,
    partnerStorage: partnerStorage!,
    partnerContainer,
    exportSchedule,
    currencies,
    exportKinds,
    billedExportKinds,
    billingPeriod,
    attributeSet,
    pollQueue,
    pollInitialDelaySeconds,
    pollMaxDelaySeconds,
    exportDeadlineSeconds,
    sourceHosts,
    webhookCertificateHosts,
    outputFormats,
    ...(applicationInsights ? { applicationInsights } : {}),
  };
}

function parseApplicationInsights(
  connectionString: string | undefined,
  authentication: string | undefined,
  problems: string[],
): ApplicationInsightsSettings | undefined {
  if (!connectionString) return undefined;
  if (!/(^|;)\s*(InstrumentationKey|IngestionEndpoint)=/i.test(connectionString)) {
    problems.push(
      "APPLICATIONINSIGHTS_CONNECTION_STRING is not an Application Insights connection string: expected 'InstrumentationKey=...;IngestionEndpoint=...'",
    );
  }
  if (!authentication) return { connectionString };
  const parts = new Map(
    authentication
      .split(';')
      .filter(Boolean)
      .map((part) => {
        const [name = '', ...value] = part.split('=');
        return [name.trim().toLowerCase(), value.join('=').trim()] as const;
      }),
  );
  const clientId = parts.get('clientid');
  if (parts.get('authorization')?.toUpperCase() !== 'AAD' || (clientId !== undefined && !isGuid(clientId))) {
    problems.push(`APPLICATIONINSIGHTS_AUTHENTICATION_STRING is '${authentication}': expected 'Authorization=AAD' or 'ClientId=<guid>;Authorization=AAD'`);
  }
  return { connectionString, entraId: clientId ? { clientId } : {} };
}

/**
 * A managed identity takes exactly one scope, `<resource>/.default`, and asks for a token whose
 * audience is `<resource>`: an https URL or an application id (GUID, or an `api://` URI).
 */
function parseTokenScope(value: string, problems: string[]): string {
  const resource = value.endsWith('/.default') ? value.slice(0, -'/.default'.length) : undefined;
  let valid = false;
  if (resource && isGuid(resource)) valid = true;
  else if (resource) {
    try {
      const url = new URL(resource);
      valid = (url.protocol === 'https:' || url.protocol === 'api:') && !url.search && !url.hash && !url.username && !url.password && !/\s/.test(resource);
    } catch {
      valid = false;
    }
  }
  if (!valid) {
    problems.push(
      `GRAPH_TOKEN_SCOPE is '${value}': expected one scope '<resource>/.default' with an https URL or application id as the resource, such as ${DEFAULT_GRAPH_TOKEN_SCOPE}`,
    );
  }
  return value;
}

function parseBaseUrl(value: string, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`GRAPH_BASE_URL is '${redactSecrets(value)}': expected an absolute URL such as ${DEFAULTS.GRAPH_BASE_URL}`);
    return value;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    problems.push(`GRAPH_BASE_URL is '${redactSecrets(value)}': expected https (plain http is allowed only for a loopback host)`);
  }
  if (url.search || url.hash || url.username || url.password) {
    problems.push(`GRAPH_BASE_URL is '${redactSecrets(value)}': expected no query, fragment or credentials`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The environment as the host's configuration sees it: one value per name, names compared
 * without regard to case. Two spellings with different values are a problem that names both
 * spellings (never the values: a connection string carries a key).
 */
function caseInsensitiveReader(env: Env, problems: string[]): Read {
  const byName = new Map<string, Array<{ readonly name: string; readonly value: string }>>();
  for (const [name, raw] of Object.entries(env)) {
    const value = raw?.trim();
    if (!value) continue;
    const key = name.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), { name, value }]);
  }
  const reported = new Set<string>();
  return (name, fallback) => {
    const key = name.toLowerCase();
    // The exact spelling is looked up by name too, so an environment that cannot be listed
    // (a Proxy, say) still answers for the names the app asks for.
    const exact = env[name]?.trim();
    const found = [...(exact ? [{ name, value: exact }] : []), ...(byName.get(key) ?? []).filter((entry) => entry.name !== name)];
    if (new Set(found.map((entry) => entry.value)).size > 1 && !reported.has(key)) {
      reported.add(key);
      problems.push(
        `${name} is set more than once with different values (${found.map((entry) => entry.name).join(', ')}): setting names are case-insensitive, as in the Functions host; expected one of them, or the same value in each`,
      );
    }
    return found[0]?.value ?? fallback;
  };
}

type StorageService = 'blob' | 'queue' | 'table';

/**
 * A connection setting in the Functions host's own shapes: `NAME` as a connection string first;
 * else `NAME__accountName`, which gives every service's URI; else the per-service URIs. Where
 * both an account name and a service URI are set, the host's two readers disagree: the storage
 * extensions' StorageClientProvider.TryGetServiceUri (azure-sdk-for-net,
 * Microsoft.Azure.WebJobs.Extensions.Clients.Shared; it builds the queue trigger's client) take
 * `accountName` first, while the host's own StorageServiceUriOptions.GetServiceUri (azure-webjobs-sdk
 * and azure-functions-host) take `blobServiceUri` first. So the two are accepted together only
 * when they name the same account: then every reader reaches the same one. The identity is chosen
 * as Microsoft.Extensions.Azure's ClientFactory does: `__credential=managedidentity` with at most
 * one of `__clientId` / `__managedIdentityResourceId`.
 */
function parseStorageConnection(read: Read, name: string, services: readonly StorageService[], problems: string[]): StorageConnection | undefined {
  const connectionString = read(name);
  if (connectionString) {
    if (
      !/^UseDevelopmentStorage=true$/i.test(connectionString) &&
      !/(^|;)\s*AccountName=/i.test(connectionString) &&
      !/(^|;)\s*(Blob|Queue|Table)Endpoint=/i.test(connectionString)
    ) {
      problems.push(
        `${name} is not a storage connection string: expected 'AccountName=...;AccountKey=...' (or endpoints), or use the identity-based ${name}__... settings`,
      );
    }
    return { kind: 'connectionString', connectionString };
  }

  const accountName = read(`${name}__accountName`);
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    problems.push(`${name}__accountName is '${accountName}': expected a storage account name of 3-24 lower-case letters and digits`);
  }
  const uris: Partial<Record<StorageService, string>> = {};
  for (const service of services) {
    const key = `${name}__${service}ServiceUri`;
    const explicit = read(key);
    if (accountName && explicit) {
      const named = accountOfServiceUri(explicit);
      if (named !== accountName) {
        problems.push(
          `${name}__accountName is '${accountName}' but ${key} is '${redactSecrets(explicit)}', ${named ? `account '${named}'` : 'not a URI naming a storage account'}: the queue trigger would use the account name and the Functions host the URI; expected one of them, or a URI of account '${accountName}'`,
        );
      }
    }
    const uri = accountName ? `https://${accountName}.${service}.core.windows.net` : explicit;
    if (!uri) continue;
    if (!isHttpUrl(uri))
      problems.push(`${key} is '${redactSecrets(uri)}': expected an absolute https URL such as https://<account>.${service}.core.windows.net`);
    uris[service] = uri.replace(/\/+$/, '');
  }
  const missing = services.filter((service) => !uris[service]);
  if (missing.length > 0) {
    problems.push(
      `${name} is missing: expected ${name} (a connection string), or ${name}__accountName, or ${missing.map((s) => `${name}__${s}ServiceUri`).join(' and ')}`,
    );
    return undefined;
  }

  const credential = read(`${name}__credential`);
  if (credential && credential.toLowerCase() !== 'managedidentity') {
    problems.push(`${name}__credential is '${credential}': expected 'managedidentity' or no value`);
  }
  const clientId = read(`${name}__clientId`);
  if (clientId && !isGuid(clientId)) {
    problems.push(`${name}__clientId is '${clientId}': expected the client ID (a GUID) of a user-assigned managed identity`);
  }
  const resourceId = read(`${name}__managedIdentityResourceId`);
  if (resourceId && !isUserAssignedIdentityResourceId(resourceId)) {
    problems.push(
      `${name}__managedIdentityResourceId is '${resourceId}': expected the resource ID of a user-assigned managed identity, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>`,
    );
  }
  if (clientId && resourceId) {
    problems.push(`${name}__clientId and ${name}__managedIdentityResourceId are both set: expected one of them, to name one user-assigned managed identity`);
  }
  return {
    kind: 'identity',
    ...(uris.blob ? { blobServiceUri: uris.blob } : {}),
    ...(uris.queue ? { queueServiceUri: uris.queue } : {}),
    ...(uris.table ? { tableServiceUri: uris.table } : {}),
    ...(clientId ? { clientId } : {}),
    ...(resourceId ? { resourceId } : {}),
    ...(credential ? { credential: 'managedidentity' as const } : {}),
  };
}

/**
 * The storage account a service URI names: the first label of `<account>.<service>.core...`, or
 * for a loopback emulator (Azurite's `http://127.0.0.1:10000/<account>`) the first path segment.
 */
function accountOfServiceUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  const host = /^([a-z0-9]{3,24})\.(blob|queue|table|file|dfs)\./i.exec(url.hostname);
  if (host) return host[1]!.toLowerCase();
  if (isLoopbackHost(url.hostname)) return url.pathname.split('/').find(Boolean);
  return undefined;
}

function parseCurrencies(value: string | undefined, problems: string[]): string[] {
  if (!value) {
    problems.push("EXPORT_CURRENCIES is missing: expected comma-separated ISO 4217 codes such as 'EUR' or 'EUR,USD'");
    return [];
  }
  const codes = value
    .split(',')
    .map((code) => code.trim())
    .filter(Boolean);
  const invalid = codes.filter((code) => !isCurrencyCode(code));
  if (codes.length === 0 || invalid.length > 0) {
    problems.push(
      `EXPORT_CURRENCIES is '${value}': expected comma-separated ISO 4217 currency codes such as 'EUR,USD'${invalid.length ? ` ('${invalid.join("', '")}' ${invalid.length > 1 ? 'are not ISO 4217 codes' : 'is not an ISO 4217 code'})` : ''}`,
    );
  }
  return [...new Set(codes.map((code) => code.toUpperCase()))];
}

/**
 * A comma-separated list of export kinds from `allowed`; a kind of the other list is named as
 * belonging there (the timer starts unbilled kinds per currency, invoices start billed kinds).
 */
function parseKinds<T extends string>(value: string, name: string, allowed: readonly T[], otherSetting: string, problems: string[]): T[] {
  const kinds = value
    .split(',')
    .map((kind) => kind.trim().toLowerCase())
    .filter(Boolean);
  const other = kinds.filter((kind) => !(allowed as readonly string[]).includes(kind) && isExportKind(kind));
  const unknown = kinds.filter((kind) => !isExportKind(kind));
  if (kinds.length === 0 || other.length > 0 || unknown.length > 0) {
    const why = [
      ...(other.length > 0 ? [`'${other.join("', '")}' ${other.length > 1 ? 'are' : 'is'} for ${otherSetting}`] : []),
      ...(unknown.length > 0 ? [`'${unknown.join("', '")}' ${unknown.length > 1 ? 'are not export kinds' : 'is not an export kind'}`] : []),
    ];
    problems.push(`${name} is '${value}': expected comma-separated kinds of ${allowed.join(', ')}${why.length > 0 ? ` (${why.join('; ')})` : ''}`);
  }
  return [...new Set(kinds.filter((kind): kind is T => (allowed as readonly string[]).includes(kind)))];
}

function parseChoice<T extends string>(value: string, name: string, choices: readonly T[], problems: string[]): T {
  const match = choices.find((choice) => choice === value.toLowerCase());
  if (!match) {
    problems.push(`${name} is '${value}': expected ${choices.map((c) => `'${c}'`).join(' or ')}`);
    return choices[0]!;
  }
  return match;
}

function parseSeconds(value: string, name: string, problems: string[]): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    problems.push(`${name} is '${value}': expected a whole number of seconds, at least 1`);
    return 1;
  }
  return Number(value);
}

function parseSourceHosts(value: string, problems: string[]): string[] {
  const hosts = value
    .split(',')
    .map((host) => host.trim().toLowerCase())
    .filter(Boolean);
  const invalid = hosts.filter((host) => !/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host));
  if (hosts.length === 0 || invalid.length > 0) {
    problems.push(
      `EXPORT_SOURCE_HOSTS is '${value}': expected comma-separated host names (exact) or suffixes starting with a dot, such as '.blob.core.windows.net'`,
    );
  }
  return hosts;
}

/** The host of the certificate URL in Partner Center's documented webhook requests. */
export const DEFAULT_WEBHOOK_CERTIFICATE_HOSTS = '3psostorageacct.blob.core.windows.net';

function parseWebhookCertificateHosts(value: string, problems: string[]): string[] {
  const hosts = value
    .split(',')
    .map((host) => host.trim().toLowerCase())
    .filter(Boolean);
  if (hosts.length === 0 || hosts.some((host) => !/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host))) {
    problems.push(
      `WEBHOOK_CERTIFICATE_HOSTS is '${value}': expected comma-separated host names (exact) or suffixes starting with a dot, such as '${DEFAULT_WEBHOOK_CERTIFICATE_HOSTS}'`,
    );
  }
  return hosts;
}

/** Container and queue names share these rules (queues are at most 63 characters too). */
function isStorageName(name: string, maxLength: number): boolean {
  return name.length >= 3 && name.length <= maxLength && /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$/.test(name);
}

const NCRONTAB_FIELD = /^[0-9A-Za-z*?/,-]+$/;

/** Checks the shape of a six-field NCRONTAB expression; the host checks the rest at start-up. */
function ncrontabProblem(expression: string): string | undefined {
  const fields = expression.split(/\s+/);
  if (fields.length !== 6) {
    return `expected a six-field NCRONTAB expression '{second} {minute} {hour} {day} {month} {day-of-week}' in UTC, such as '${DEFAULTS.EXPORT_SCHEDULE}' (found ${fields.length} fields)`;
  }
  const bad = fields.find((field) => !NCRONTAB_FIELD.test(field));
  return bad ? `field '${bad}' is not a valid NCRONTAB field` : undefined;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
  } catch {
    return false;
  }
}

function isUserAssignedIdentityResourceId(value: string): boolean {
  return /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[^/]+$/i.test(value);
}

function isGuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
