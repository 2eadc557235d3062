import { randomBytes } from 'node:crypto';
import { StorageSharedKeyCredential, BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';

const PARTNER = { name: 'partnerdest', key: randomBytes(64).toString('base64') };
let azurite: Azurite;

beforeAll(async () => {
  azurite = await startAzurite({ accounts: [PARTNER] });
});

afterAll(async () => {
  await azurite?.stop();
});

function blobService(account: string, key: string): BlobServiceClient {
  return new BlobServiceClient(azurite.blobEndpoint(account), new StorageSharedKeyCredential(account, key));
}

describe('startAzurite', () => {
  it('listens on three distinct loopback ports and builds endpoints and connection strings from them', () => {
    expect(new Set([azurite.blobPort, azurite.queuePort, azurite.tablePort]).size).toBe(3);
    expect(azurite.blobEndpoint('partnerdest')).toBe(`http://127.0.0.1:${azurite.blobPort}/partnerdest`);
    expect(azurite.queueEndpoint('partnerdest')).toBe(`http://127.0.0.1:${azurite.queuePort}/partnerdest`);
    expect(azurite.tableEndpoint('partnerdest')).toBe(`http://127.0.0.1:${azurite.tablePort}/partnerdest`);
    expect(azurite.connectionString('partnerdest')).toBe(
      `DefaultEndpointsProtocol=http;AccountName=partnerdest;AccountKey=${PARTNER.key};` +
        `BlobEndpoint=http://127.0.0.1:${azurite.blobPort}/partnerdest;` +
        `QueueEndpoint=http://127.0.0.1:${azurite.queuePort}/partnerdest;` +
        `TableEndpoint=http://127.0.0.1:${azurite.tablePort}/partnerdest;`,
    );
  });

  it('serves the configured account with its key, and rejects another key', async () => {
    await blobService(PARTNER.name, PARTNER.key).getContainerClient('configured').create();

    const forged = blobService(PARTNER.name, randomBytes(64).toString('base64'));

    await expect(forged.getContainerClient('forged').create()).rejects.toMatchObject({ statusCode: 403 });
  });

  it('keeps devstoreaccount1 with its well-known key alongside the configured accounts', async () => {
    const client = BlobServiceClient.fromConnectionString(azurite.connectionString(DEV_STORE_ACCOUNT.name));

    await client.getContainerClient('development').create();

    expect(azurite.accountKey(DEV_STORE_ACCOUNT.name)).toBe(DEV_STORE_ACCOUNT.key);
    expect(await client.getContainerClient('development').exists()).toBe(true);
  });

  it('refuses to describe an account it does not serve', () => {
    expect(() => azurite.connectionString('msbilling')).toThrow(
      "storage account 'msbilling' is not configured in this Azurite; configured: devstoreaccount1, partnerdest",
    );
  });

  it.each([
    ['an invalid account name', [{ name: 'Partner_Dest', key: PARTNER.key }], "storage account name 'Partner_Dest' is invalid"],
    ['a key that is not base64', [{ name: 'partnerdest', key: 'not base64!' }], "the key of storage account 'partnerdest' is not base64"],
    ['an account listed twice', [PARTNER, PARTNER], "storage account 'partnerdest' is listed twice"],
    ['devstoreaccount1 with another key', [{ name: 'devstoreaccount1', key: PARTNER.key }], 'devstoreaccount1 must keep its well-known key'],
  ])('rejects %s before starting anything', async (_case, accounts, message) => {
    await expect(startAzurite({ accounts })).rejects.toThrow(message);
  });

  it('stops listening on stop(), and a second stop() is harmless', async () => {
    const other = await startAzurite({ accounts: [] });
    const endpoint = other.blobEndpoint(DEV_STORE_ACCOUNT.name);

    await other.stop();
    await other.stop();

    await expect(fetch(endpoint)).rejects.toThrow('fetch failed');
  });
});
