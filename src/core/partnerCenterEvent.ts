/**
 * Partner Center webhook events, parsed from the verified body. Partner Center documents the
 * event model as five PascalCase properties (EventName, ResourceUri, ResourceName, AuditUri,
 * ResourceChangeUtcDate); this app acts on two events:
 *   - `invoice-ready` (ResourceName `invoice`, ResourceUri `{baseURL}/v1/invoices/{InvoiceId}`):
 *     a new invoice is ready, so its billed usage and billed reconciliation can be exported;
 *   - `test-created` (ResourceName `test`): the test event Partner Center sends when the partner
 *     validates a registration (POST /webhooks/v1/registration/validationEvents).
 * Any other event a registration may include is recognised and ignored.
 * Sources: https://learn.microsoft.com/partner-center/developer/partner-center-webhook-events
 * and https://learn.microsoft.com/partner-center/developer/partner-center-webhooks
 *
 * Pure: bytes in, a decision as data out. Problems name the property and what was expected.
 */
import { INVOICE_ID_FORM, parseInvoiceId } from './naming';

/** An event is five short properties; a body larger than this is not one. */
export const MAX_EVENT_BYTES = 16 * 1024;

// Invoice ids are checked by the one parser every way in uses (./naming.ts, parseInvoiceId).

export const INVOICE_READY = 'invoice-ready';
export const TEST_CREATED = 'test-created';

export type PartnerCenterEvent =
  | {
      readonly kind: 'invoiceReady';
      readonly invoiceId: string;
      /** As Partner Center sent it: part of the event's identity (a re-issued invoice is a new event). */
      readonly resourceChangeUtcDate: string;
    }
  | { readonly kind: 'test' }
  | { readonly kind: 'ignored'; readonly eventName: string };

export class InvalidPartnerCenterEventError extends Error {
  override readonly name = 'InvalidPartnerCenterEventError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid Partner Center event: ${problems.join('; ')}`);
  }
}

export function parsePartnerCenterEvent(body: Uint8Array): PartnerCenterEvent {
  if (body.byteLength > MAX_EVENT_BYTES) {
    throw new InvalidPartnerCenterEventError([`the body is ${body.byteLength} bytes: expected at most ${MAX_EVENT_BYTES}`]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new InvalidPartnerCenterEventError(['the body is not UTF-8 text: expected a JSON object']);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidPartnerCenterEventError(['the body is not JSON: expected a JSON object with EventName, ResourceUri and ResourceChangeUtcDate']);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidPartnerCenterEventError([`the body is ${describe(parsed)}: expected a JSON object with EventName, ResourceUri and ResourceChangeUtcDate`]);
  }

  // Partner Center serialises PascalCase; its own .NET samples bind property names
  // case-insensitively, so this does too.
  const properties = new Map(Object.entries(parsed as Record<string, unknown>).map(([name, value]) => [name.toLowerCase(), value]));
  const eventName = properties.get('eventname');
  if (typeof eventName !== 'string' || eventName.trim() === '') {
    throw new InvalidPartnerCenterEventError([`EventName is ${describe(eventName)}: expected a non-empty string such as '${INVOICE_READY}'`]);
  }
  const name = eventName.trim().toLowerCase();
  if (name === TEST_CREATED) return { kind: 'test' };
  if (name !== INVOICE_READY) return { kind: 'ignored', eventName: eventName.trim() };

  const problems: string[] = [];
  const invoiceId = invoiceIdFrom(properties.get('resourceuri'), problems);
  const resourceName = properties.get('resourcename');
  if (resourceName !== undefined && resourceName !== null && (typeof resourceName !== 'string' || resourceName.toLowerCase() !== 'invoice')) {
    problems.push(`ResourceName is ${describe(resourceName)}: expected 'invoice' for an ${INVOICE_READY} event`);
  }
  const changed = properties.get('resourcechangeutcdate');
  if (typeof changed !== 'string' || !isIsoDateTime(changed)) {
    problems.push(`ResourceChangeUtcDate is ${describe(changed)}: expected an ISO 8601 date and time such as '2026-11-08T09:37:19.3520276+00:00'`);
  }
  if (problems.length > 0) throw new InvalidPartnerCenterEventError(problems);
  return {
    kind: 'invoiceReady',
    invoiceId: invoiceId!,
    resourceChangeUtcDate: changed as string,
  };
}

/**
 * What makes two deliveries the same event: a redelivery or a replay has the same invoice and
 * change time; a later change of the same invoice is a new event.
 */
export function eventIdentity(event: Extract<PartnerCenterEvent, { kind: 'invoiceReady' }>): string {
  return `${INVOICE_READY}\n${event.invoiceId}\n${event.resourceChangeUtcDate}`;
}

function invoiceIdFrom(value: unknown, problems: string[]): string | undefined {
  const expected = `expected an absolute URL ending in /v1/invoices/{invoiceId}, with ${INVOICE_ID_FORM}`;
  if (typeof value !== 'string') {
    problems.push(`ResourceUri is ${describe(value)}: ${expected}`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`ResourceUri is ${describe(value)}: ${expected}`);
    return undefined;
  }
  // The base URL differs per cloud (e.g. a path prefix); only the resource path matters here.
  const match = /\/v1\/invoices\/([^/]+)\/?$/i.exec(url.pathname);
  const invoiceId = match?.[1] ? parseInvoiceId(decodeURIComponent(match[1])) : undefined;
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !invoiceId) {
    problems.push(`ResourceUri is ${describe(value)}: ${expected}`);
    return undefined;
  }
  return invoiceId;
}

function isIsoDateTime(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$/.test(value) && !Number.isNaN(Date.parse(value));
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${value.length > 120 ? `${value.slice(0, 120)}…` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return 'an object';
}
