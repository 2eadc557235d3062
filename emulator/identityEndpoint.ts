/**
 * An App Service / Azure Functions style managed-identity endpoint (api-version 2019-08-01), the
 * one @azure/identity (through MSAL) calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set.
 * https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, LOOPBACK_HOST, sendJson } from './httpServer';
import { EMULATED_SYSTEM_ASSIGNED_PRINCIPAL_ID, type TokenAuthority } from './tokens';

export const IDENTITY_TOKEN_PATH = '/msi/token';
const SUPPORTED_API_VERSION = '2019-08-01';
/**
 * The other ways to pick a user-assigned identity (MSAL sends object_id and mi_res_id, older callers
 * principal_id). Only client_id is emulated; refusing the rest beats silently answering for another identity.
 */
const UNSUPPORTED_IDENTITY_SELECTORS = ['object_id', 'principal_id', 'mi_res_id'];

export interface IdentityEndpoint {
  /** The value for IDENTITY_ENDPOINT, e.g. http://127.0.0.1:41234/msi/token. */
  endpoint: string;
  /** The value for IDENTITY_HEADER: the secret callers must echo in X-IDENTITY-HEADER. */
  header: string;
  stop(): Promise<void>;
}

export async function startIdentityEndpoint(authority: TokenAuthority): Promise<IdentityEndpoint> {
  const secret = randomBytes(24).toString('hex');
  const server = createServer((request, response) => answer(request, response, authority, secret));
  const port = await listenOnLoopback(server);
  return {
    endpoint: `http://${LOOPBACK_HOST}:${port}${IDENTITY_TOKEN_PATH}`,
    header: secret,
    stop: () => closeServer(server),
  };
}

function answer(request: IncomingMessage, response: ServerResponse, authority: TokenAuthority, secret: string): void {
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

  const clientId = query.get('client_id') ?? undefined;
  const { token, expiresOn } = authority.issue({ resource, clientId });
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
