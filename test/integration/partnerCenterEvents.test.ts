/**
 * Partner Center's invoice-ready webhook end to end: the emulated sender signs and POSTs over
 * loopback HTTP to a tiny host that hands the request to the handler as an @azure/functions
 * HttpRequest (raw body bytes and headers, as the Functions host does); the certificate is
 * downloaded and verified for real; seen events are recorded in Azurite's table.
 */
import { HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../../emulator/httpServer';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { startPartnerCenterEvents, type PartnerCenterEvents } from '../../emulator/partnerCenterEvents';
import { STALE_CLAIM_MS } from '../../src/adapters/seenEvents';
import { eventIdentity } from '../../src/core/partnerCenterEvent';
import type { Deps } from '../../src/deps';
import { receivePartnerCenterEvent } from '../../src/functions/invoiceEvents';
import { createTestApp, type TestApp } from './harness';

let cloud: LocalCloud;
let sender: PartnerCenterEvents;
let expiredSender: PartnerCenterEvents;
const started: string[] = [];
let failNextStart = false;
let app: TestApp;
let host: { url: string; close(): Promise<void> };

beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 1 } });
  sender = await startPartnerCenterEvents();
  const day = 86_400_000;
  expiredSender = await startPartnerCenterEvents({
    signingValidity: {
      notBefore: new Date(Date.now() - 400 * day),
      notAfter: new Date(Date.now() - day),
    },
  });
  app = createTestApp(
    cloud,
    { WEBHOOK_CERTIFICATE_HOSTS: '127.0.0.1' },
    {
      webhookTrustedRoots: [sender.rootCertificatePem, expiredSender.rootCertificatePem],
      startBilledExports: (invoiceId) => {
        if (failNextStart) {
          failNextStart = false;
          return Promise.reject(new Error('the export engine is down'));
        }
        started.push(invoiceId);
        return Promise.resolve();
      },
    },
  );
  host = await functionsHost(app.deps, () => app.context('partnerCenterEvents'));
});
afterAll(async () => {
  await Promise.all([host?.close(), sender?.close(), expiredSender?.close()]);
  await cloud?.stop();
});

/** What the Functions host does for an HTTP trigger: raw body and headers into an HttpRequest. */
async function functionsHost(deps: Deps, context: () => InvocationContext): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((incoming, outgoing) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of incoming as AsyncIterable<Buffer>) chunks.push(chunk);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(incoming.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      const request = new HttpRequest({
        method: incoming.method ?? 'POST',
        url: `http://127.0.0.1${incoming.url ?? '/'}`,
        headers,
        body: { bytes: Buffer.concat(chunks) },
      });
      let result: HttpResponseInit;
      try {
        result = await receivePartnerCenterEvent(request, context(), deps);
      } catch {
        result = { status: 500 };
      }
      outgoing.writeHead(result.status ?? 200, {
        ...(result.headers as Record<string, string> | undefined),
        'Content-Type': 'application/json',
      });
      outgoing.end(JSON.stringify(result.jsonBody ?? null));
    })();
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/api/events/partner-center`,
    close: () => closeServer(server),
  };
}

let nextInvoice = 100_000_000;
const newInvoiceId = () => `G${nextInvoice++}`;

async function post(response: Promise<Response>): Promise<{ status: number; body: Record<string, unknown> }> {
  const answered = await response;
  return {
    status: answered.status,
    body: (await answered.json()) as Record<string, unknown>,
  };
}

describe('POST /api/events/partner-center', () => {
  it('starts the billed exports of a signed invoice-ready event once, with its invoice id', async () => {
    const invoiceId = newInvoiceId();
    const before = started.length;
    const { status, body } = await post(sender.sendInvoiceReady(host.url, invoiceId));
    expect(status).toBe(200);
    expect(body).toEqual({ invoiceId, started: true });
    expect(started.slice(before)).toEqual([invoiceId]);
  });

  it.each([
    ['a tampered body', { tamper: true }, 'BadSignature'],
    ['a signature made with another key', { wrongKey: true }, 'BadSignature'],
    ['no Authorization header', { omitHeaders: ['authorization'] }, 'BadSignature'],
    ['no certificate URL', { omitHeaders: ['x-ms-certificate-url'] }, 'BadSignature'],
    [
      'a certificate from a host that is not allow-listed',
      {
        certificateUrl: 'https://certs.example.com/cert/pcnotifications-dispatch.microsoft.com.cer',
      },
      'CertificateHostNotAllowed',
    ],
  ])('answers 401 and starts nothing for %s', async (_case, options, code) => {
    const before = started.length;
    const logsBefore = app.logs.length;
    const { body: signedBody, headers } = sender.sign(sender.invoiceReadyEvent(newInvoiceId()), options);
    const { status, body } = await post(fetch(host.url, { method: 'POST', headers, body: signedBody }));
    expect(status).toBe(401);
    expect(body).toEqual({
      error: { code, message: 'the request is not signed by Partner Center' },
    });
    expect(started.length).toBe(before);
    const logged = app.logs.slice(logsBefore).join('\n');
    expect(logged).toContain(`Partner Center event rejected (${code})`);
    const signature = headers.authorization?.replace('Signature ', '');
    if (signature) expect(logged).not.toContain(signature.slice(0, 24));
    expect(logged).not.toContain('ResourceUri');
  });

  it('answers 401 and starts nothing for an expired certificate', async () => {
    const before = started.length;
    const { status, body } = await post(expiredSender.sendInvoiceReady(host.url, newInvoiceId()));
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: { code: 'UntrustedCertificate' } });
    expect(started.length).toBe(before);
  });

  it('answers 200 and starts nothing new for a redelivered or replayed event', async () => {
    const invoiceId = newInvoiceId();
    const event = sender.invoiceReadyEvent(invoiceId, '2026-11-08T09:37:19.3520276+00:00');
    const before = started.length;
    const first = await post(sender.send(host.url, event));
    const again = await post(sender.send(host.url, event));
    const replay = await post(sender.send(host.url, JSON.stringify(event))); // same event, other layout
    expect([first.status, again.status, replay.status]).toEqual([200, 200, 200]);
    expect(again.body).toEqual({ invoiceId, duplicate: true });
    expect(replay.body).toEqual({ invoiceId, duplicate: true });
    expect(started.slice(before)).toEqual([invoiceId]);
  });

  it('starts the same invoice again for a later change of it', async () => {
    const invoiceId = newInvoiceId();
    const before = started.length;
    await post(
      sender.sendInvoiceReady(host.url, invoiceId, {
        resourceChangeUtcDate: '2026-11-08T09:00:00Z',
      }),
    );
    const later = await post(
      sender.sendInvoiceReady(host.url, invoiceId, {
        resourceChangeUtcDate: '2026-11-09T09:00:00Z',
      }),
    );
    expect(later.body).toEqual({ invoiceId, started: true });
    expect(started.slice(before)).toEqual([invoiceId, invoiceId]);
  });

  it('lets Partner Center’s retry start the event when starting it failed', async () => {
    const invoiceId = newInvoiceId();
    const event = sender.invoiceReadyEvent(invoiceId);
    const before = started.length;
    failNextStart = true;
    const failed = await fetch(host.url, {
      method: 'POST',
      ...signedInit(event),
    });
    expect(failed.status).toBe(500);
    const retried = await post(sender.send(host.url, event));
    expect(retried.body).toEqual({ invoiceId, started: true });
    expect(started.slice(before)).toEqual([invoiceId]);
  });

  it('answers 503 while another delivery of the event is being started, and takes over a claim left by a crashed delivery', async () => {
    const [busy, crashed] = [newInvoiceId(), newInvoiceId()];
    const changedAt = '2026-11-08T09:37:19Z';
    const identity = (invoiceId: string) => eventIdentity({ kind: 'invoiceReady', invoiceId, resourceChangeUtcDate: changedAt });
    await app.deps.ready();
    expect(await app.deps.seenEvents.claim(identity(busy), { invoiceId: busy, eventName: 'invoice-ready' }, new Date())).toBe('claimed');
    const staleAt = new Date(Date.now() - STALE_CLAIM_MS - 1_000);
    expect(await app.deps.seenEvents.claim(identity(crashed), { invoiceId: crashed, eventName: 'invoice-ready' }, staleAt)).toBe('claimed');
    const before = started.length;

    const inFlight = await sender.sendInvoiceReady(host.url, busy, { resourceChangeUtcDate: changedAt });
    expect(inFlight.status).toBe(503);
    expect(inFlight.headers.get('retry-after')).toBe('60');
    const takenOver = await post(sender.sendInvoiceReady(host.url, crashed, { resourceChangeUtcDate: changedAt }));
    expect(takenOver.body).toEqual({ invoiceId: crashed, started: true });
    expect(started.slice(before)).toEqual([crashed]);
  });

  it('answers 200 to the test-created event of a registration check, starting nothing', async () => {
    const before = started.length;
    const { status, body } = await post(sender.send(host.url, sender.testEvent()));
    expect(status).toBe(200);
    expect(body).toEqual({ accepted: 'test-created' });
    expect(started.length).toBe(before);
  });

  it('answers 400 to a signed event it cannot read, naming the field', async () => {
    const before = started.length;
    const event = {
      ...sender.invoiceReadyEvent('G016907411'),
      ResourceUri: 'https://api.partnercenter.microsoft.com/v1/invoices/INV-42',
    };
    const { status, body } = await post(sender.send(host.url, event));
    expect(status).toBe(400);
    expect(body).toMatchObject({
      error: {
        code: 'InvalidEvent',
        message: expect.stringMatching(/ResourceUri is '.*INV-42'/) as unknown,
      },
    });
    expect(started.length).toBe(before);
  });

  it('answers 503 with Retry-After when the certificate cannot be downloaded, starting nothing', async () => {
    const before = started.length;
    const missing = sender.certificateUrl.replace('/cert/', '/no-such-cert/');
    const response = await sender.sendInvoiceReady(host.url, newInvoiceId(), {
      certificateUrl: missing,
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('60');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('CertificateUnavailable');
    expect(started.length).toBe(before);
  });

  it('answers 413 to a body larger than any event, before verifying it', async () => {
    const response = await sender.send(host.url, {
      ...sender.invoiceReadyEvent(newInvoiceId()),
      Padding: 'x'.repeat(20_000),
    });
    expect(response.status).toBe(413);
  });

  it('downloads the certificate once for many events', async () => {
    for (let i = 0; i < 5; i++) expect((await sender.sendInvoiceReady(host.url, newInvoiceId())).status).toBe(200);
    // Every test in this file used the one sender; its certificate was downloaded by the first.
    expect(sender.certificateDownloads()).toBe(1);
  });
});

describe('an invoice-ready event and the export engine', () => {
  it('a signed event starts both billed exports of its invoice, which land; a tampered one starts nothing', async () => {
    // The app as deployed: BILLED_EXPORT_KINDS at its default, the real start of billed exports.
    const engine = createTestApp(cloud, { WEBHOOK_CERTIFICATE_HOSTS: '127.0.0.1' }, { webhookTrustedRoots: [sender.rootCertificatePem] });
    const engineHost = await functionsHost(engine.deps, () => engine.context('partnerCenterEvents'));
    try {
      const before = cloud.billing.exports().length;
      const tampered = sender.sign(sender.invoiceReadyEvent('G000000004'), { tamper: true });
      expect((await fetch(engineHost.url, { method: 'POST', headers: tampered.headers, body: tampered.body })).status).toBe(401);
      expect(await engine.deps.ledger.listRuns({ invoiceId: 'G000000004' })).toEqual([]);

      const { status, body } = await post(sender.sendInvoiceReady(engineHost.url, 'G000000001'));
      expect(status).toBe(200);
      expect(body).toEqual({ invoiceId: 'G000000001', started: true });
      const runs = await engine.deps.ledger.listRuns({ invoiceId: 'G000000001' });
      expect(runs.map((run) => `${run.kind} ${run.trigger}`).sort()).toEqual(['billed-reconciliation event', 'billed-usage event']);
      const { runs: landed } = await engine.work({ runIds: runs.map((run) => run.runId) });
      expect(landed.map((run) => run.state)).toEqual(['succeeded', 'succeeded']);
      expect(
        cloud.billing
          .exports()
          .slice(before)
          .map((record) => `${record.kind} ${record.invoiceId}`)
          .sort(),
      ).toEqual(['billed-reconciliation G000000001', 'billed-usage G000000001']);

      // A later change of the invoice (a new event) finds both landed: no new export.
      const later = await post(sender.sendInvoiceReady(engineHost.url, 'G000000001', { resourceChangeUtcDate: '2030-01-01T00:00:00Z' }));
      expect(later.body).toEqual({ invoiceId: 'G000000001', started: true });
      expect(cloud.billing.exports().length - before).toBe(2);
    } finally {
      await engineHost.close();
    }
  });
});

function signedInit(event: Record<string, unknown>): {
  headers: Record<string, string>;
  body: Buffer;
} {
  return sender.sign(event);
}
