/**
 * POST /api/events/partner-center: Partner Center's webhook. Auth level `anonymous`, because
 * Partner Center cannot send a function key; the request is trusted only once its signature
 * verifies against Partner Center's certificate (../adapters/partnerCenterSignature).
 *
 *   200  accepted: an invoice-ready event started the billed exports of its invoice, or was
 *        started before (a redelivery or a replay), or it is a test/other event (nothing to do)
 *   400  signed by Partner Center but not an event this app can read (retrying will not help)
 *   401  unsigned, badly signed or signed by an untrusted certificate: nothing is started
 *   413  larger than any event
 *   503  the certificate could not be fetched, or another delivery of the event is in flight:
 *        Partner Center retries
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { WebhookSignatureError } from '../adapters/partnerCenterSignature';
import { eventIdentity, InvalidPartnerCenterEventError, INVOICE_READY, MAX_EVENT_BYTES, parsePartnerCenterEvent } from '../core/partnerCenterEvent';
import type { Deps } from '../deps';

const RETRY_AFTER_SECONDS = '60';

export async function receivePartnerCenterEvent(request: HttpRequest, context: InvocationContext, deps: Deps): Promise<HttpResponseInit> {
  if (Number(request.headers.get('content-length') ?? '0') > MAX_EVENT_BYTES)
    return reply(413, 'EventTooLarge', `the body is larger than ${MAX_EVENT_BYTES} bytes`);
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.byteLength > MAX_EVENT_BYTES) return reply(413, 'EventTooLarge', `the body is larger than ${MAX_EVENT_BYTES} bytes`);

  try {
    await deps.webhookSignature.verify(body, request.headers);
  } catch (thrown) {
    if (!(thrown instanceof WebhookSignatureError)) throw thrown;
    // The message names headers and the certificate URL, never the signature or the body.
    context.warn(`Partner Center event rejected (${thrown.code}): ${thrown.message}`);
    if (thrown.transient)
      return reply(503, thrown.code, thrown.message, {
        'Retry-After': RETRY_AFTER_SECONDS,
      });
    return reply(401, thrown.code, 'the request is not signed by Partner Center');
  }

  let event;
  try {
    event = parsePartnerCenterEvent(body);
  } catch (thrown) {
    if (!(thrown instanceof InvalidPartnerCenterEventError)) throw thrown;
    context.warn(thrown.message);
    return reply(400, 'InvalidEvent', thrown.message);
  }
  if (event.kind === 'test') return { status: 200, jsonBody: { accepted: 'test-created' } };
  if (event.kind === 'ignored') {
    context.log(`Partner Center event '${event.eventName}' ignored: this app acts on ${INVOICE_READY} only`);
    return { status: 200, jsonBody: { ignored: event.eventName } };
  }

  const identity = eventIdentity(event);
  await deps.ready();
  const claim = await deps.seenEvents.claim(identity, { invoiceId: event.invoiceId, eventName: INVOICE_READY }, deps.now());
  if (claim === 'duplicate')
    return {
      status: 200,
      jsonBody: { invoiceId: event.invoiceId, duplicate: true },
    };
  if (claim === 'inProgress')
    return reply(503, 'EventInProgress', `invoice ${event.invoiceId} is being started by another delivery`, { 'Retry-After': RETRY_AFTER_SECONDS });
  try {
    await deps.startBilledExports(event.invoiceId, context);
  } catch (thrown) {
    await deps.seenEvents.release(identity).catch(() => undefined); // so the retry starts it
    throw thrown;
  }
  await deps.seenEvents.markStarted(identity, deps.now());
  context.log(`invoice ${event.invoiceId} ready (changed ${event.resourceChangeUtcDate}): billed exports started`);
  return {
    status: 200,
    jsonBody: { invoiceId: event.invoiceId, started: true },
  };
}

function reply(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, headers, jsonBody: { error: { code, message } } };
}
