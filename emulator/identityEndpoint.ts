/**
 * An App Service / Azure Functions style managed-identity endpoint (api-version 2019-08-01), the
 * one @azure/identity (through MSAL) calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set.
 * https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
 *
 * As strict as the real one: it issues tokens only to the identities assigned to the app, named
 * by client_id or by Azure resource ID (mi_res_id); an unknown one gets App Service's 400 "Unable
 * to load the proper Managed Identity.") and
 * only for resources Entra ID knows (anything else gets Entra's AADSTS500011 invalid_resource).
 * Its tokens carry what Graph checks: `tid`, the tenant the app lives in, and in Graph tokens
 * `roles`, the app roles granted (PartnerBilling.Read.All, except for an identity never granted it).
 * ManagedIdentityCredential turns a scope `<resource>/.default` into `resource=<resource>`.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, LOOPBACK_HOST, sendJson } from './httpServer';
import {
  EMULATED_PARTNER_TENANT_ID,
  EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
  EMULATED_UNGRANTED_CLIENT_ID,
  EMULATED_USER_ASSIGNED_CLIENT_ID,
  EMULATED_USER_ASSIGNED_RESOURCE_ID,
  GRAPH_AUDIENCES,
  PARTNER_BILLING_ROLE,
  type TokenAuthority,
} from './tokens';

export const IDENTITY_TOKEN_PATH = '/msi/token';
const SUPPORTED_API_VERSION = '2019-08-01';
/**
 * The other ways to pick a user-assigned identity (MSAL sends object_id, older callers
 * principal_id). Only client_id and mi_res_id are emulated; refusing the rest beats silently
 * answering for another identity.
 */
const UNSUPPORTED_IDENTITY_SELECTORS = ['object_id', 'principal_id'];

/** Resource principals of the partner tenant: Microsoft Graph, Storage, Azure Monitor, Resource Manager. */
export const KNOWN_RESOURCES: readonly string[] = [
  ...GRAPH_AUDIENCES,
  'https://storage.azure.com',
  'https://monitor.azure.com',
  'https://management.azure.com',
];

export interface IdentityEndpointOptions {
  /** Whether the app has a system-assigned identity (a request without client_id). @default true */
  readonly systemAssigned?: boolean;
  /** Client ids of the user-assigned identities assigned to the app. @default [EMULATED_USER_ASSIGNED_CLIENT_ID] */
  readonly userAssignedClientIds?: readonly string[];
  /** Resource IDs of those identities, to client id. @default {EMULATED_USER_ASSIGNED_RESOURCE_ID: EMULATED_USER_ASSIGNED_CLIENT_ID} */
  readonly userAssignedResourceIds?: Readonly<Record<string, string>>;
  /** The resources tokens can be issued for (a trailing slash is ignored). @default KNOWN_RESOURCES */
  readonly resources?: readonly string[];
  /**
   * The identities (client ids) that were never granted a Graph app role: their Graph tokens carry
   * no `roles`. Every other identity has PartnerBilling.Read.All. @default [EMULATED_UNGRANTED_CLIENT_ID]
   */
  readonly ungrantedClientIds?: readonly string[];
  /**
   * The Entra tenant the app and its identities live in (the `tid` of every token): a Function
   * App whose subscription is not in the partner tenant gets tokens Graph's partner billing API
   * refuses. @default EMULATED_PARTNER_TENANT_ID
   */
  readonly tenantId?: string;
}

export interface IdentityEndpoint {
  /** The value for IDENTITY_ENDPOINT, e.g. http://127.0.0.1:41234/msi/token. */
  endpoint: string;
  /** The value for IDENTITY_HEADER: the secret callers must echo in X-IDENTITY-HEADER. */
  header: string;
  stop(): Promise<void>;
}

export async function startIdentityEndpoint(authority: TokenAuthority, options: IdentityEndpointOptions = {}): Promise<IdentityEndpoint> {
  const secret = randomBytes(24).toString('hex');
  const assigned: Assignment = {
    systemAssigned: options.systemAssigned ?? true,
    clientIds: new Set((options.userAssignedClientIds ?? [EMULATED_USER_ASSIGNED_CLIENT_ID, EMULATED_UNGRANTED_CLIENT_ID]).map((id) => id.toLowerCase())),
    ungranted: new Set((options.ungrantedClientIds ?? [EMULATED_UNGRANTED_CLIENT_ID]).map((id) => id.toLowerCase())),
    tenantId: options.tenantId ?? EMULATED_PARTNER_TENANT_ID,
    // Azure resource IDs compare without regard to case.
    resourceIds: new Map(
      Object.entries(options.userAssignedResourceIds ?? { [EMULATED_USER_ASSIGNED_RESOURCE_ID]: EMULATED_USER_ASSIGNED_CLIENT_ID }).map(([id, client]) => [
        id.toLowerCase(),
        client,
      ]),
    ),
    resources: new Set((options.resources ?? KNOWN_RESOURCES).map(withoutTrailingSlash)),
  };
  const server = createServer((request, response) => answer(request, response, authority, secret, assigned));
  const port = await listenOnLoopback(server);
  return {
    endpoint: `http://${LOOPBACK_HOST}:${port}${IDENTITY_TOKEN_PATH}`,
    header: secret,
    stop: () => closeServer(server),
  };
}

interface Assignment {
  readonly systemAssigned: boolean;
  readonly clientIds: ReadonlySet<string>;
  readonly ungranted: ReadonlySet<string>;
  readonly tenantId: string;
  readonly resourceIds: ReadonlyMap<string, string>;
  readonly resources: ReadonlySet<string>;
}

function answer(request: IncomingMessage, response: ServerResponse, authority: TokenAuthority, secret: string, assigned: Assignment): void {
  const url = new URL(request.url ?? '/', `http://${LOOPBACK_HOST}`);
  if (url.pathname !== IDENTITY_TOKEN_PATH) {
    return sendError(response, 404, 'NotFound', `no managed-identity endpoint at ${url.pathname}; use ${IDENTITY_TOKEN_PATH}`);
  }
  if (request.method !== 'GET') {
    return sendError(response, 405, 'MethodNotAllowed', `${request.method} is not supported; use GET`, { Allow: 'GET' });
  }
  if (!isExpectedSecret(request.headers['x-identity-header'], secret)) {
    return sendError(response, 401, 'Unauthorized', 'the X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER');
  }

  const query = url.searchParams;
  const apiVersion = query.get('api-version');
  if (apiVersion !== SUPPORTED_API_VERSION) {
    return sendError(response, 400, 'BadRequest', `api-version is '${apiVersion ?? ''}': expected '${SUPPORTED_API_VERSION}'`);
  }
  const resource = query.get('resource');
  if (!resource) {
    const message = 'the resource query parameter is required (the audience of the token, e.g. https://graph.microsoft.com)';
    return sendError(response, 400, 'BadRequest', message);
  }
  const unsupportedSelector = UNSUPPORTED_IDENTITY_SELECTORS.find((name) => query.has(name));
  if (unsupportedSelector) {
    const message = `${unsupportedSelector} is not supported by this emulator; select a user-assigned identity with client_id`;
    return sendError(response, 400, 'BadRequest', message);
  }

  const resourceId = query.get('mi_res_id') ?? undefined;
  if (resourceId !== undefined && query.has('client_id')) {
    return sendError(response, 400, 'BadRequest', 'client_id and mi_res_id are both given: expected one of them');
  }
  const clientId = resourceId === undefined ? (query.get('client_id') ?? undefined) : assigned.resourceIds.get(resourceId.toLowerCase());
  const unassigned =
    resourceId !== undefined ? clientId === undefined : clientId === undefined ? !assigned.systemAssigned : !assigned.clientIds.has(clientId.toLowerCase());
  if (unassigned) {
    // App Service's own words and shape (statusCode/message/correlationId) for an identity the app does not have.
    return sendJson(response, 400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId: randomUUID() });
  }
  if (!assigned.resources.has(withoutTrailingSlash(resource))) {
    // Entra ID refuses a resource it does not know; the endpoint passes its OAuth error through.
    return sendJson(response, 400, {
      error: 'invalid_resource',
      error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${assigned.tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
      error_codes: [500011],
      timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19) + 'Z',
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    });
  }
  // Entra puts the app roles granted on a resource into that resource's tokens only.
  const isGraph = GRAPH_AUDIENCES.some((audience) => withoutTrailingSlash(audience) === withoutTrailingSlash(resource));
  const roles = isGraph && !(clientId !== undefined && assigned.ungranted.has(clientId.toLowerCase())) ? [PARTNER_BILLING_ROLE] : [];
  const { token, expiresOn } = authority.issue({ resource, clientId, tenantId: assigned.tenantId, roles });
  sendJson(response, 200, {
    access_token: token,
    expires_on: String(expiresOn),
    resource,
    token_type: 'Bearer',
    client_id: clientId ?? EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID,
  });
}

function isExpectedSecret(presented: string | string[] | undefined, secret: string): boolean {
  if (typeof presented !== 'string') return false;
  const actual = Buffer.from(presented);
  const expected = Buffer.from(secret);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function sendError(response: ServerResponse, status: number, code: string, message: string, headers = {}): void {
  // MSAL reads `error.code` and `error.message` from this shape into the thrown error.
  sendJson(response, status, { error: { code, message } }, headers);
}

function withoutTrailingSlash(resource: string): string {
  return resource.replace(/\/+$/, '');
}
