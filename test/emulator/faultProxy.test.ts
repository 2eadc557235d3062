import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { TableClient, type TableEntityResult } from '@azure/data-tables';
import { BlobSASPermissions, BlobServiceClient, RestError, type StoragePipelineOptions } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAzurite, type Azurite } from '../../emulator/azurite';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../../emulator/faultProxy';

const SOURCE = { name: 'alphaacct', key: randomBytes(64).toString('base64') };
const DESTINATION = { name: 'betaacct', key: randomBytes(64).toString('base64') };
const DEV = 'devstoreaccount1';

let azurite: Azurite;
let proxy: FaultProxy;
const logLines: string[] = [];

beforeAll(async () => {
  azurite = await startAzurite({ accounts: [SOURCE, DESTINATION] });
  proxy = await startFaultProxy({ azurite, seed: 42, log: (line) => logLines.push(line) });
});

afterEach(() => {
  proxy?.clearRules();
});

afterAll(async () => {
  await proxy?.stop();
  await azurite?.stop();
});

let counter = 0;
const unique = (prefix: string): string => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

type StorageRetry = NonNullable<StoragePipelineOptions['retryOptions']>;
/** The storage SDKs' own retry policy; short delays keep the tests fast (the first retry is immediate anyway). */
const blobService = (account: string, retry: StorageRetry = {}): BlobServiceClient =>
  BlobServiceClient.fromConnectionString(proxy.connectionString(account), { retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 100, ...retry } });
const queueService = (account: string, retry: StorageRetry = {}): QueueServiceClient =>
  QueueServiceClient.fromConnectionString(proxy.connectionString(account), { retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 100, ...retry } });
/** data-tables uses core-rest-pipeline's retry policy: exponential for resets and 5xx, Retry-After for 503/429. */
const tableClient = (account: string, table: string, maxRetries = 3): TableClient =>
  TableClient.fromConnectionString(proxy.connectionString(account), table, {
    allowInsecureConnection: true,
    retryOptions: { maxRetries, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
  });

/** Added after a fault rule with the same match: a zero delay that only records each further attempt in injected(). */
function countAttempts(match: Omit<FaultRule, 'fault' | 'times' | 'probability'>): void {
  proxy.addRule({ ...match, fault: { kind: 'delay', ms: 0 } });
}

const kindsSince = (start: number): string[] =>
  proxy
    .injected()
    .slice(start)
    .map((record) => record.kind);
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('startFaultProxy: endpoints', () => {
  it('listens on its own loopback port per service, in Azurite account path scheme, with Azurite account key', () => {
    const ports = [proxy.blobEndpoint(DEV), proxy.queueEndpoint(DEV), proxy.tableEndpoint(DEV)].map((endpoint) => {
      const match = /^http:\/\/127\.0\.0\.1:(\d+)\/devstoreaccount1$/.exec(endpoint);
      expect(match, endpoint).not.toBeNull();
      return Number(match![1]);
    });
    expect(new Set([...ports, azurite.blobPort, azurite.queuePort, azurite.tablePort]).size).toBe(6);
    expect(proxy.connectionString(SOURCE.name)).toBe(
      `DefaultEndpointsProtocol=http;AccountName=alphaacct;AccountKey=${SOURCE.key};` +
        `BlobEndpoint=${proxy.blobEndpoint('alphaacct')};QueueEndpoint=${proxy.queueEndpoint('alphaacct')};TableEndpoint=${proxy.tableEndpoint('alphaacct')};`,
    );
    expect(() => proxy.blobEndpoint('nosuchacct')).toThrow(RangeError);
  });

  it('rejects a rule it could not apply', () => {
    expect(() => proxy.addRule({ fault: { kind: 'delay', ms: -1 } })).toThrow(RangeError);
    expect(() => proxy.addRule({ times: 0, fault: { kind: 'reset' } })).toThrow(RangeError);
    expect(() => proxy.addRule({ probability: 1.5, fault: { kind: 'reset' } })).toThrow(RangeError);
    expect(() => proxy.addRule({ fault: { kind: 'status', status: 404 as 500 } })).toThrow(RangeError);
  });
});

describe('startFaultProxy: pass-through with real SDK clients', () => {
  it('streams blob uploads and downloads of a few MiB unchanged, signed with the account key, metadata name case kept', async () => {
    const container = blobService(SOURCE.name).getContainerClient(unique('pass'));
    await container.create();
    const single = randomBytes(5 * 1024 * 1024);
    const blocks = randomBytes(3 * 1024 * 1024 + 17);

    await container.getBlockBlobClient('single.bin').uploadData(single, { metadata: { CamelCase: 'kept' } });
    // Put Block + Put Block List, with chunked request bodies.
    await container.getBlockBlobClient('blocks.bin').uploadStream(Readable.from([blocks]), 1024 * 1024, 2);

    expect(sha256(await container.getBlobClient('single.bin').downloadToBuffer())).toBe(sha256(single));
    // The Host header is forwarded as sent, so the URLs in Azurite's answers point back at the proxy.
    const page = (await container.listBlobsFlat().byPage().next()).value as { serviceEndpoint: string };
    expect(page.serviceEndpoint).toBe(proxy.blobEndpoint(SOURCE.name));
    expect(sha256(await container.getBlobClient('blocks.bin').downloadToBuffer())).toBe(sha256(blocks));
    // The same blobs, read from Azurite directly: the proxy forwarded to that very instance.
    const direct = BlobServiceClient.fromConnectionString(azurite.connectionString(SOURCE.name)).getContainerClient(container.containerName);
    const listed = [];
    for await (const blob of direct.listBlobsFlat({ includeMetadata: true })) listed.push(blob);
    expect(listed.map((blob) => [blob.name, blob.properties.contentLength, blob.metadata])).toEqual([
      ['blocks.bin', blocks.length, undefined],
      ['single.bin', single.length, { CamelCase: 'kept' }],
    ]);
  });

  it('passes queue create, send, receive and delete through', async () => {
    const queue = queueService(DEV).getQueueClient(unique('pass'));
    await queue.create();

    await queue.sendMessage('hello through the proxy');
    const received = await queue.receiveMessages({ numberOfMessages: 5 });

    expect(received.receivedMessageItems.map((message) => [message.messageText, message.dequeueCount])).toEqual([['hello through the proxy', 1]]);
    await queue.deleteMessage(received.receivedMessageItems[0]!.messageId, received.receivedMessageItems[0]!.popReceipt);
    expect((await queue.peekMessages()).peekedMessageItems).toEqual([]);
  });

  it('passes table create, upsert, query and a batch transaction through', async () => {
    const table = tableClient(DEV, unique('pass'));
    await table.createTable();

    await table.upsertEntity({ partitionKey: '2025-01', rowKey: 'EUR', state: 'running', polls: 1 });
    await table.upsertEntity({ partitionKey: '2025-01', rowKey: 'EUR', state: 'landed', polls: 2 }, 'Replace');
    await table.submitTransaction([
      ['create', { partitionKey: '2025-02', rowKey: 'EUR', state: 'running' }],
      ['create', { partitionKey: '2025-02', rowKey: 'USD', state: 'failed' }],
    ]);

    const rows: TableEntityResult<Record<string, unknown>>[] = [];
    for await (const row of table.listEntities({ queryOptions: { filter: "state ne 'failed'" } })) rows.push(row);
    expect(rows.map((row) => [row.partitionKey, row.rowKey, row.state])).toEqual([
      ['2025-01', 'EUR', 'landed'],
      ['2025-02', 'EUR', 'running'],
    ]);
    expect(await table.getEntity('2025-01', 'EUR')).toMatchObject({ state: 'landed', polls: 2 });
  });
});

describe('startFaultProxy: what the SDKs see', () => {
  it('blob: a reset on one Put Blob is retried by the SDK and the upload lands once', async () => {
    const container = blobService(SOURCE.name).getContainerClient(unique('reset'));
    await container.create();
    const start = proxy.injected().length;
    const match = { service: 'blob', method: 'PUT', path: new RegExp(`^/alphaacct/${container.containerName}/file\\.bin`) } as const;
    proxy.addRule({ ...match, fault: { kind: 'reset' }, times: 1 });
    countAttempts(match);
    const data = randomBytes(512 * 1024);

    await container.getBlockBlobClient('file.bin').uploadData(data);

    expect(kindsSince(start)).toEqual(['reset', 'delay']);
    expect(proxy.injected()[start]).toEqual({ service: 'blob', kind: 'reset', method: 'PUT', path: `/alphaacct/${container.containerName}/file.bin` });
    expect(sha256(await container.getBlobClient('file.bin').downloadToBuffer())).toBe(sha256(data));
  });

  it('queue: a reset on Put Message is retried and exactly one message is enqueued', async () => {
    const queue = queueService(DEV).getQueueClient(unique('reset'));
    await queue.create();
    const start = proxy.injected().length;
    const match = { service: 'queue', method: 'POST', path: new RegExp(`/${queue.name}/messages`) } as const;
    proxy.addRule({ ...match, fault: { kind: 'reset' }, times: 1 });
    countAttempts(match);

    await queue.sendMessage('once');

    expect(kindsSince(start)).toEqual(['reset', 'delay']);
    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((message) => message.messageText)).toEqual(['once']);
  });

  it('table: a reset on an upsert is retried by the core pipeline (ECONNRESET) and the row is written', async () => {
    const table = tableClient(DEV, unique('reset'));
    await table.createTable();
    const start = proxy.injected().length;
    const match = { service: 'table', method: 'PATCH' } as const;
    proxy.addRule({ ...match, fault: { kind: 'reset' }, times: 1 });
    countAttempts(match);

    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 7 });

    expect(kindsSince(start)).toEqual(['reset', 'delay']);
    expect(await table.getEntity('p', 'r')).toMatchObject({ value: 7 });
  });

  it('queue: a 503 with Retry-After is retried at once; the storage SDKs retry policy ignores Retry-After', async () => {
    const queue = queueService(DEV).getQueueClient(unique('busy'));
    await queue.create();
    await queue.sendMessage('m');
    const start = proxy.injected().length;
    const match = { service: 'queue', method: 'GET', path: new RegExp(`/${queue.name}/messages\\?.*peekonly=true`) } as const;
    // An hour: a policy that honoured it would schedule that wait (and this test would never end).
    proxy.addRule({ ...match, fault: { kind: 'status', status: 503, retryAfterSeconds: 3600 }, times: 1 });
    countAttempts(match);
    const setTimer = vi.spyOn(globalThis, 'setTimeout');
    let peeked;
    try {
      peeked = await queue.peekMessages();
    } finally {
      setTimer.mockRestore();
    }

    expect(peeked.peekedMessageItems.map((message) => message.messageText)).toEqual(['m']);
    expect(kindsSince(start)).toEqual(['status', 'delay']);
    // The retry waited the policy's own short delay (at most maxRetryDelayInMs), not Retry-After.
    const waits = setTimer.mock.calls.map((call) => call[1] ?? 0);
    expect(waits.some((ms) => ms >= 3_600_000)).toBe(false);
  });

  it('table: a 503 with Retry-After is retried after the Retry-After time', async () => {
    const table = tableClient(DEV, unique('busy'));
    await table.createTable();
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r' });
    const start = proxy.injected().length;
    const match = { service: 'table', method: 'GET' } as const;
    proxy.addRule({ ...match, fault: { kind: 'status', status: 503, retryAfterSeconds: 1 }, times: 1 });
    countAttempts(match);

    const began = performance.now();
    await table.getEntity('p', 'r');
    const elapsed = performance.now() - began;

    expect(kindsSince(start)).toEqual(['status', 'delay']);
    expect(elapsed).toBeGreaterThanOrEqual(950);
  });

  it('when the faults outlast the retries, the SDKs report the Azure error code and status', async () => {
    const container = blobService(SOURCE.name, { maxTries: 2 }).getContainerClient(unique('fail'));
    proxy.addRule({ service: 'blob', fault: { kind: 'status', status: 500 }, times: 2 });
    await expect(container.create()).rejects.toMatchObject({ name: 'RestError', statusCode: 500, code: 'InternalError' });

    const table = tableClient(DEV, unique('fail'), 1);
    proxy.addRule({ service: 'table', fault: { kind: 'status', status: 503 }, times: 2 });
    const failure = await table.createTable().then(
      () => undefined,
      (error: unknown) => error,
    );
    // data-tables leaves `code` unset and quotes the odata.error body as the message, as it does for Azurite's own errors.
    expect(failure).toBeInstanceOf(RestError);
    expect(failure).toMatchObject({ statusCode: 503 });
    expect((failure as RestError).response?.headers.get('x-ms-error-code')).toBe('ServerBusy');
    expect(JSON.parse((failure as RestError).message)).toMatchObject({ 'odata.error': { code: 'ServerBusy' } });
  });

  it('answers with Azure-shaped errors: XML for blob and queue, odata JSON for table, x-ms-error-code and Retry-After', async () => {
    proxy.addRule({ fault: { kind: 'status', status: 503, retryAfterSeconds: 2 } });

    const blob = await fetch(`${proxy.blobEndpoint(DEV)}?comp=list`, { headers: { 'x-ms-version': '2025-01-05', 'x-ms-client-request-id': 'abc' } });
    expect([blob.status, blob.headers.get('x-ms-error-code'), blob.headers.get('retry-after'), blob.headers.get('content-type')]).toEqual([
      503,
      'ServerBusy',
      '2',
      'application/xml',
    ]);
    expect([blob.headers.get('x-ms-version'), blob.headers.get('x-ms-client-request-id')]).toEqual(['2025-01-05', 'abc']);
    expect(await blob.text()).toMatch(
      /^<\?xml version="1\.0" encoding="utf-8"\?><Error><Code>ServerBusy<\/Code><Message>The server is currently unable to receive requests\. Please retry your request\.\nRequestId:[0-9a-f-]{36}\nTime:[^<]+<\/Message><\/Error>$/,
    );

    const queueHead = await fetch(`${proxy.queueEndpoint(DEV)}/somequeue?comp=metadata`, { method: 'HEAD' });
    expect([queueHead.status, queueHead.headers.get('x-ms-error-code'), queueHead.headers.get('content-length')]).toEqual([503, 'ServerBusy', '0']);

    proxy.clearRules();
    proxy.addRule({ service: 'table', fault: { kind: 'status', status: 500 } });
    const table = await fetch(`${proxy.tableEndpoint(DEV)}/Tables`);
    expect([table.status, table.headers.get('x-ms-error-code'), table.headers.get('retry-after')]).toEqual([500, 'InternalError', null]);
    expect(table.headers.get('content-type')).toMatch(/^application\/json;odata=minimalmetadata/);
    expect(await table.json()).toEqual({
      'odata.error': {
        code: 'InternalError',
        message: { lang: 'en-US', value: expect.stringMatching(/^Server encountered an internal error\. Please try again after some time\.\nRequestId:/) },
      },
    });
  });

  it('applies a rule with times to that many requests, then lets requests through; a removed rule stops at once', async () => {
    const queue = queueService(DEV, { maxTries: 1 }).getQueueClient(unique('times'));
    await queue.create();
    proxy.addRule({ service: 'queue', method: 'POST', fault: { kind: 'status', status: 500 }, times: 2 });

    await expect(queue.sendMessage('a')).rejects.toMatchObject({ statusCode: 500 });
    await expect(queue.sendMessage('b')).rejects.toMatchObject({ statusCode: 500 });
    await queue.sendMessage('c');

    const remove = proxy.addRule({ service: 'queue', method: 'POST', fault: { kind: 'status', status: 503 } });
    for (const text of ['d', 'e', 'f']) await expect(queue.sendMessage(text)).rejects.toMatchObject({ statusCode: 503 });
    remove();
    remove();
    await queue.sendMessage('g');

    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((message) => message.messageText)).toEqual(['c', 'g']);
  });

  it('matches by service, method (any case) and a path pattern, even a /g one, on every request', async () => {
    const service = blobService(SOURCE.name, { maxTries: 1 });
    const target = unique('target');
    proxy.addRule({ service: 'blob', method: 'put', path: /^\/alphaacct\/target/g, fault: { kind: 'status', status: 500 } });

    await expect(service.getContainerClient(target).create()).rejects.toMatchObject({ statusCode: 500 });
    await expect(service.getContainerClient(target).create()).rejects.toMatchObject({ statusCode: 500 });
    await expect(service.getContainerClient(target).exists()).resolves.toBe(false); // GET/HEAD: not matched
    await service.getContainerClient(unique('other')).create(); // another path
    await blobService(DESTINATION.name, { maxTries: 1 }).getContainerClient(target).create(); // another account
    await queueService(SOURCE.name, { maxTries: 1 }).getQueueClient(target).create(); // another service
  });

  it('delays a request, then forwards it', async () => {
    const queue = queueService(DEV).getQueueClient(unique('delay'));
    await queue.create();
    await queue.sendMessage('late');
    proxy.addRule({ service: 'queue', method: 'GET', fault: { kind: 'delay', ms: 400 }, times: 1 });

    const began = performance.now();
    const peeked = await queue.peekMessages();

    expect(performance.now() - began).toBeGreaterThanOrEqual(395);
    expect(peeked.peekedMessageItems.map((message) => message.messageText)).toEqual(['late']);
  });

  it('a delay longer than tryTimeoutInMs is not cut short: the storage SDKs only send it to the server as ?timeout=', async () => {
    const queue = queueService(DEV, { tryTimeoutInMs: 1000 }).getQueueClient(unique('slow'));
    await queue.create();
    await queue.sendMessage('slow');
    const start = proxy.injected().length;
    const match = { service: 'queue', method: 'GET' } as const;
    proxy.addRule({ ...match, fault: { kind: 'delay', ms: 1600 }, times: 1 });
    countAttempts(match);

    const began = performance.now();
    const peeked = await queue.peekMessages();

    expect(performance.now() - began).toBeGreaterThanOrEqual(1595);
    expect(peeked.peekedMessageItems.map((message) => message.messageText)).toEqual(['slow']);
    // One attempt: no client-side timeout, no retry. The server-side timeout (seconds) rides on the query.
    expect(kindsSince(start)).toEqual(['delay']);
    expect(proxy.injected()[start]!.path).toMatch(/[?&]timeout=1(&|$)/);
  });

  it('does not forward a delayed request whose client gave up (an abort signal is not retried by the SDK)', async () => {
    const queue = queueService(DEV).getQueueClient(unique('gaveup'));
    await queue.create();
    proxy.addRule({ service: 'queue', method: 'POST', fault: { kind: 'delay', ms: 600 } });

    await expect(queue.sendMessage('never', { abortSignal: AbortSignal.timeout(150) })).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((resolve) => setTimeout(resolve, 700));

    expect((await queue.peekMessages()).peekedMessageItems).toEqual([]);
  });

  it('injects probabilistic faults reproducibly from the seed', async () => {
    const pattern = async (seed: number): Promise<{ hits: string; injected: number }> => {
      const chaos = await startFaultProxy({ azurite, seed });
      try {
        chaos.addRule({ service: 'blob', probability: 0.5, fault: { kind: 'status', status: 503 } });
        chaos.addRule({ service: 'queue', probability: 0.2, times: 2, fault: { kind: 'status', status: 500 } });
        let hits = '';
        for (let i = 0; i < 30; i += 1) {
          const response = await fetch(`${chaos.blobEndpoint(DEV)}?comp=list&i=${i}`);
          await response.arrayBuffer();
          hits += response.status === 503 ? 'x' : '.';
        }
        let queueFaults = 0;
        for (let i = 0; i < 30; i += 1) {
          const response = await fetch(`${chaos.queueEndpoint(DEV)}?comp=list`);
          await response.arrayBuffer();
          if (response.status === 500) queueFaults += 1;
        }
        expect(queueFaults).toBe(2); // probability 0.2 over 30 requests, capped by times
        return { hits, injected: chaos.injected().length };
      } finally {
        await chaos.stop();
      }
    };

    const first = await pattern(7);
    const again = await pattern(7);
    const other = await pattern(8);

    expect(again).toEqual(first);
    expect(other.hits).not.toBe(first.hits);
    expect(first.injected).toBe([...first.hits].filter((hit) => hit === 'x').length + 2);
    expect(first.hits.replace(/\./g, '').length).toBeGreaterThan(5);
    expect(first.hits.replace(/x/g, '').length).toBeGreaterThan(5);
  });
});

describe('startFaultProxy: server-side copies', () => {
  async function sourceBlob(): Promise<{ url: string; sasUrl: string; etag: string; data: Buffer }> {
    const direct = BlobServiceClient.fromConnectionString(azurite.connectionString(SOURCE.name)).getContainerClient(unique('src'));
    await direct.create();
    const data = randomBytes(256 * 1024);
    const blob = direct.getBlockBlobClient('part-00000.json.gz');
    const uploaded = await blob.uploadData(data);
    const sasUrl = await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3_600_000) });
    return { url: blob.url, sasUrl, etag: uploaded.etag!, data };
  }

  it('copies from a SAS URL on Azurite itself into another account through the proxy (Copy Blob, as the app does)', async () => {
    const source = await sourceBlob();
    expect(new URL(source.sasUrl).port).toBe(String(azurite.blobPort));
    const destination = blobService(DESTINATION.name).getContainerClient(unique('dest'));
    await destination.create();
    const target = destination.getBlobClient('copied.json.gz');

    const poller = await target.beginCopyFromURL(source.sasUrl, {
      sourceConditions: { ifMatch: source.etag },
      metadata: { sourceetag: 'x' },
      intervalInMs: 50,
    });
    const result = await poller.pollUntilDone();

    expect(result.copyStatus).toBe('success');
    expect(sha256(await target.downloadToBuffer())).toBe(sha256(source.data));
    expect((await target.getProperties()).metadata).toEqual({ sourceetag: 'x' });
  });

  it('copies from a SAS URL on the proxy itself; Azurite verifies the source through the proxy, and the SAS never reaches injected() or the log', async () => {
    const source = await sourceBlob();
    const viaProxy = new URL(source.sasUrl);
    viaProxy.port = new URL(proxy.blobEndpoint(SOURCE.name)).port;
    const signature = viaProxy.searchParams.get('sig')!;
    const destination = blobService(DESTINATION.name).getContainerClient(unique('dest'));
    await destination.create();
    const start = proxy.injected().length;
    // Azurite's own check of the source (HEAD <source>?<SAS>, Get Blob Properties) comes back through the proxy.
    proxy.addRule({ service: 'blob', method: 'HEAD', path: /sig=/, fault: { kind: 'delay', ms: 0 } });

    const result = await (await destination.getBlobClient('copied').beginCopyFromURL(viaProxy.toString(), { intervalInMs: 50 })).pollUntilDone();

    expect(result.copyStatus).toBe('success');
    const checks = proxy.injected().slice(start);
    expect(checks).toHaveLength(1);
    expect(checks[0]!.path).toContain('sig=REDACTED');
    expect(JSON.stringify(proxy.injected())).not.toContain(encodeURIComponent(signature));
    expect(logLines.join('\n')).not.toContain(encodeURIComponent(signature));
    expect(logLines.join('\n')).not.toContain(signature);
    expect(logLines.at(-1)).toMatch(/^fault proxy: delay 0 ms on blob HEAD \/alphaacct\/.*sig=REDACTED/);
  });

  it('leaves Azurite same-instance check in force for a source on another host name', async () => {
    const source = await sourceBlob();
    const elsewhere = new URL(source.sasUrl);
    elsewhere.hostname = 'localhost'; // the same port, but not the host the client addressed: Azurite refuses, as it would directly
    const target = blobService(DESTINATION.name, { maxTries: 1 }).getContainerClient(unique('dest'));
    await target.create();

    await expect(target.getBlobClient('copied').beginCopyFromURL(elsewhere.toString())).rejects.toMatchObject({
      statusCode: 404,
      code: 'CannotVerifyCopySource',
    });
  });
});

describe('startFaultProxy: stop', () => {
  it('closes its ports, drops kept-alive and held connections, and leaves no socket or timer behind', async () => {
    const sockets = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'TCPSocketWrap').length;
    const socketsBefore = sockets();
    const setTimer = vi.spyOn(globalThis, 'setTimeout');
    const clearTimer = vi.spyOn(globalThis, 'clearTimeout');
    try {
      const short = await startFaultProxy({ azurite });
      const queue = QueueServiceClient.fromConnectionString(short.connectionString(DEV), { retryOptions: { maxTries: 1 } }).getQueueClient(unique('stop'));
      await queue.create();
      await queue.sendMessage('kept alive');
      short.addRule({ fault: { kind: 'delay', ms: 30_000 } });
      const held = queue.peekMessages().then(
        () => 'answered',
        (error: unknown) => (error as Error).name,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));

      await short.stop();
      await short.stop();

      // stop() does not wait out the hold: it drops the held request's connection and clears the
      // hold's timer (below); how fast that is belongs to the benchmark, not here.
      expect(await held).toBe('RestError'); // the held request's connection was dropped, not answered
      await expect(fetch(short.queueEndpoint(DEV))).rejects.toThrow('fetch failed');
      // The 30 s hold was cancelled, not left to keep the process alive.
      const holds = setTimer.mock.calls.flatMap((call, index) => (call[1] === 30_000 ? [setTimer.mock.results[index]?.value as unknown] : []));
      expect(holds).toHaveLength(1);
      expect(clearTimer.mock.calls.some(([handle]) => handle === holds[0])).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sockets()).toBeLessThanOrEqual(socketsBefore);
    } finally {
      setTimer.mockRestore();
      clearTimer.mockRestore();
    }
  });
});
