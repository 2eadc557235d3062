/**
 * Secrets must never reach logs, errors, the ledger or queue messages. The two secrets this
 * app handles are bearer tokens (JWTs) and SAS signatures in URLs; these functions remove
 * them from any text or URL before it is shown or stored.
 */

const URL_QUERY = /(https?:\/\/[^\s"'<>?#]+)\?[^\s"'<>]*/gi;
const SAS_SIGNATURE = /\b(sig|skoid|sktid|skt|ske|sks|skv)=([^&\s"'<>]+)/gi;
const BEARER = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const URL_USERINFO = /\b(https?:\/\/)[^\s"'<>/?#@]+@/gi;

/** Removes credentials and query strings from URLs, SAS signature parameters, bearer tokens and JWTs. */
export function redactSecrets(text: string): string {
  return text
    .replace(URL_USERINFO, '$1<redacted>@')
    .replace(URL_QUERY, '$1?<redacted>')
    .replace(SAS_SIGNATURE, '$1=<redacted>')
    .replace(BEARER, '$1 <redacted>')
    .replace(JWT, '<redacted-token>');
}

/** A URL without its query string and fragment: safe to log and to store. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return redactSecrets(url.split(/[?#]/, 1)[0] ?? '');
  }
}
