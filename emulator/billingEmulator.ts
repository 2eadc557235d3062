/**
 * A local stand-in for the Microsoft Graph partner billing export API, all four exports:
 * unbilled usage and unbilled reconciliation (by currency and billing period), billed usage and
 * billed reconciliation (by invoice, from the emulator's invoice catalogue, ./invoices). POST the
 * export (202 + Location), poll the operation, read the manifest, download the files from the
 * "Microsoft side" storage account (an Azurite account) with the manifest's SAS.
 * Shapes follow the documented examples (reference sections 1-3):
 * https://learn.microsoft.com/graph/api/resources/partners-billing-api-overview
 * What Graph leaves undocumented is a scenario choice: an invoice it cannot export is answered
 * with a failedOperation (default) or a synchronous 400 (BillingScenario.invoiceErrors), with
 * error codes of the emulator's own (InvoiceNotFound, InvoiceNotAvailable).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { resolveScenario, type BillingScenario } from './billingScenario';
import { planExport, readListSas, uploadExport, type ExportPlan } from './exportFiles';
import { ExportOperation, type ExportProduct, type OperationError } from './exportOperation';
import { GraphFaults, withDefect, type GraphFault } from './graphFaults';
import { parseExportRequest, resolveExport, type ExportKind, type ExportRequest } from './exportRequest';
import { closeServer, listenOnLoopback, LOOPBACK_HOST, readBody, RequestBodyTooLargeError, sendJson } from './httpServer';
import {
  EMULATED_PARTNER_TENANT_ID,
  GRAPH_AUDIENCES,
  invalidToken,
  PARTNER_BILLING_ROLE,
  type TokenAuthority,
  type TokenClaims,
  type TokenVerification,
} from './tokens';

export { DEFAULT_SCENARIO, type BillingScenario } from './billingScenario';

export interface BillingEmulatorOptions {
  /** Verifies the bearer tokens; like Graph, it accepts only tokens for Microsoft Graph (GRAPH_AUDIENCES). */
  authority: TokenAuthority;
  /** The storage account the exported files are written to and read from with the manifest SAS. */
  source: {
    /** e.g. http://127.0.0.1:10000/msbilling */
    blobEndpoint: string;
    accountName: string;
    accountKey: string;
  };
  /** Overrides of DEFAULT_SCENARIO for the exports POSTed until setScenario is called. */
  scenario?: Partial<BillingScenario>;
  /** The clock for billing months, snapshot folders, readiness, timestamps and SAS expiry. @default () => new Date() */
  now?: () => Date;
  /** Receives one line per request (method, path, status) and upload failures. Nothing is logged by default. */
  log?: (line: string) => void;
  /** Seed of the random behind probabilistic fault rules. @default 1 */
  faultSeed?: number;
}

export interface ExportRecord {
  operationId: string;
  /** Which export was POSTed (its route). */
  kind: ExportKind;
  /** The request as accepted: currencyCode upper-cased, attributeSet defaulted. */
  body: ExportRequest;
  /** The invoice of a billed export; undefined for unbilled kinds. */
  invoiceId?: string;
  /** YYYY-MM: the billing period's month, or the invoice's; '' for an unknown invoice. */
  billingMonth: string;
  /** ISO 4217: the request's, or the invoice's; '' for an unknown invoice. */
  currency: string;
  outcome: BillingScenario['outcome'];
  /** The failedOperation error the operation ends with, when the outcome is 'failed'. */
  error?: OperationError;
  /** The manifest's rootDirectory; '' when the outcome is 'failed' (no files are produced). */
  rootDirectory: string;
  /** The manifest's blobs[].name values, in order. */
  blobNames: string[];
  eTag: string;
  /** Sum of the gzip file sizes. */
  totalBytes: number;
}

export interface RequestRecord {
  method: string;
  /** The path, without the query string. */
  path: string;
  /** Whether the request carried a bearer token this emulator accepts. */
  authorized: boolean;
  /** For a request to an export route: which kind. */
  exportKind?: ExportKind;
  /** For a billed export whose body was accepted: the invoice it names. */
  invoiceId?: string;
}

export interface BillingEmulator {
  /** http://127.0.0.1:<port>/v1.0: the value for GRAPH_BASE_URL. */
  baseUrl: string;
  /** http://127.0.0.1:<port>. Not the token audience: that is Microsoft Graph's (GRAPH_AUDIENCES). */
  origin: string;
  /** Replaces the scenario (over the defaults, not over the previous scenario) for later exports. */
  setScenario(scenario: Partial<BillingScenario>): void;
  exports(): ExportRecord[];
  requests(): RequestRecord[];
  /** Per-request faults: throttling, outages, resets, slow or malformed answers, stale SAS, bad manifests. */
  faults: GraphFaults;
  /** The `sig` of every SAS handed out: what must never show up in the app's logs or records. */
  sasSignatures(): string[];
  /** Stops listening, aborts uploads in flight and waits for them to settle. Safe to call more than once. */
  stop(): Promise<void>;
}

const API_ROOT = '/v1.0';
const BILLING_ROOT = `${API_ROOT}/reports/partners/billing`;
/** Each kind's entity under BILLING_ROOT (reference 1.1). */
const EXPORT_ENTITIES: Readonly<Record<ExportKind, string>> = {
  'unbilled-usage': 'usage/unbilled',
  'billed-usage': 'usage/billed',
  'unbilled-reconciliation': 'reconciliation/unbilled',
  'billed-reconciliation': 'reconciliation/billed',
};
const EXPORT_ROUTES = new Map<string, ExportKind>(
  Object.entries(EXPORT_ENTITIES).flatMap(([kind, entity]) => [
    [`${BILLING_ROOT}/${entity}/export`, kind as ExportKind],
    // The namespace-qualified form the generated Graph SDKs call.
    [`${BILLING_ROOT}/${entity}/microsoft.graph.partners.billing.export`, kind as ExportKind],
  ]),
);
const OPERATION_PATH = /^\/v1\.0\/reports\/partners\/billing\/operations\/([^/]+)$/;
const MANIFEST_PATH = /^\/v1\.0\/reports\/partners\/billing\/manifests\/([^/]+)$/;
const MAX_BODY_BYTES = 64 * 1024;
const ODATA_TYPE = '#microsoft.graph.partners.billing';

type Route = { kind: 'export'; method: 'POST'; exportKind: ExportKind } | { kind: 'operation' | 'manifest'; method: 'GET'; id: string };
type ManifestFault = Extract<GraphFault, { kind: 'expiredSas' | 'manifest' }>;

/** Graph's error codes for the statuses faults inject. */
const GRAPH_ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'InvalidAuthenticationToken',
  403: 'Forbidden',
  404: 'ResourceNotFound',
  410: 'Gone',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

interface TrackedExport {
  operation: ExportOperation;
  partnerTenantId: string;
  record: ExportRecord;
}

/** A manifest, published when its operation first reports success. */
interface PublishedManifest {
  id: string;
  createdAt: Date;
  partnerTenantId: string;
  plan: ExportPlan;
  sasLifetimeSeconds: number;
}

export async function startBillingEmulator(options: BillingEmulatorOptions): Promise<BillingEmulator> {
  const { authority, source } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  const credential = new StorageSharedKeyCredential(source.accountName, source.accountKey);
  const sourceBlobEndpoint = source.blobEndpoint.replace(/\/+$/, '');
  const containerOf = (name: string): ContainerClient => new ContainerClient(`${sourceBlobEndpoint}/${name}`, credential);

  let scenario = resolveScenario(options.scenario);
  const exportsById = new Map<string, TrackedExport>();
  const manifestsById = new Map<string, PublishedManifest>();
  const requestLog: RequestRecord[] = [];
  const uploadsInFlight = new Set<Promise<void>>();
  const faults = new GraphFaults(options.faultSeed);
  const mintedSignatures = new Set<string>();
  const stopUploads = new AbortController();

  // The handler is attached after listen() because it needs the origin, which includes the port.
  const server = createServer();
  const port = await listenOnLoopback(server);
  const origin = `http://${LOOPBACK_HOST}:${port}`;

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      log(`${request.method} ${request.url} failed: ${errorMessage(error)}`);
      if (!response.headersSent) sendGraphError(response, 500, 'InternalServerError', 'The emulator failed to handle the request.');
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', origin).pathname;
    const verification = verifyBearer(request.headers.authorization);
    const route = routeOf(path);
    const entry: RequestRecord = { method, path, authorized: verification.ok, ...(route?.kind === 'export' ? { exportKind: route.exportKind } : {}) };
    requestLog.push(entry);
    response.setHeader('request-id', randomUUID());
    const clientRequestId = request.headers['client-request-id'];
    if (typeof clientRequestId === 'string') response.setHeader('client-request-id', clientRequestId);
    response.on('finish', () => log(`${method} ${path} -> ${response.statusCode}`));

    if (!route) {
      const exportRoutes = Object.values(EXPORT_ENTITIES).map((entity) => `POST ${BILLING_ROOT}/${entity}/export`);
      const emulated = [...exportRoutes, `GET ${BILLING_ROOT}/operations/{id}`, `GET ${BILLING_ROOT}/manifests/{id}`].join(', ');
      const message = `No emulated Graph resource at ${path}. Emulated (each export also as .../microsoft.graph.partners.billing.export): ${emulated}.`;
      return sendGraphError(response, 404, 'ResourceNotFound', message);
    }
    if (method !== route.method) {
      const message = `${method} is not supported on ${path}; use ${route.method}.`;
      return sendGraphError(response, 405, 'MethodNotAllowed', message, { Allow: route.method });
    }
    if (!verification.ok) {
      return sendGraphError(
        response,
        verification.status,
        verification.code,
        verification.reason,
        verification.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {},
      );
    }

    const fault = faults.take(route.kind);
    if (fault && (await answeredByFault(fault, request, response, route))) return;
    const manifestFault = fault?.kind === 'expiredSas' || fault?.kind === 'manifest' ? fault : undefined;
    switch (route.kind) {
      case 'export':
        return startExport(request, response, route.exportKind, entry, verification.claims, fault?.kind === 'lostAnswer');
      case 'operation':
        return answerOperation(response, route.id, manifestFault);
      case 'manifest':
        return answerManifest(response, route.id, manifestFault);
    }
  }

  /** Answers the request with the fault, or returns false when the normal answer should follow. */
  async function answeredByFault(fault: GraphFault, request: IncomingMessage, response: ServerResponse, route: Route): Promise<boolean> {
    switch (fault.kind) {
      case 'status': {
        const retryAfter =
          fault.retryAfterSeconds === undefined
            ? {}
            : {
                'Retry-After': fault.retryAfterAsDate
                  ? new Date(now().getTime() + fault.retryAfterSeconds * 1000).toUTCString()
                  : String(fault.retryAfterSeconds),
              };
        sendGraphError(response, fault.status, GRAPH_ERROR_CODES[fault.status] ?? `Http${fault.status}`, `Injected fault: HTTP ${fault.status}.`, retryAfter);
        return true;
      }
      case 'reset':
        request.socket.destroy();
        return true;
      case 'lostAnswer':
        // An export is started first (startExport drops the answer); a GET has nothing to carry out.
        if (route.kind === 'export') return false;
        request.socket.destroy();
        return true;
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        return response.destroyed || request.socket.destroyed;
      case 'malformedJson':
        response.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"@odata.type":"${ODATA_TYPE}.runningOper`);
        return true;
      case 'stalledBody': {
        // Headers arrive; the body starts and stops, as a proxy or a slow link can leave it.
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.write(`{"@odata.type":"${ODATA_TYPE}.`);
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        response.destroy();
        return true;
      }
      case 'redirect':
        response.writeHead(302, { Location: fault.location, 'Content-Length': 0 }).end();
        return true;
      case 'unknownStatus':
        if (route.kind !== 'operation') return false;
        sendJson(response, 200, { '@odata.type': `${ODATA_TYPE}.operation`, id: route.id, status: fault.status ?? 'paused' });
        return true;
      case 'expiredSas':
      case 'manifest':
        return false;
    }
  }

  /**
   * As Graph checks an app-only token for the partner billing API: valid for Graph (401
   * InvalidAuthenticationToken otherwise), issued in the partner's tenant (401: the API serves
   * the tenant's own billing data only), and carrying the PartnerBilling.Read.All app role (403
   * Authorization_RequestDenied, "Insufficient privileges to complete the operation.").
   */
  function verifyBearer(authorization: string | undefined): TokenVerification {
    if (!authorization) return invalidToken('Access token is empty.');
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) return invalidToken('The Authorization header must be "Bearer <access token>".');
    const result = authority.verify(match[1]!, GRAPH_AUDIENCES, { tenantId: EMULATED_PARTNER_TENANT_ID, role: PARTNER_BILLING_ROLE });
    if (result.ok) return result;
    if (result.status === 403) return { ...result, reason: `Insufficient privileges to complete the operation. (${result.reason})` };
    return { ...result, reason: `Access token validation failure: ${result.reason}.` };
  }

  async function startExport(
    request: IncomingMessage,
    response: ServerResponse,
    kind: ExportKind,
    entry: RequestRecord,
    claims: TokenClaims,
    loseAnswer = false,
  ): Promise<void> {
    // Graph reads an action's parameters only from a JSON body it was told is JSON.
    const contentType = request.headers['content-type'];
    if (contentType === undefined) {
      return sendGraphError(response, 400, 'BadRequest', 'Write requests (excluding DELETE) must contain the Content-Type header declaration.');
    }
    if (contentType.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
      return sendGraphError(
        response,
        415,
        'UnsupportedMediaType',
        `The Content-Type '${contentType}' is not supported: send the parameters as application/json.`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(request, MAX_BODY_BYTES));
    } catch (error) {
      if (error instanceof RequestBodyTooLargeError) {
        return sendGraphError(response, 413, 'RequestEntityTooLarge', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      }
      return sendGraphError(response, 400, 'BadRequest', `The request body is not valid JSON: ${errorMessage(error)}`);
    }
    const parsed = parseExportRequest(kind, body);
    if (!parsed.ok) return sendGraphError(response, 400, 'BadRequest', parsed.message);
    const { order } = parsed;
    if (order.request.invoiceId !== undefined) entry.invoiceId = order.request.invoiceId;

    const requestedAt = now();
    const exportScenario = scenario;
    const resolved = resolveExport(order, requestedAt, exportScenario);
    if (resolved.kind === 'failed' && resolved.synchronous) return sendGraphError(response, 400, 'BadRequest', resolved.error.message);

    const partnerTenantId = claims.tid;
    const product: ExportProduct =
      resolved.kind === 'export'
        ? { plan: planExport({ request: resolved.subject, scenario: exportScenario, partnerTenantId, requestedAt }) }
        : { failure: resolved.error };
    const plan = 'plan' in product ? product.plan : undefined;
    const operation = new ExportOperation(requestedAt, exportScenario, product);
    exportsById.set(operation.id, {
      operation,
      partnerTenantId,
      record: {
        operationId: operation.id,
        kind,
        body: order.request,
        ...(resolved.invoiceId === undefined ? {} : { invoiceId: resolved.invoiceId }),
        billingMonth: resolved.billingMonth,
        currency: resolved.currency,
        outcome: plan ? 'succeeded' : 'failed',
        ...('failure' in product ? { error: { ...product.failure } } : {}),
        rootDirectory: plan ? rootDirectoryOf(plan) : '',
        blobNames: plan ? plan.files.map((file) => file.name) : [],
        eTag: plan?.eTag ?? '',
        totalBytes: plan?.totalBytes ?? 0,
      },
    });
    if (plan) upload(operation, plan);

    if (loseAnswer) {
      request.socket.destroy();
      return;
    }
    response.writeHead(202, { Location: `${origin}${BILLING_ROOT}/operations/${operation.id}`, 'Content-Length': 0 });
    response.end();
  }

  function upload(operation: ExportOperation, plan: ExportPlan): void {
    const uploading = uploadExport(containerOf(plan.container), plan.files, stopUploads.signal).then(
      () => operation.filesUploaded(now()),
      (error: unknown) => {
        log(`upload of export ${operation.id} failed: ${errorMessage(error)}`);
        operation.uploadFailed(error instanceof Error ? error : new Error(String(error)));
      },
    );
    uploadsInFlight.add(uploading);
    void uploading.finally(() => uploadsInFlight.delete(uploading));
  }

  function answerOperation(response: ServerResponse, id: string, manifestFault?: ManifestFault): void {
    const tracked = exportsById.get(id);
    if (!tracked) return sendGraphError(response, 404, 'ResourceNotFound', `Operation '${id}' was not found.`);
    const { operation, partnerTenantId } = tracked;
    const state = operation.poll(now());
    const common = {
      id: operation.id,
      status: state.status,
      createdDateTime: dateTimeWithoutZone(operation.createdAt),
      lastActionDateTime: dateTimeWithSevenDigits(operation.lastActionAt),
    };

    if (state.kind === 'pending') {
      const { retryAfterSeconds } = operation.scenario;
      const headers = retryAfterSeconds === null ? {} : { 'Retry-After': String(retryAfterSeconds) };
      return sendJson(response, 200, { '@odata.type': `${ODATA_TYPE}.runningOperation`, ...common }, headers);
    }
    if (state.kind === 'failed') {
      return sendJson(response, 200, { '@odata.type': `${ODATA_TYPE}.failedOperation`, ...common, error: state.error });
    }
    const manifest: PublishedManifest = {
      id: operation.manifestId,
      createdAt: state.uploadedAt,
      partnerTenantId,
      plan: state.plan,
      sasLifetimeSeconds: operation.scenario.sasLifetimeSeconds,
    };
    manifestsById.set(manifest.id, manifest);
    const resourceLocation =
      operation.scenario.manifestDelivery === 'inline'
        ? { resourceLocation: manifestBody(manifest, manifestFault) }
        : { 'resourceLocation@odata.navigationLink': `${origin}${BILLING_ROOT}/manifests/${manifest.id}` };
    sendJson(response, 200, { '@odata.type': `${ODATA_TYPE}.exportSuccessOperation`, ...common, ...resourceLocation });
  }

  function answerManifest(response: ServerResponse, id: string, manifestFault?: ManifestFault): void {
    const manifest = manifestsById.get(id);
    if (!manifest) return sendGraphError(response, 404, 'ResourceNotFound', `Manifest '${id}' was not found.`);
    sendJson(response, 200, manifestBody(manifest, manifestFault));
  }

  /** The documented manifest (reference 3.1/3.2), with a SAS minted for this response. */
  function manifestBody({ id, createdAt, partnerTenantId, plan, sasLifetimeSeconds }: PublishedManifest, fault?: ManifestFault): Record<string, unknown> {
    // An expired SAS is minted an hour in the past, as a stale answer would carry.
    const sasExpiresOn = new Date(now().getTime() + (fault?.kind === 'expiredSas' ? -3600 : sasLifetimeSeconds) * 1000);
    const sasToken = readListSas(credential, plan.container, sasExpiresOn);
    const signature = new URLSearchParams(sasToken).get('sig');
    if (signature) mintedSignatures.add(signature);
    const body = {
      id,
      schemaVersion: '2',
      dataFormat: 'compressedJSON',
      createdDateTime: createdAt.toISOString(),
      eTag: plan.eTag,
      partnerTenantId,
      rootDirectory: rootDirectoryOf(plan),
      sasToken,
      partitionType: 'default',
      blobCount: plan.files.length,
      blobs: plan.files.map((file) => ({ name: file.name, partitionValue: 'default' })),
    };
    return fault?.kind === 'manifest' ? withDefect(body, fault.defect) : body;
  }

  function rootDirectoryOf(plan: ExportPlan): string {
    return `${sourceBlobEndpoint}/${plan.container}/${plan.directory}`;
  }

  let stopping: Promise<void> | undefined;
  return {
    baseUrl: `${origin}${API_ROOT}`,
    origin,
    setScenario: (overrides) => {
      scenario = resolveScenario(overrides);
    },
    exports: () =>
      [...exportsById.values()].map(({ record }) => ({
        ...record,
        body: { ...record.body },
        ...(record.error ? { error: { ...record.error } } : {}),
        blobNames: [...record.blobNames],
      })),
    requests: () => requestLog.map((entry) => ({ ...entry })),
    faults,
    sasSignatures: () => [...mintedSignatures],
    stop: () => {
      stopping ??= (async () => {
        await closeServer(server);
        // Nobody can ask for these files any more; and a stalled storage account must not stall stop().
        stopUploads.abort();
        await Promise.allSettled([...uploadsInFlight]);
      })();
      return stopping;
    },
  };
}

function routeOf(path: string): Route | undefined {
  const exportKind = EXPORT_ROUTES.get(path);
  if (exportKind) return { kind: 'export', method: 'POST', exportKind };
  const operation = OPERATION_PATH.exec(path);
  if (operation) return { kind: 'operation', method: 'GET', id: operation[1]! };
  const manifest = MANIFEST_PATH.exec(path);
  if (manifest) return { kind: 'manifest', method: 'GET', id: manifest[1]! };
  return undefined;
}

/** The Graph error envelope. */
function sendGraphError(response: ServerResponse, status: number, code: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  const innerError = { date: dateTimeWithoutFraction(new Date()), 'request-id': response.getHeader('request-id') };
  sendJson(response, status, { error: { code, message, innerError } }, headers);
}

/** "2023-03-09T08:12:53": createdDateTime as the docs show it, without a zone designator. */
function dateTimeWithoutZone(date: Date): string {
  return date.toISOString().slice(0, 19);
}

/** "2023-03-09T08:12:53Z" */
function dateTimeWithoutFraction(date: Date): string {
  return `${dateTimeWithoutZone(date)}Z`;
}

/** "2023-03-09T08:37:48.5040000Z": .NET's round-trip format, as lastActionDateTime is documented. */
function dateTimeWithSevenDigits(date: Date): string {
  return date.toISOString().replace('Z', '0000Z');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
