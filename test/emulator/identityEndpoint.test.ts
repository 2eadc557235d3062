import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIdentityEndpoint, type IdentityEndpoint } from '../../emulator/identityEndpoint';
import {
  createTokenAuthority,
  EMULATED_PARTNER_TENANT_ID,
  EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
  EMULATED_UNGRANTED_CLIENT_ID,
  EMULATED_USER_ASSIGNED_CLIENT_ID,
  EMULATED_USER_ASSIGNED_RESOURCE_ID,
  PARTNER_BILLING_ROLE,
} from '../../emulator/tokens';

// The HTTP contract MSAL relies on; the real @azure/identity credentials are exercised in localCloud.test.ts.
const authority = createTokenAuthority();
const RESOURCE = 'https://graph.microsoft.com';
let identity: IdentityEndpoint;

beforeAll(async () => {
  identity = await startIdentityEndpoint(authority);
});

afterAll(async () => {
  await identity.stop();
});

function tokenRequest(query: Record<string, string>, headers: Record<string, string> = { 'X-IDENTITY-HEADER': identity.header }): Promise<Response> {
  return fetch(`${identity.endpoint}?${new URLSearchParams(query).toString()}`, { headers });
}

describe('startIdentityEndpoint', () => {
  it('serves on a loopback URL and hands out a random secret header', async () => {
    const other = await startIdentityEndpoint(authority);
    await other.stop();

    expect(identity.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
    expect(identity.header).toMatch(/^[0-9a-f]{48}$/);
    expect(other.header).not.toBe(identity.header);
  });

  it('answers the App Service token response with a token the authority accepts for the resource', async () => {
    const response = await tokenRequest({ 'api-version': '2019-08-01', resource: RESOURCE });
    const body = (await response.json()) as Record<string, string>;

    expect(response.status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_on: expect.stringMatching(/^\d{10}$/),
      resource: RESOURCE,
      token_type: 'Bearer',
      client_id: EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
    });
    expect(authority.verify(body.access_token!, RESOURCE)).toMatchObject({ ok: true, claims: { exp: Number(body.expires_on) } });
  });

  it('issues the token to the user-assigned identity named by client_id', async () => {
    const clientId = EMULATED_USER_ASSIGNED_CLIENT_ID;
    const response = await tokenRequest({ 'api-version': '2019-08-01', resource: RESOURCE, client_id: clientId });
    const body = (await response.json()) as Record<string, string>;

    expect(body.client_id).toBe(clientId);
    expect(authority.verify(body.access_token!, RESOURCE)).toMatchObject({ ok: true, claims: { appid: clientId } });
  });

  it('refuses a client_id that names no identity assigned to the app, the way App Service does', async () => {
    const before = authority.issued().length;
    const response = await tokenRequest({ 'api-version': '2019-08-01', resource: RESOURCE, client_id: '6f7e8d9c-0b1a-4c2d-8e3f-405162738495' });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId: expect.any(String) });
    expect(authority.issued()).toHaveLength(before);
  });

  it('issues the token to the user-assigned identity named by its resource ID (mi_res_id, any casing), and refuses one the app does not have', async () => {
    const known = await tokenRequest({ 'api-version': '2019-08-01', resource: RESOURCE, mi_res_id: EMULATED_USER_ASSIGNED_RESOURCE_ID.toUpperCase() });
    const body = (await known.json()) as Record<string, string>;
    const before = authority.issued().length;
    const unknown = await tokenRequest({
      'api-version': '2019-08-01',
      resource: RESOURCE,
      mi_res_id: EMULATED_USER_ASSIGNED_RESOURCE_ID.replace(/id-billing$/, 'id-other'),
    });
    const both = await tokenRequest({
      'api-version': '2019-08-01',
      resource: RESOURCE,
      mi_res_id: EMULATED_USER_ASSIGNED_RESOURCE_ID,
      client_id: EMULATED_USER_ASSIGNED_CLIENT_ID,
    });

    expect(authority.verify(body.access_token!, RESOURCE)).toMatchObject({ ok: true, claims: { appid: EMULATED_USER_ASSIGNED_CLIENT_ID } });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ message: 'Unable to load the proper Managed Identity.' });
    expect(both.status).toBe(400);
    expect(authority.issued()).toHaveLength(before);
  });

  it("puts the Graph role into Graph tokens of granted identities only, and every token into the app's tenant", async () => {
    const claimsOf = async (query: Record<string, string>, endpoint = identity) => {
      const response = await fetch(`${endpoint.endpoint}?${new URLSearchParams({ 'api-version': '2019-08-01', ...query }).toString()}`, {
        headers: { 'X-IDENTITY-HEADER': endpoint.header },
      });
      const verification = authority.verify(((await response.json()) as { access_token: string }).access_token, query.resource!);
      if (!verification.ok) throw new Error(verification.reason);
      return verification.claims;
    };
    const otherTenant = '5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c';
    const elsewhere = await startIdentityEndpoint(authority, { tenantId: otherTenant });
    try {
      expect(await claimsOf({ resource: RESOURCE })).toMatchObject({ roles: [PARTNER_BILLING_ROLE], tid: EMULATED_PARTNER_TENANT_ID });
      expect(await claimsOf({ resource: RESOURCE, client_id: EMULATED_USER_ASSIGNED_CLIENT_ID })).toMatchObject({ roles: [PARTNER_BILLING_ROLE] });
      expect(await claimsOf({ resource: RESOURCE, client_id: EMULATED_UNGRANTED_CLIENT_ID })).toMatchObject({ roles: [], appid: EMULATED_UNGRANTED_CLIENT_ID });
      expect(await claimsOf({ resource: 'https://storage.azure.com' })).toMatchObject({ roles: [] });
      expect(await claimsOf({ resource: RESOURCE }, elsewhere)).toMatchObject({ roles: [PARTNER_BILLING_ROLE], tid: otherTenant });
    } finally {
      await elsewhere.stop();
    }
  });

  it('refuses a request without client_id when the app has no system-assigned identity', async () => {
    const userAssignedOnly = await startIdentityEndpoint(authority, { systemAssigned: false });
    try {
      const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: RESOURCE }).toString();
      const headers = { 'X-IDENTITY-HEADER': userAssignedOnly.header };
      const system = await fetch(`${userAssignedOnly.endpoint}?${query}`, { headers });
      const user = await fetch(`${userAssignedOnly.endpoint}?${query}&client_id=${EMULATED_USER_ASSIGNED_CLIENT_ID}`, { headers });

      expect(system.status).toBe(400);
      expect(await system.json()).toMatchObject({ message: 'Unable to load the proper Managed Identity.' });
      expect(user.status).toBe(200);
    } finally {
      await userAssignedOnly.stop();
    }
  });

  it.each([
    ['a loopback URL', 'http://127.0.0.1:45678'],
    ['a host that is not a Microsoft resource', 'https://graph.contoso.example'],
  ])('refuses a token for %s with the AADSTS500011 invalid_resource error Entra ID gives', async (_case, resource) => {
    const response = await tokenRequest({ 'api-version': '2019-08-01', resource });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: 'invalid_resource',
      error_description: expect.stringContaining(`AADSTS500011: The resource principal named ${resource} was not found`),
    });
  });

  it.each([
    ['missing', {}],
    ['wrong', { 'X-IDENTITY-HEADER': 'not-the-secret' }],
  ])('refuses a %s X-IDENTITY-HEADER with 401', async (_case, headers) => {
    const before = authority.issued().length;
    const response = await tokenRequest({ 'api-version': '2019-08-01', resource: RESOURCE }, headers);

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: { code: 'Unauthorized', message: expect.stringContaining('X-IDENTITY-HEADER') } });
    expect(authority.issued()).toHaveLength(before);
  });

  it.each([
    ['no resource', { 'api-version': '2019-08-01' }, 'resource query parameter is required'],
    ['another api-version', { 'api-version': '2017-09-01', resource: RESOURCE }, "api-version is '2017-09-01': expected '2019-08-01'"],
    ['no api-version', { resource: RESOURCE }, "api-version is '': expected '2019-08-01'"],
    ['an object id', { 'api-version': '2019-08-01', resource: RESOURCE, object_id: 'x' }, 'object_id is not supported'],
  ])('answers 400 with a message for %s', async (_case, query, message) => {
    const response = await tokenRequest(query);

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'BadRequest', message: expect.stringContaining(message) } });
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const otherPath = await fetch(identity.endpoint.replace('/msi/token', '/metadata/identity/oauth2/token'));
    const post = await fetch(identity.endpoint, { method: 'POST', headers: { 'X-IDENTITY-HEADER': identity.header } });

    expect(otherPath.status).toBe(404);
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});
