/** What the HTTP handlers (./runsApi.ts, ./backfill.ts) share: the 400 they answer, and reading a JSON body. */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';

export function badRequest(message: string): HttpResponseInit {
  return { status: 400, jsonBody: { error: { code: 'BadRequest', message } } };
}

/**
 * The request's body parsed as JSON, or the 400 refusing it: larger than `maxBytes`, or not JSON
 * (`notJson`: the handler's own words for what it expected). A blank body is `blank` when given
 * (a start request's fields are all optional), otherwise not JSON.
 */
export async function readJsonBody(
  request: HttpRequest,
  maxBytes: number,
  options: { readonly notJson: string; readonly blank?: unknown },
): Promise<{ readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly response: HttpResponseInit }> {
  const text = await request.text();
  if (Buffer.byteLength(text) > maxBytes) return { ok: false, response: badRequest(`the body is larger than ${maxBytes} bytes`) };
  if ('blank' in options && text.trim() === '') return { ok: true, body: options.blank };
  try {
    return { ok: true, body: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, response: badRequest(options.notJson) };
  }
}
