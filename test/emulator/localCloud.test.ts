import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { exportManifest, postExport } from './graphRequests';
import { EMULATED_USER_ASSIGNED_CLIENT_ID } from '../../emulator/tokens';

/**
 * Variables that would steer @azure/identity to another credential or managed-identity source
 * (or to the network); cleared for these tests so only the emulated App Service endpoint can answer.
 */
const IDENTITY_VARIABLES = [
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'IDENTITY_SERVER_THUMBPRINT',
  'IMDS_ENDPOINT',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_TOKEN_CREDENTIALS',
  'AZURE_POD_IDENTITY_AUTHORITY_HOST',
];

let cloud: LocalCloud;
const savedEnvironment = new Map<string, string | undefined>();

beforeAll(async () => {
  cloud = await startLocalCloud();
  for (const name of IDENTITY_VARIABLES) {
    savedEnvironment.set(name, process.env[name]);
    delete process.env[name];
  }
  // MSAL reads these when a credential is constructed, and then keeps its choice for the whole process.
  process.env.IDENTITY_ENDPOINT = cloud.settings.IDENTITY_ENDPOINT;
  process.env.IDENTITY_HEADER = cloud.settings.IDENTITY_HEADER;
});

afterAll(async () => {
  for (const [name, value] of savedEnvironment) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await cloud?.stop();
});

describe('startLocalCloud', () => {
  it('exposes exactly the app settings that point the app at the local services', () => {
    expect(cloud.settings).toEqual({
      GRAPH_BASE_URL: cloud.billing.baseUrl,
      AzureWebJobsStorage: cloud.azurite.connectionString('devstoreaccount1'),
      PARTNER_STORAGE: cloud.azurite.connectionString('partnerdest'),
      EXPORT_SOURCE_HOSTS: '127.0.0.1',
      IDENTITY_ENDPOINT: cloud.identity.endpoint,
      IDENTITY_HEADER: cloud.identity.header,
    });
    expect(cloud.settings.GRAPH_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\.0$/);
  });

  it('gives the app a working queue and table in AzureWebJobsStorage and a working blob account in PARTNER_STORAGE', async () => {
    const queue = QueueServiceClient.fromConnectionString(cloud.settings.AzureWebJobsStorage).getQueueClient('poll-exports');
    const table = TableClient.fromConnectionString(cloud.settings.AzureWebJobsStorage, 'exportruns', { allowInsecureConnection: true });
    const container = BlobServiceClient.fromConnectionString(cloud.settings.PARTNER_STORAGE).getContainerClient('billing');

    await queue.create();
    await queue.sendMessage('hello');
    await table.createTable();
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', state: 'started' });
    await container.create();
    await container.uploadBlockBlob('marker.txt', 'ok', 2);

    expect((await queue.receiveMessages()).receivedMessageItems[0]?.messageText).toBe('hello');
    expect((await table.getEntity('p', 'r')).state).toBe('started');
    expect((await container.getBlobClient('marker.txt').downloadToBuffer()).toString()).toBe('ok');
  });

  it('exports into the msbilling account of the same Azurite', async () => {
    const { token } = cloud.authority.issue({ resource: 'https://graph.microsoft.com' });

    const manifest = await exportManifest(cloud.billing, token);

    expect(manifest.rootDirectory.startsWith(`${cloud.azurite.blobEndpoint('msbilling')}/unbilledusagefastpath/`)).toBe(true);
  });
});

describe('real @azure/identity credentials against the emulated managed-identity endpoint', () => {
  const clientId = EMULATED_USER_ASSIGNED_CLIENT_ID;

  it.each<[string, () => TokenCredential, string | undefined]>([
    ['ManagedIdentityCredential (system-assigned)', () => new ManagedIdentityCredential(), undefined],
    ['ManagedIdentityCredential({ clientId })', () => new ManagedIdentityCredential({ clientId }), clientId],
    ['DefaultAzureCredential', () => new DefaultAzureCredential(), undefined],
  ])('%s gets a Microsoft Graph token that the billing emulator accepts', async (_name, makeCredential, expectedAppId) => {
    const credential = makeCredential();

    const accessToken = await credential.getToken('https://graph.microsoft.com/.default');

    const verification = cloud.authority.verify(accessToken!.token, 'https://graph.microsoft.com');
    expect(verification).toMatchObject({ ok: true, claims: { aud: 'https://graph.microsoft.com' } });
    if (verification.ok && expectedAppId) expect(verification.claims.appid).toBe(expectedAppId);
    expect(cloud.authority.issued()).toContain(accessToken!.token);
    const response = await postExport(cloud.billing, accessToken!.token, { currencyCode: 'EUR', billingPeriod: 'current' });
    expect(response.status).toBe(202);
  });
});

describe('stop', () => {
  it('stops the billing emulator, the identity endpoint and Azurite, and can be called again', async () => {
    const other = await startLocalCloud();
    const urls = [other.billing.baseUrl, other.identity.endpoint, other.azurite.blobEndpoint('devstoreaccount1')];

    await other.stop();
    await other.stop();

    for (const url of urls) await expect(fetch(url)).rejects.toThrow('fetch failed');
  });
});
