import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AggregateAuthenticationError, AuthenticationError, CredentialUnavailableError, type AccessToken, type TokenCredential } from '@azure/identity';
import { createGraphClient } from '../../src/adapters/graph';
import { GraphRequestError } from '../../src/errors';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ0ZXN0In0.c2ln';

/** A credential standing in for the managed identity: the adapter only calls getToken. */
const credential: TokenCredential & { scopes: string[] } = {
  scopes: [],
  getToken(scopes: string | string[]): Promise<AccessToken> {
    credential.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return Promise.resolve({ token: TOKEN, expiresOnTimestamp: Date.now() + 3600_000 });
  },
};

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise((resolve) => {
          server.close(resolve);
          server.closeAllConnections();
        }),
    ),
  );
  credential.scopes.length = 0;
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse, seen: Seen[]) => void): Promise<{ origin: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      seen.push({
        method: request.method ?? '',
        url: request.url ?? '',
        body,
        ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}),
      });
      handler(request, response, seen);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const noSleep = () => Promise.resolve();

const UNBILLED_USAGE = { kind: 'unbilled-usage', body: { currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'full' } } as const;

describe('Graph client', () => {
  it('POSTs the export with the bearer token and returns the Location', async () => {
    const graph = await serve((_request, response) => {
      response.writeHead(202, { location: '/v1.0/reports/partners/billing/operations/op-1' }).end();
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const { operationUrl } = await client.startExport(UNBILLED_USAGE);

    expect(operationUrl).toBe(`${graph.origin}/v1.0/reports/partners/billing/operations/op-1`);
    expect(graph.seen).toEqual([
      {
        method: 'POST',
        url: '/v1.0/reports/partners/billing/usage/unbilled/export',
        authorization: `Bearer ${TOKEN}`,
        body: '{"currencyCode":"EUR","billingPeriod":"last","attributeSet":"full"}',
      },
    ]);
    expect(credential.scopes).toEqual(['https://graph.microsoft.com/.default']);
  });

  // Paths and bodies as Graph documents them (partners-billing-*-export), not as any emulator answers.
  it.each([
    [
      'unbilled-reconciliation',
      { currencyCode: 'USD', billingPeriod: 'current', attributeSet: 'basic' },
      '/v1.0/reports/partners/billing/reconciliation/unbilled/export',
    ],
    ['billed-usage', { invoiceId: 'G016907411', attributeSet: 'full' }, '/v1.0/reports/partners/billing/usage/billed/export'],
    ['billed-reconciliation', { invoiceId: 'G016907411', attributeSet: 'basic' }, '/v1.0/reports/partners/billing/reconciliation/billed/export'],
  ] as const)('POSTs %s to its documented action with its documented body', async (kind, body, path) => {
    const graph = await serve((_request, response) => response.writeHead(202, { location: '/v1.0/reports/partners/billing/operations/op-2' }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await client.startExport({ kind, body } as Parameters<typeof client.startExport>[0]);

    expect(graph.seen).toEqual([{ method: 'POST', url: path, authorization: `Bearer ${TOKEN}`, body: JSON.stringify(body) }]);
  });

  it("an invoice Graph refuses at once (400) is a permanent error with Graph's code and message", async () => {
    const graph = await serve((_request, response) =>
      response
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"error":{"code":"InvalidInvoiceId","message":"Invoice G000000999 was not found."}}'),
    );
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const failure = client.startExport({ kind: 'billed-usage', body: { invoiceId: 'G000000999', attributeSet: 'full' } });

    await expect(failure).rejects.toMatchObject({ code: 'InvalidInvoiceId', transient: false, details: { status: 400 } });
    await expect(failure).rejects.toThrow('Invoice G000000999 was not found.');
    expect(graph.seen).toHaveLength(1);
  });

  it('asks for the GRAPH_TOKEN_SCOPE override when one is given', async () => {
    const graph = await serve((_request, response) => response.writeHead(202, { location: '/v1.0/reports/partners/billing/operations/op-1' }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, tokenScope: 'api://billing-gateway/.default', credential, sleep: noSleep });

    await client.startExport(UNBILLED_USAGE);

    expect(credential.scopes).toEqual(['api://billing-gateway/.default']);
  });

  it("follows a Location on Graph's own origin through the GRAPH_BASE_URL origin, with the same path", async () => {
    const proxy = await serve((request, response) => {
      if (request.method === 'POST') response.writeHead(202, { location: 'https://graph.microsoft.com/v1.0/reports/partners/billing/operations/op-1' }).end();
      else response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}');
    });
    const client = createGraphClient({ baseUrl: `${proxy.origin}/v1.0`, credential, sleep: noSleep });

    const { operationUrl } = await client.startExport(UNBILLED_USAGE);
    const polled = await client.get(operationUrl);
    const navigated = await client.get('https://graph.microsoft.com/v1.0/reports/partners/billing/manifests/m-1');

    expect(operationUrl).toBe(`${proxy.origin}/v1.0/reports/partners/billing/operations/op-1`);
    expect(polled.body).toEqual({ status: 'running' });
    expect(navigated.body).toEqual({ status: 'running' });
    expect(proxy.seen.map((seen) => `${seen.method} ${seen.url} ${seen.authorization ? 'with token' : 'no token'}`)).toEqual([
      'POST /v1.0/reports/partners/billing/usage/unbilled/export with token',
      'GET /v1.0/reports/partners/billing/operations/op-1 with token',
      'GET /v1.0/reports/partners/billing/manifests/m-1 with token',
    ]);
  });

  it("keeps a gateway's path prefix when it follows Graph's own URLs", async () => {
    const gateway = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}'));
    const client = createGraphClient({ baseUrl: `${gateway.origin}/graph/v1.0`, credential, sleep: noSleep });

    await client.get('https://graph.microsoft.com/v1.0/reports/partners/billing/operations/op-1');

    expect(gateway.seen.map((seen) => seen.url)).toEqual(['/graph/v1.0/reports/partners/billing/operations/op-1']);
  });

  it("keeps a Graph URL whose path starts with '//' on the GRAPH_BASE_URL origin", async () => {
    const other = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"stolen"}'));
    const proxy = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}'));
    const client = createGraphClient({ baseUrl: `${proxy.origin}/v1.0`, credential, sleep: noSleep });

    expect((await client.get(`https://graph.microsoft.com//${new URL(other.origin).host}/op`)).body).toEqual({ status: 'running' });
    expect(other.seen).toEqual([]);
    expect(proxy.seen).toHaveLength(1);
  });

  it("follows a redirect to Graph's own origin through the GRAPH_BASE_URL origin", async () => {
    const proxy = await serve((request, response) => {
      if (request.url === '/v1.0/old') response.writeHead(302, { location: 'https://graph.microsoft.com/v1.0/new' }).end();
      else response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}');
    });
    const client = createGraphClient({ baseUrl: `${proxy.origin}/v1.0`, credential, sleep: noSleep });

    expect((await client.get(`${proxy.origin}/v1.0/old`)).body).toEqual({ status: 'running' });
    expect(proxy.seen.map((seen) => seen.url)).toEqual(['/v1.0/old', '/v1.0/new']);
  });

  it.each([
    ['another host', 'https://graph.microsoft.com.attacker.example/v1.0/op'],
    ["plain http on Graph's host", 'http://graph.microsoft.com/v1.0/op'],
    ["another port on Graph's host", 'https://graph.microsoft.com:8443/v1.0/op'],
    ['a national cloud', 'https://microsoftgraph.chinacloudapi.cn/v1.0/op'],
  ])('refuses a Location on %s and asks for no token', async (_case, location) => {
    const proxy = await serve((_request, response) => response.writeHead(202, { location }).end());
    const client = createGraphClient({ baseUrl: `${proxy.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.startExport(UNBILLED_USAGE)).rejects.toMatchObject({ code: 'ForeignOrigin' });
    await expect(client.get(location)).rejects.toMatchObject({ code: 'ForeignOrigin' });
    expect(credential.scopes).toHaveLength(1); // the POST's token only
  });

  it('refuses a Location with credentials even on its own origin, and never quotes them', async () => {
    let location = '';
    const graph = await serve((_request, response) => response.writeHead(202, { location }).end());
    location = `${graph.origin.replace('//', '//op:S3CRET@')}/v1.0/ops/1`;
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const failure = client.startExport(UNBILLED_USAGE);

    await expect(failure).rejects.toMatchObject({ code: 'InvalidUrl', transient: false });
    await expect(failure).rejects.toThrow(/carries credentials/);
    await expect(failure.catch((error: Error) => error.message)).resolves.not.toContain('S3CRET');
  });

  it('refuses an operation Location on another origin', async () => {
    const other = await serve((_request, response) => response.writeHead(200).end('{}'));
    const graph = await serve((_request, response) => response.writeHead(202, { location: `${other.origin}/steal` }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const failure = client.startExport(UNBILLED_USAGE);

    await expect(failure).rejects.toThrow(/operation Location '.*\/steal' is not on the Graph origin .*; refusing to send it the token/);
    await expect(failure).rejects.toMatchObject({ code: 'ForeignOrigin', transient: false });
  });

  it('never sends the token to another origin, even through a redirect', async () => {
    const other = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}'));
    const graph = await serve((_request, response) => response.writeHead(302, { location: `${other.origin}/op` }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.get(`${graph.origin}/v1.0/reports/partners/billing/operations/1`)).rejects.toMatchObject({ code: 'ForeignOrigin' });
    await expect(client.get(`${other.origin}/op`)).rejects.toMatchObject({ code: 'ForeignOrigin' });
    expect(other.seen).toEqual([]);
  });

  it('follows a redirect on the Graph origin', async () => {
    const graph = await serve((request, response) => {
      if (request.url === '/v1.0/old') response.writeHead(307, { location: '/v1.0/new' }).end();
      else response.writeHead(200, { 'content-type': 'application/json', 'retry-after': '7' }).end('{"status":"running"}');
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    expect(await client.get(`${graph.origin}/v1.0/old`)).toEqual({ body: { status: 'running' }, retryAfterSeconds: 7 });
    expect(graph.seen.map((s) => s.url)).toEqual(['/v1.0/old', '/v1.0/new']);
  });

  it('retries a throttled call in process, honouring a short Retry-After', async () => {
    const waits: number[] = [];
    const graph = await serve((_request, response, seen) => {
      if (seen.length < 3)
        response
          .writeHead(seen.length === 1 ? 429 : 503, { 'retry-after': '2', 'content-type': 'application/json' })
          .end('{"error":{"code":"TooManyRequests","message":"slow down"}}');
      else response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}');
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: (ms) => Promise.resolve(void waits.push(ms)) });

    expect((await client.get(`${graph.origin}/v1.0/op`)).body).toEqual({ status: 'running' });
    expect(graph.seen).toHaveLength(3);
    expect(waits.every((ms) => ms >= 2000)).toBe(true);
  });

  it('hands a long Retry-After to the caller instead of sleeping', async () => {
    const graph = await serve((_request, response) => response.writeHead(429, { 'retry-after': '120' }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.get(`${graph.origin}/v1.0/op`)).rejects.toMatchObject({ transient: true, details: { status: 429, retryAfterSeconds: 120 } });
    expect(graph.seen).toHaveLength(1);
  });

  it("fails a permanent error at once with Graph's own code and message", async () => {
    const graph = await serve((_request, response) =>
      response
        .writeHead(403, { 'content-type': 'application/json' })
        .end('{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}'),
    );
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const failure = client.startExport(UNBILLED_USAGE);
    await expect(failure).rejects.toBeInstanceOf(GraphRequestError);
    await expect(failure).rejects.toThrow(/failed with 403 Authorization_RequestDenied: Insufficient privileges to complete the operation\./);
    expect(graph.seen).toHaveLength(1);
  });

  it('times out a call that never answers, as a transient failure', async () => {
    const graph = await serve(() => undefined);
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, timeoutMs: 200, attempts: 2, sleep: noSleep });

    await expect(client.get(`${graph.origin}/v1.0/op`)).rejects.toMatchObject({ code: 'Timeout', transient: true });
    expect(graph.seen).toHaveLength(2);
  });

  it('requires 202 with a Location from the export POST', async () => {
    const graph = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.startExport(UNBILLED_USAGE)).rejects.toThrow(/answered 200 without a Location header: expected 202 Accepted with Location/);
  });

  it('times out a body that stalls after the headers, as a transient failure, and tries again', async () => {
    const graph = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"status":"runn'); // and never more
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, timeoutMs: 300, attempts: 2, sleep: noSleep });

    const failure = client.get(`${graph.origin}/v1.0/op`);

    await expect(failure).rejects.toBeInstanceOf(GraphRequestError);
    await expect(failure).rejects.toMatchObject({ code: 'Timeout', transient: true });
    expect(graph.seen).toHaveLength(2);
  });

  it('reports a body that is not JSON as transient (a proxy may have cut it short), naming the status', async () => {
    const graph = await serve((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"runn'));
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.get(`${graph.origin}/v1.0/op`)).rejects.toMatchObject({
      code: 'InvalidJson',
      transient: true,
      details: { status: 200 },
      message: expect.stringMatching(/answered 200 with a body that is not JSON/),
    });
  });

  it('reports a body that is not JSON without echoing secrets', async () => {
    const graph = await serve((_request, response) => response.writeHead(200).end(`<html>oops https://x.blob.core.windows.net/c?sig=SECRETSIG</html>`));
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    const failure = client.get(`${graph.origin}/v1.0/op`);
    await expect(failure).rejects.toMatchObject({ code: 'InvalidJson' });
    await expect(failure).rejects.not.toThrow(/SECRETSIG/);
  });
});

describe('the export POST is repeated in process only when Graph surely did not take it', () => {
  const body = UNBILLED_USAGE;

  it.each([429, 503])('repeats it after %i', async (status) => {
    const graph = await serve((_request, response, seen) => {
      if (seen.length === 1) response.writeHead(status, { 'retry-after': '1' }).end();
      else response.writeHead(202, { location: '/v1.0/reports/partners/billing/operations/op-1' }).end();
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    expect((await client.startExport(body)).operationUrl).toMatch(/\/operations\/op-1$/);
    expect(graph.seen.map((seen) => seen.method)).toEqual(['POST', 'POST']);
  });

  it('repeats it after a refused connection: nothing was listening, so nothing was sent', async () => {
    const closed = await serve(() => undefined);
    const port = new URL(closed.origin).port;
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    let posts = 0;
    // Graph comes up while the client waits to try again.
    const listenAgain = async () => {
      const server = createServer((_request, response) => {
        posts++;
        response.writeHead(202, { location: '/v1.0/reports/partners/billing/operations/op-1' }).end();
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
    };
    const client = createGraphClient({ baseUrl: `${closed.origin}/v1.0`, credential, sleep: listenAgain });

    expect((await client.startExport(body)).operationUrl).toBe(`${closed.origin}/v1.0/reports/partners/billing/operations/op-1`);
    expect(posts).toBe(1);
  });

  it.each([500, 502, 504])('leaves it to the caller after %i: Graph may have started the export', async (status) => {
    const graph = await serve((_request, response) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end('{"error":{"code":"Oops","message":"try later"}}'),
    );
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    await expect(client.startExport(body)).rejects.toMatchObject({ transient: true, details: { status, mayHaveBeenTaken: true } });
    expect(graph.seen).toHaveLength(1);
  });

  it('leaves it to the caller after a timeout or a reset mid-request', async () => {
    const silent = await serve(() => undefined);
    const resetting = await serve((request) => request.socket.destroy());
    const options = { credential, timeoutMs: 200, sleep: noSleep };

    await expect(createGraphClient({ ...options, baseUrl: `${silent.origin}/v1.0` }).startExport(body)).rejects.toMatchObject({
      code: 'Timeout',
      transient: true,
      details: { mayHaveBeenTaken: true },
    });
    await expect(createGraphClient({ ...options, baseUrl: `${resetting.origin}/v1.0` }).startExport(body)).rejects.toMatchObject({
      code: 'NetworkError',
      transient: true,
      details: { mayHaveBeenTaken: true },
    });
    expect([silent.seen.length, resetting.seen.length]).toEqual([1, 1]);
  });

  it.each([429, 503])('says a POST refused with %i until the tries ran out was surely not taken', async (status) => {
    const graph = await serve((_request, response) => response.writeHead(status).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep, attempts: 2 });

    const failure = await client.startExport(body).catch((thrown: unknown) => thrown as GraphRequestError);
    expect(failure).toMatchObject({ transient: true, details: { status } });
    expect((failure as GraphRequestError).details.mayHaveBeenTaken).toBeUndefined();
    expect(graph.seen).toHaveLength(2);
  });

  it('still repeats a GET after a 500: reading twice starts nothing', async () => {
    const graph = await serve((_request, response, seen) => {
      if (seen.length === 1) response.writeHead(500).end();
      else response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running"}');
    });
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential, sleep: noSleep });

    expect((await client.get(`${graph.origin}/v1.0/op`)).body).toEqual({ status: 'running' });
    expect(graph.seen).toHaveLength(2);
  });
});

describe('a credential that gives no token', () => {
  const failing = (error: Error): TokenCredential => ({ getToken: () => Promise.reject(error) });

  it.each([
    [
      'CredentialUnavailableError',
      new CredentialUnavailableError('ManagedIdentityCredential: Authentication failed. Message : Description: Unable to load the proper Managed Identity.'),
      'IdentityUnavailable',
      /could not provide a token for https:\/\/graph\.microsoft\.com\/\.default: ManagedIdentityCredential: .*Unable to load the proper Managed Identity\./,
    ],
    [
      'AuthenticationError',
      new AuthenticationError(400, { error: 'invalid_client', error_description: 'AADSTS700016: Application not found in the directory' }),
      'AuthenticationFailed',
      /was refused a token .*AADSTS700016/,
    ],
    ['an unexpected error', new Error('socket hang up'), 'IdentityUnavailable', /could not provide a token .*socket hang up/],
  ])('fails with a code naming the credential problem after %s, and sends Graph nothing', async (_case, error, code, message) => {
    const graph = await serve((_request, response) => response.writeHead(202, { location: '/v1.0/op' }).end());
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential: failing(error), sleep: noSleep });

    const failure = client.startExport(UNBILLED_USAGE);

    await expect(failure).rejects.toMatchObject({ code, transient: true });
    await expect(failure).rejects.toThrow(message);
    expect(graph.seen).toEqual([]);
  });

  it("names the managed identity's answer out of DefaultAzureCredential's list, without secrets", async () => {
    const aggregate = new AggregateAuthenticationError(
      [
        new CredentialUnavailableError('EnvironmentCredential is unavailable.'),
        new CredentialUnavailableError(`ManagedIdentityCredential: Authentication failed. Message invalid_resource: AADSTS500011 with Bearer ${TOKEN}`),
        new CredentialUnavailableError('Azure CLI could not be found.'),
      ],
      'ChainedTokenCredential authentication failed.',
    );
    const graph = await serve(() => undefined);
    const client = createGraphClient({ baseUrl: `${graph.origin}/v1.0`, credential: failing(aggregate), sleep: noSleep });

    const failure = client.get(`${graph.origin}/v1.0/op`);

    await expect(failure).rejects.toMatchObject({ code: 'IdentityUnavailable' });
    await expect(failure).rejects.toThrow(
      /: ManagedIdentityCredential: Authentication failed\. Message invalid_resource: AADSTS500011 with Bearer <redacted>$/,
    );
  });
});
