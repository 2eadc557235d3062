/**
 * The storage credential is built from the connection settings the way the host's ClientFactory
 * builds it: the real @azure/identity credentials ask the emulated managed-identity endpoint,
 * and what they send says which identity they asked for. The emulator answers client_id and
 * mi_res_id for the identities it has assigned, and refuses any other, as App Service does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIdentityEndpoint, type IdentityEndpoint } from '../../emulator/identityEndpoint';
import {
  createTokenAuthority,
  EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
  EMULATED_USER_ASSIGNED_CLIENT_ID,
  EMULATED_USER_ASSIGNED_RESOURCE_ID,
} from '../../emulator/tokens';
import { credentialFor } from '../../src/adapters/storageClients';
import { parseSettings, type StorageConnection } from '../../src/core/settings';

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
  'AZURE_TOKEN_CREDENTIALS',
];
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
// The user-assigned identity the emulated endpoint has assigned: it refuses any other, as App Service does.
const clientId = EMULATED_USER_ASSIGNED_CLIENT_ID;
const resourceId = EMULATED_USER_ASSIGNED_RESOURCE_ID;

const authority = createTokenAuthority();
let identity: IdentityEndpoint;
const saved = new Map<string, string | undefined>();

beforeAll(async () => {
  identity = await startIdentityEndpoint(authority);
  for (const name of IDENTITY_VARIABLES) {
    saved.set(name, process.env[name]);
    delete process.env[name];
  }
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
});

afterAll(async () => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await identity?.stop();
});

function partnerConnection(extra: Record<string, string>): Extract<StorageConnection, { kind: 'identity' }> {
  const settings = parseSettings({
    EXPORT_CURRENCIES: 'EUR',
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    PARTNER_STORAGE__accountName: 'partnerdata',
    ...extra,
  });
  if (settings.partnerStorage.kind !== 'identity') throw new Error('expected an identity-based connection');
  return settings.partnerStorage;
}

describe('credentialFor', () => {
  it.each([
    ['__credential=managedidentity, system-assigned', { PARTNER_STORAGE__credential: 'managedidentity' }, EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID],
    ['__credential=managedidentity with __clientId', { PARTNER_STORAGE__credential: 'managedidentity', PARTNER_STORAGE__clientId: clientId }, clientId],
    ['__clientId alone (DefaultAzureCredential)', { PARTNER_STORAGE__ClientId: clientId }, clientId],
  ])('%s asks for that identity', async (_case, extra, expectedAppId) => {
    const token = await credentialFor(partnerConnection(extra)).getToken(STORAGE_SCOPE);

    const verification = authority.verify(token!.token, 'https://storage.azure.com');
    expect(verification).toMatchObject({ ok: true, claims: { appid: expectedAppId } });
  });

  it.each([
    ['__credential=managedidentity', { PARTNER_STORAGE__credential: 'managedidentity', PARTNER_STORAGE__managedIdentityResourceId: resourceId }],
    ['no __credential (DefaultAzureCredential)', { PARTNER_STORAGE__managedIdentityResourceId: resourceId }],
  ])('__managedIdentityResourceId with %s gets the token of the identity with that resource ID', async (_case, extra) => {
    const token = await credentialFor(partnerConnection(extra)).getToken(STORAGE_SCOPE);

    expect(authority.verify(token!.token, 'https://storage.azure.com')).toMatchObject({ ok: true, claims: { appid: EMULATED_USER_ASSIGNED_CLIENT_ID } });
  });

  it('__managedIdentityResourceId naming an identity the app does not have gets no token', async () => {
    const other = resourceId.replace(/id-billing$/, 'id-someone-else');
    const issuedBefore = authority.issued().length;

    await expect(
      credentialFor(partnerConnection({ PARTNER_STORAGE__credential: 'managedidentity', PARTNER_STORAGE__managedIdentityResourceId: other })).getToken(
        STORAGE_SCOPE,
      ),
    ).rejects.toThrow(/Unable to load the proper Managed Identity/);
    expect(authority.issued().length).toBe(issuedBefore);
  });
});
