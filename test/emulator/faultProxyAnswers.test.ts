/**
 * The fault proxy's answers for what Azure does and Azurite does not: 409/412 with Azure's codes
 * on Copy Blob, and Azurite's answers rewritten (a copy reported pending, a listing's MD5 changed).
 */
import { randomBytes } from 'node:crypto';
import { BlobSASPermissions, BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../emulator/azurite';
import { startFaultProxy, type FaultProxy } from '../../emulator/faultProxy';

const SOURCE = { name: 'srcacct', key: randomBytes(64).toString('base64') };
const DESTINATION = { name: 'dstacct', key: randomBytes(64).toString('base64') };

let azurite: Azurite;
let proxy: FaultProxy;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [SOURCE, DESTINATION] });
  proxy = await startFaultProxy({ azurite });
});
afterEach(() => proxy?.clearRules());
afterAll(async () => {
  await proxy?.stop();
  await azurite?.stop();
});

let counter = 0;
const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${(counter += 1)}`;

async function sourceBlob(): Promise<{ sasUrl: string; etag: string }> {
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString(SOURCE.name)).getContainerClient(unique('src'));
  await container.create();
  const blob = container.getBlockBlobClient('part-00000.json.gz');
  const uploaded = await blob.uploadData(randomBytes(4096));
  const sasUrl = await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3_600_000) });
  return { sasUrl, etag: uploaded.etag! };
}

async function destination(): Promise<ContainerClient> {
  const container = BlobServiceClient.fromConnectionString(proxy.connectionString(DESTINATION.name), { retryOptions: { maxTries: 1 } }).getContainerClient(
    unique('dst'),
  );
  await container.create();
  return container;
}

const copyRequest = { service: 'blob' as const, method: 'PUT', path: /^\/dstacct\/dst[^?]*\/part-00000\.json\.gz/ };

describe('fault proxy and Azurite: copy answers as Azure gives them', () => {
  it.each([
    [409, 'PendingCopyOperation', 'There is currently a pending copy operation.'],
    [412, 'SourceConditionNotMet', 'The source condition specified using HTTP conditional header(s) is not met.'],
  ] as const)('%i %s on Copy Blob, with Azure message, and the copy never reaches Azurite', async (status, code, message) => {
    const source = await sourceBlob();
    const container = await destination();
    proxy.addRule({ ...copyRequest, fault: { kind: 'status', status, code }, times: 1 });

    const copying = container.getBlobClient('part-00000.json.gz').beginCopyFromURL(source.sasUrl, { sourceConditions: { ifMatch: source.etag } });

    await expect(copying).rejects.toMatchObject({ statusCode: status, code, message: expect.stringContaining(message) });
    expect(await container.getBlobClient('part-00000.json.gz').exists()).toBe(false);
  });

  it('rewrites a listing: a finished copy reads as pending, with the body length recomputed', async () => {
    const source = await sourceBlob();
    const container = await destination();
    await (await container.getBlobClient('part-00000.json.gz').beginCopyFromURL(source.sasUrl)).pollUntilDone();
    proxy.addRule({
      service: 'blob',
      method: 'GET',
      path: /comp=list/,
      fault: { kind: 'rewrite', body: [{ find: '<CopyStatus>success</CopyStatus>', replace: '<CopyStatus>pending</CopyStatus>' }] },
      times: 1,
    });

    const listed = async () => {
      for await (const blob of container.listBlobsFlat({ includeCopy: true })) return blob.properties.copyStatus;
      return undefined;
    };

    expect(await listed()).toBe('pending');
    expect(await listed()).toBe('success');
    expect(proxy.injected().filter((fault) => fault.kind === 'rewrite')).toHaveLength(1);
  });

  it('rewrites response headers: Get Properties reports the copy pending', async () => {
    const source = await sourceBlob();
    const container = await destination();
    const target = container.getBlobClient('part-00000.json.gz');
    await (await target.beginCopyFromURL(source.sasUrl)).pollUntilDone();
    proxy.addRule({ service: 'blob', method: 'HEAD', fault: { kind: 'rewrite', headers: { 'x-ms-copy-status': 'pending' } }, times: 1 });

    expect((await target.getProperties()).copyStatus).toBe('pending');
    expect((await target.getProperties()).copyStatus).toBe('success');
  });

  it('Azurite itself refuses Copy Blob from a source whose ETag no longer matches x-ms-source-if-match, as Azure does', async () => {
    const source = await sourceBlob();
    const container = await destination();

    const copying = container.getBlobClient('part-00000.json.gz').beginCopyFromURL(source.sasUrl, { sourceConditions: { ifMatch: '"0x8DCAFEBABE00000"' } });

    await expect(copying).rejects.toMatchObject({ statusCode: 412 });
  });

  it('refuses rules it could not apply', () => {
    expect(() => proxy.addRule({ fault: { kind: 'status', status: 409, code: '' } })).toThrow(/needs the service's error code/);
    expect(() => proxy.addRule({ fault: { kind: 'rewrite' } })).toThrow(/needs headers or body/);
  });
});
