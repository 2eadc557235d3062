/**
 * A tiny token authority standing in for Microsoft Entra ID: the identity endpoint issues its
 * tokens and the billing emulator verifies them, in the same process. Tokens are real HS256 JWTs
 * (signed with a random per-authority key), so code under test handles realistic token strings.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The `tid` of every issued token: the emulated CSP partner's Entra tenant. */
export const EMULATED_PARTNER_TENANT_ID = '0e195b37-4574-4539-bc42-0e539b9684c0';

/** The `oid`/`appid` of tokens issued to the system-assigned identity (no client id asked for). */
export const EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID = '7d1c2b3a-5e4f-4a6b-9c8d-0f1e2d3c4b5a';

export const EMULATED_ISSUER = 'https://sts.local.test/';

/** The client id of the one user-assigned identity the emulated app has (AZURE_CLIENT_ID may name it). */
export const EMULATED_USER_ASSIGNED_CLIENT_ID = '3c9d2e1f-8a7b-4c6d-9e5f-0a1b2c3d4e5f';
/** That identity's Azure resource ID (what `__managedIdentityResourceId` names). */
export const EMULATED_USER_ASSIGNED_RESOURCE_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-billing/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-billing';

/**
 * The audiences Microsoft Graph accepts: its URL and its application id. Graph checks `aud`
 * against these, never against the host name a request came in on (a proxy, a gateway).
 */
export const GRAPH_AUDIENCES: readonly string[] = ['https://graph.microsoft.com', '00000003-0000-0000-c000-000000000000'];

/** The Graph application permission the billing export requires. */
export const PARTNER_BILLING_ROLE = 'PartnerBilling.Read.All';

/**
 * A second user-assigned identity assigned to the emulated app, whose Graph permission was never
 * granted: its Graph tokens carry no `roles`, and Graph refuses them with 403 (AZURE_CLIENT_ID may name it).
 */
export const EMULATED_UNGRANTED_CLIENT_ID = '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

const DEFAULT_LIFETIME_SECONDS = 3600;

export interface TokenClaims {
  aud: string;
  iss: string;
  appid: string;
  oid: string;
  tid: string;
  roles: string[];
  iat: number;
  nbf: number;
  exp: number;
}

export interface IssuedToken {
  token: string;
  /** Expiry, epoch seconds. */
  expiresOn: number;
}

/**
 * A refused token says how a resource answers it: 401 InvalidAuthenticationToken for a token that
 * is not valid here (signature, time, audience, tenant), 403 Authorization_RequestDenied for a
 * valid token without the permission (Graph's answer to a missing app role).
 */
export type TokenVerification =
  { ok: true; claims: TokenClaims } | { ok: false; reason: string; status: 401 | 403; code: 'InvalidAuthenticationToken' | 'Authorization_RequestDenied' };

/** What a resource asks of a token beyond signature, time and audience. */
export interface TokenRequirements {
  /** The tenant (`tid`) the token must be issued in. */
  readonly tenantId?: string;
  /** An app role (`roles`) the token must carry. */
  readonly role?: string;
}

export interface TokenAuthority {
  /**
   * A token for `resource` (the `aud`, exactly as asked), for `clientId` or the system-assigned
   * identity, issued in `tenantId` (default the partner's) with the app roles `roles` (default
   * PartnerBilling.Read.All).
   */
  issue(request: { resource: string; clientId?: string; tenantId?: string; roles?: readonly string[] }): IssuedToken;
  /**
   * Checks signature, validity window and audience (one of `expectedAudience`; a trailing slash on
   * either side is ignored), then the tenant and role `required`.
   */
  verify(token: string, expectedAudience: string | readonly string[], required?: TokenRequirements): TokenVerification;
  /** Every token value issued so far, oldest first (tests scan logs for them). */
  issued(): string[];
}

export interface TokenAuthorityOptions {
  /** @default 3600 */
  lifetimeSeconds?: number;
  /** The clock, epoch milliseconds. @default Date.now */
  now?: () => number;
}

const HEADER = encodeSegment({ alg: 'HS256', typ: 'JWT' });

export function createTokenAuthority(options: TokenAuthorityOptions = {}): TokenAuthority {
  const lifetimeSeconds = options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds <= 0) {
    throw new RangeError(`lifetimeSeconds is ${lifetimeSeconds}: expected a positive whole number of seconds`);
  }
  const now = options.now ?? Date.now;
  const signingKey = randomBytes(32);
  const issuedTokens: string[] = [];
  const sign = (signingInput: string): Buffer => createHmac('sha256', signingKey).update(signingInput).digest();
  const nowSeconds = (): number => Math.floor(now() / 1000);

  return {
    issue({ resource, clientId, tenantId, roles }) {
      const issuedAt = nowSeconds();
      const principalId = clientId ?? EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID;
      const claims: TokenClaims = {
        aud: resource,
        iss: EMULATED_ISSUER,
        appid: principalId,
        oid: principalId,
        tid: tenantId ?? EMULATED_PARTNER_TENANT_ID,
        roles: [...(roles ?? [PARTNER_BILLING_ROLE])],
        iat: issuedAt,
        nbf: issuedAt,
        exp: issuedAt + lifetimeSeconds,
      };
      const signingInput = `${HEADER}.${encodeSegment(claims)}`;
      const token = `${signingInput}.${sign(signingInput).toString('base64url')}`;
      issuedTokens.push(token);
      return { token, expiresOn: claims.exp };
    },

    verify(token, expectedAudience, required = {}) {
      const segments = token.split('.');
      if (segments.length !== 3) return invalidToken('the token is not a JWT (expected three dot-separated segments)');
      const [header, payload, signature] = segments as [string, string, string];
      const expected = sign(`${header}.${payload}`);
      const actual = Buffer.from(signature, 'base64url');
      if (header !== HEADER || actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        return invalidToken('the token signature is invalid');
      }
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
      const current = nowSeconds();
      if (current >= claims.exp) return invalidToken(`the token expired at ${isoSeconds(claims.exp)}`);
      if (current < claims.nbf) return invalidToken(`the token is not valid before ${isoSeconds(claims.nbf)}`);
      const audiences = typeof expectedAudience === 'string' ? [expectedAudience] : expectedAudience;
      if (!audiences.some((audience) => withoutTrailingSlash(claims.aud) === withoutTrailingSlash(audience))) {
        return invalidToken(`the token audience is '${claims.aud}': expected ${audiences.map((audience) => `'${audience}'`).join(' or ')}`);
      }
      if (required.tenantId !== undefined && claims.tid !== required.tenantId) {
        return invalidToken(`the token was issued in tenant '${claims.tid}': expected the partner tenant '${required.tenantId}'`);
      }
      if (required.role !== undefined && !(Array.isArray(claims.roles) && claims.roles.includes(required.role))) {
        return {
          ok: false,
          reason: `the token's roles are [${(claims.roles ?? []).join(', ')}]: expected the application permission ${required.role}`,
          status: 403,
          code: 'Authorization_RequestDenied',
        };
      }
      return { ok: true, claims };
    },

    issued: () => [...issuedTokens],
  };
}

/** A token Graph does not take: 401 InvalidAuthenticationToken, saying why. */
export function invalidToken(reason: string): TokenVerification {
  return { ok: false, reason, status: 401, code: 'InvalidAuthenticationToken' };
}

function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function withoutTrailingSlash(audience: string): string {
  return audience.replace(/\/+$/, '');
}

function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}
