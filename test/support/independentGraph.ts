/**
 * A second, independent implementation of the Graph partner billing export API (unbilled usage
 * only), for tests: written from the project's Graph partner billing reference notes (the export,
 * the operation and the manifest), not from emulator/billingEmulator.ts, sharing none of its code. It stands where a partner's
 * API gateway or egress proxy stands in front of Graph: on its own loopback port, passing Graph's
 * headers and bodies through unchanged, so its Location header names
 * https://graph.microsoft.com, not the host the request came in on.
 *
 * What it checks, as Graph does: a bearer token whose `aud` is Microsoft Graph (its URL or its
 * application id) and that has not expired, and that the caller says is genuine (this test
 * endpoint cannot check a signature: `isGenuine` stands in for that); otherwise 401
 * InvalidAuthenticationToken. The export body: currencyCode required, billingPeriod 'current'
 * or 'last', attributeSet 'full' or 'basic' (default full). Operations go notStarted, running,
 * then succeeded with the manifest inline as `resourceLocation`; files are gzip JSON Lines in
 * Azurite, behind a read+list SAS.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ContainerClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';

const GRAPH = 'https://graph.microsoft.com';
const ACCEPTED_AUDIENCES = new Set([GRAPH, `${GRAPH}/`, '00000003-0000-0000-c000-000000000000']);
const EXPORT_PATH = '/v1.0/reports/partners/billing/usage/unbilled/export';
const OPERATION_PATH = /^\/v1\.0\/reports\/partners\/billing\/operations\/([0-9a-f-]{36})$/;
const ODATA = '#microsoft.graph.partners.billing';

export interface IndependentGraphOptions {
  /** An Azurite account the files are written to, as Microsoft's storage account. */
  readonly storage: { readonly blobEndpoint: string; readonly accountName: string; readonly accountKey: string };
  /** Whether a token was really issued (stands in for the signature check). */
  readonly isGenuine: (token: string) => boolean;
  /** Polls answered `running` before `succeeded`. @default 1 */
  readonly runningPolls?: number;
}

export interface IndependentGraph {
  /** For GRAPH_BASE_URL: http://127.0.0.1:<port>/v1.0 */
  readonly baseUrl: string;
  /** Every request: method, path, and whether its token was accepted. */
  requests(): Array<{ method: string; path: string; authorized: boolean }>;
  /** The exports started, by operation id. */
  exports(): Array<{ operationId: string; currencyCode: string; billingPeriod: string; attributeSet: string; files: string[] }>;
  stop(): Promise<void>;
}

interface Operation {
  readonly id: string;
  readonly createdDateTime: string;
  readonly request: { currencyCode: string; billingPeriod: string; attributeSet: string };
  readonly partnerTenantId: string;
  readonly folder: string;
  readonly files: string[];
  polls: number;
  uploaded: Promise<void>;
}

export async function startIndependentGraph(options: IndependentGraphOptions): Promise<IndependentGraph> {
  const runningPolls = options.runningPolls ?? 1;
  const credential = new StorageSharedKeyCredential(options.storage.accountName, options.storage.accountKey);
  const containerName = 'independent-unbilled';
  const container = new ContainerClient(`${options.storage.blobEndpoint.replace(/\/+$/, '')}/${containerName}`, credential);
  await container.createIfNotExists();
  const operations = new Map<string, Operation>();
  const seen: Array<{ method: string; path: string; authorized: boolean }> = [];

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) graphError(response, 500, 'InternalServerError', 'The server failed.');
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0]!;
    const claims = acceptedClaims(request.headers.authorization);
    seen.push({ method: request.method ?? '', path, authorized: claims !== undefined });
    if (!claims) {
      await drain(request);
      return graphError(response, 401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    }
    if (path === EXPORT_PATH && request.method === 'POST') return startExport(request, response, claims);
    const operation = OPERATION_PATH.exec(path);
    if (operation && request.method === 'GET') return answerOperation(response, operation[1]!);
    return graphError(response, 400, 'BadRequest', `Resource not found for the segment '${path}'.`);
  }

  function acceptedClaims(authorization: string | undefined): { tid: string } | undefined {
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    if (!token || !options.isGenuine(token)) return undefined;
    let claims: { aud?: unknown; exp?: unknown; tid?: unknown };
    try {
      claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return undefined;
    }
    if (typeof claims.aud !== 'string' || !ACCEPTED_AUDIENCES.has(claims.aud)) return undefined;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return undefined;
    return { tid: typeof claims.tid === 'string' ? claims.tid : '' };
  }

  async function startExport(request: IncomingMessage, response: ServerResponse, claims: { tid: string }): Promise<void> {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await drain(request)) as Record<string, unknown>;
    } catch {
      return graphError(response, 400, 'BadRequest', 'The request body is not valid JSON.');
    }
    const currencyCode = body.currencyCode;
    const billingPeriod = body.billingPeriod;
    const attributeSet = body.attributeSet ?? 'full';
    if (typeof currencyCode !== 'string' || !/^[A-Za-z]{3}$/.test(currencyCode)) return graphError(response, 400, 'BadRequest', 'currencyCode is required.');
    if (billingPeriod !== 'current' && billingPeriod !== 'last') return graphError(response, 400, 'BadRequest', 'billingPeriod must be current or last.');
    if (attributeSet !== 'full' && attributeSet !== 'basic') return graphError(response, 400, 'BadRequest', 'attributeSet must be full or basic.');

    const id = randomUUID();
    const now = new Date();
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (billingPeriod === 'last' ? 1 : 0), 1));
    const billingMonth = `${month.getUTCFullYear()}${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
    const snapshot = now.toISOString().replace(/\D/g, '').slice(0, 12);
    const folder = `v1/${snapshot}/PartnerTenantId=${claims.tid}/BillingMonth=${billingMonth}/Currency=${currencyCode.toUpperCase()}/Fragment=${attributeSet}/PartitionType=default`;
    const files = [0, 1].map((part) => `part-${String(part).padStart(5, '0')}-${randomUUID()}.c000.json.gz`);
    const operation: Operation = {
      id,
      createdDateTime: now.toISOString().slice(0, 19),
      request: { currencyCode: currencyCode.toUpperCase(), billingPeriod, attributeSet },
      partnerTenantId: claims.tid,
      folder,
      files,
      polls: 0,
      uploaded: Promise.resolve(),
    };
    operation.uploaded = Promise.all(
      files.map((name, part) => {
        const lines = [1, 2, 3].map((row) => JSON.stringify(usageLine(claims.tid, operation.request.currencyCode, billingMonth, part * 10 + row)));
        const content = gzipSync(`${lines.join('\n')}\n`);
        return container.getBlockBlobClient(`${folder}/${name}`).uploadData(content, { blobHTTPHeaders: { blobContentType: 'application/gzip' } });
      }),
    ).then(() => undefined);
    operations.set(id, operation);
    // Graph's own absolute URL, as a proxy passing Graph's headers through leaves it.
    response.writeHead(202, { Location: `${GRAPH}/v1.0/reports/partners/billing/operations/${id}`, 'Content-Length': '0' }).end();
  }

  async function answerOperation(response: ServerResponse, id: string): Promise<void> {
    const operation = operations.get(id);
    if (!operation) return graphError(response, 404, 'ResourceNotFound', `Operation ${id} was not found.`);
    operation.polls++;
    const common = { id, createdDateTime: operation.createdDateTime, lastActionDateTime: new Date().toISOString() };
    if (operation.polls <= runningPolls) {
      return json(
        response,
        200,
        { '@odata.type': `${ODATA}.runningOperation`, ...common, status: operation.polls === 1 ? 'notStarted' : 'running' },
        { 'Retry-After': '1' },
      );
    }
    await operation.uploaded;
    const sasToken = generateBlobSASQueryParameters(
      { containerName, permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3600_000) },
      credential,
    ).toString();
    json(response, 200, {
      '@odata.type': `${ODATA}.exportSuccessOperation`,
      ...common,
      status: 'succeeded',
      resourceLocation: {
        id: randomUUID(),
        schemaVersion: '2',
        dataFormat: 'compressedJSON',
        createdDateTime: new Date().toISOString(),
        eTag: `${id.replace(/-/g, '').slice(0, 10)}`,
        partnerTenantId: operation.partnerTenantId,
        rootDirectory: `${container.url}/${operation.folder}`,
        sasToken,
        partitionType: 'default',
        blobCount: operation.files.length,
        blobs: operation.files.map((name) => ({ name, partitionValue: 'default' })),
      },
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1.0`,
    requests: () => seen.map((entry) => ({ ...entry })),
    exports: () => [...operations.values()].map((operation) => ({ operationId: operation.id, ...operation.request, files: [...operation.files] })),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** One unbilled daily-rated usage line, with attribute names as the reference spells them (section 4). */
function usageLine(partnerId: string, currency: string, billingMonth: string, row: number): Record<string, unknown> {
  const day = String((row % 28) + 1).padStart(2, '0');
  return {
    PartnerId: partnerId,
    CustomerId: '196e2273-9651-43a3-ba7e-7cbcd918fc40',
    CustomerName: 'Fabrikam GmbH',
    ProductId: 'DZH318Z0BNZ5',
    SkuId: '006G',
    SkuName: 'Tables - LRS',
    SubscriptionId: '307628f1-d9d2-f09c-ea1f-4183f0cae308',
    UsageDate: `${billingMonth.slice(0, 4)}-${billingMonth.slice(4)}-${day}T00:00:00Z`,
    MeterCategory: 'Storage',
    Quantity: 0.005 * row,
    UnitPrice: 0.045,
    BillingPreTaxTotal: 0.000225 * row,
    BillingCurrency: currency,
  };
}

function graphError(response: ServerResponse, status: number, code: string, message: string): void {
  json(
    response,
    status,
    { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID() } } },
    status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {},
  );
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers }).end(text);
}

function drain(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}
