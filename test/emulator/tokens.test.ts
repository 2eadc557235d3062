import { describe, expect, it } from 'vitest';
import { createTokenAuthority, EMULATED_PARTNER_TENANT_ID, EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID, GRAPH_AUDIENCES } from '../../emulator/tokens';

const AUDIENCE = 'http://127.0.0.1:45678';

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('createTokenAuthority', () => {
  it('issues an HS256 JWT with the requested audience and the partner tenant claims', () => {
    const authority = createTokenAuthority({ now: () => Date.UTC(2024, 9, 8, 0, 35), lifetimeSeconds: 600 });

    const { token, expiresOn } = authority.issue({ resource: AUDIENCE });

    expect(decodePart(token, 0)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const issuedAt = Date.UTC(2024, 9, 8, 0, 35) / 1000;
    expect(decodePart(token, 1)).toEqual({
      aud: AUDIENCE,
      iss: 'https://sts.local.test/',
      appid: EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
      oid: EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
      tid: EMULATED_PARTNER_TENANT_ID,
      roles: ['PartnerBilling.Read.All'],
      iat: issuedAt,
      nbf: issuedAt,
      exp: issuedAt + 600,
    });
    expect(expiresOn).toBe(issuedAt + 600);
  });

  it('uses the client id of a user-assigned identity as appid and oid', () => {
    const authority = createTokenAuthority();
    const clientId = '11111111-2222-4333-8444-555555555555';

    const verification = authority.verify(authority.issue({ resource: AUDIENCE, clientId }).token, AUDIENCE);

    expect(verification).toMatchObject({ ok: true, claims: { appid: clientId, oid: clientId } });
  });

  it('accepts its own token for the same audience, ignoring a trailing slash on either side', () => {
    const authority = createTokenAuthority();
    const plain = authority.issue({ resource: AUDIENCE }).token;
    const slashed = authority.issue({ resource: `${AUDIENCE}/` }).token;

    expect(authority.verify(plain, `${AUDIENCE}/`).ok).toBe(true);
    expect(authority.verify(slashed, AUDIENCE).ok).toBe(true);
  });

  it('rejects a token for another audience and names both audiences', () => {
    const authority = createTokenAuthority();
    const { token } = authority.issue({ resource: 'https://graph.microsoft.com' });

    expect(authority.verify(token, AUDIENCE)).toEqual({
      ok: false,
      reason: `the token audience is 'https://graph.microsoft.com': expected '${AUDIENCE}'`,
      status: 401,
      code: 'InvalidAuthenticationToken',
    });
  });

  it("accepts any of Graph's audiences and names them all when none matches", () => {
    const authority = createTokenAuthority();

    expect(authority.verify(authority.issue({ resource: 'https://graph.microsoft.com/' }).token, GRAPH_AUDIENCES).ok).toBe(true);
    expect(authority.verify(authority.issue({ resource: '00000003-0000-0000-c000-000000000000' }).token, GRAPH_AUDIENCES).ok).toBe(true);
    expect(authority.verify(authority.issue({ resource: AUDIENCE }).token, GRAPH_AUDIENCES)).toEqual({
      ok: false,
      reason: `the token audience is '${AUDIENCE}': expected 'https://graph.microsoft.com' or '00000003-0000-0000-c000-000000000000'`,
      status: 401,
      code: 'InvalidAuthenticationToken',
    });
  });

  it('rejects a token once its lifetime has passed', () => {
    let now = Date.UTC(2024, 0, 1);
    const authority = createTokenAuthority({ lifetimeSeconds: 60, now: () => now });
    const { token } = authority.issue({ resource: AUDIENCE });

    now += 59_000;
    expect(authority.verify(token, AUDIENCE).ok).toBe(true);
    now += 1_000;
    expect(authority.verify(token, AUDIENCE)).toEqual({
      ok: false,
      reason: 'the token expired at 2024-01-01T00:01:00.000Z',
      status: 401,
      code: 'InvalidAuthenticationToken',
    });
  });

  it('rejects a token whose payload was changed after signing', () => {
    const authority = createTokenAuthority();
    const [header, , signature] = authority.issue({ resource: AUDIENCE }).token.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ aud: AUDIENCE, exp: 4102444800, nbf: 0 })).toString('base64url');

    expect(authority.verify(`${header}.${forgedPayload}.${signature}`, AUDIENCE)).toEqual({
      ok: false,
      reason: 'the token signature is invalid',
      status: 401,
      code: 'InvalidAuthenticationToken',
    });
  });

  it('rejects tokens signed by another authority and strings that are not JWTs', () => {
    const authority = createTokenAuthority();
    const foreign = createTokenAuthority().issue({ resource: AUDIENCE }).token;

    expect(authority.verify(foreign, AUDIENCE)).toEqual({
      ok: false,
      reason: 'the token signature is invalid',
      status: 401,
      code: 'InvalidAuthenticationToken',
    });
    expect(authority.verify('not-a-jwt', AUDIENCE)).toMatchObject({ ok: false, reason: expect.stringContaining('not a JWT') });
  });

  it.each([
    ['issued in the required tenant with the required role', {}, { ok: true }],
    [
      'issued in another tenant: 401, naming both tenants',
      { tenantId: '11111111-1111-4111-8111-111111111111' },
      {
        ok: false,
        status: 401,
        code: 'InvalidAuthenticationToken',
        reason: `the token was issued in tenant '11111111-1111-4111-8111-111111111111': expected the partner tenant '${EMULATED_PARTNER_TENANT_ID}'`,
      },
    ],
    [
      'without the role: 403, naming the role',
      { roles: [] },
      {
        ok: false,
        status: 403,
        code: 'Authorization_RequestDenied',
        reason: "the token's roles are []: expected the application permission PartnerBilling.Read.All",
      },
    ],
  ])('checks a token %s', (_case, issued, expected) => {
    const authority = createTokenAuthority();
    const { token } = authority.issue({ resource: AUDIENCE, ...issued });

    expect(authority.verify(token, AUDIENCE, { tenantId: EMULATED_PARTNER_TENANT_ID, role: 'PartnerBilling.Read.All' })).toMatchObject(expected);
  });

  it('checks no tenant or role unless asked to', () => {
    const authority = createTokenAuthority();
    const { token } = authority.issue({ resource: AUDIENCE, tenantId: 'another', roles: [] });

    expect(authority.verify(token, AUDIENCE)).toMatchObject({ ok: true, claims: { tid: 'another', roles: [] } });
  });

  it('remembers every token it issued, oldest first', () => {
    const authority = createTokenAuthority();
    const first = authority.issue({ resource: AUDIENCE }).token;
    const second = authority.issue({ resource: AUDIENCE, clientId: 'c' }).token;

    expect(authority.issued()).toEqual([first, second]);
  });

  it('refuses a lifetime that is not a positive whole number of seconds', () => {
    expect(() => createTokenAuthority({ lifetimeSeconds: 0 })).toThrow('lifetimeSeconds is 0');
  });
});
