import { describe, expect, it } from 'vitest';
import { eventIdentity, InvalidPartnerCenterEventError, MAX_EVENT_BYTES, parsePartnerCenterEvent } from '../../src/core/partnerCenterEvent';

const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
const invoiceReady = (overrides: Record<string, unknown> = {}) => ({
  EventName: 'invoice-ready',
  ResourceUri: 'https://api.partnercenter.microsoft.com/v1/invoices/G016907411',
  ResourceName: 'invoice',
  AuditUri: null,
  ResourceChangeUtcDate: '2026-11-08T09:37:19.3520276+00:00',
  ...overrides,
});

function problemsOf(body: Uint8Array): readonly string[] {
  try {
    parsePartnerCenterEvent(body);
  } catch (error) {
    if (error instanceof InvalidPartnerCenterEventError) return error.problems;
    throw error;
  }
  throw new Error('expected the event to be refused');
}

describe('parsePartnerCenterEvent', () => {
  it('reads the invoice id and change time of an invoice-ready event', () => {
    expect(parsePartnerCenterEvent(bytes(invoiceReady()))).toEqual({
      kind: 'invoiceReady',
      invoiceId: 'G016907411',
      resourceChangeUtcDate: '2026-11-08T09:37:19.3520276+00:00',
    });
  });

  it('matches the event name and property names case-insensitively, and a base URL with a path prefix', () => {
    const event = {
      eventname: 'Invoice-Ready',
      resourceUri: 'https://api.partnercenter.microsoft.com/us/v1/invoices/G000000001/',
      ResourceChangeUtcDate: '2026-11-08T09:37:19Z',
    };
    expect(parsePartnerCenterEvent(bytes(event))).toMatchObject({
      kind: 'invoiceReady',
      invoiceId: 'G000000001',
    });
  });

  it('recognises the test-created event a registration is validated with', () => {
    const event = {
      EventName: 'test-created',
      ResourceUri: 'https://api.partnercenter.microsoft.com/webhooks/v1/registration/validationEvents/c0bfd694-3075-4ec5-9a3c-733d3a890a1f',
      ResourceName: 'test',
    };
    expect(parsePartnerCenterEvent(bytes(event))).toEqual({ kind: 'test' });
  });

  it('ignores other Partner Center events by name', () => {
    expect(
      parsePartnerCenterEvent(
        bytes({
          EventName: 'subscription-updated',
          ResourceUri: 'https://api.partnercenter.microsoft.com/v1/customers/x/subscriptions/y',
        }),
      ),
    ).toEqual({
      kind: 'ignored',
      eventName: 'subscription-updated',
    });
  });

  it.each([
    ['G01690741', 'eight digits'],
    ['G0169074111', 'ten digits'],
    ['D016907411', 'another prefix'],
    ['g016907411', 'lower case'],
    ['G01690741%2F', 'an escaped slash'],
  ])('refuses the invoice id %s (%s), naming ResourceUri and the expected form', (invoiceId) => {
    const problems = problemsOf(
      bytes(
        invoiceReady({
          ResourceUri: `https://api.partnercenter.microsoft.com/v1/invoices/${invoiceId}`,
        }),
      ),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ResourceUri is '.+': expected .*\/v1\/invoices\/\{invoiceId\}.*'G' and 9 digits, such as G016907411/);
  });

  it('refuses a ResourceUri that is not an invoice, or not a URL', () => {
    expect(
      problemsOf(
        bytes(
          invoiceReady({
            ResourceUri: 'https://api.partnercenter.microsoft.com/v1/customers/G016907411',
          }),
        ),
      )[0],
    ).toMatch(/^ResourceUri/);
    expect(problemsOf(bytes(invoiceReady({ ResourceUri: '/v1/invoices/G016907411' })))[0]).toMatch(/^ResourceUri is '\/v1\/invoices\/G016907411'/);
    expect(problemsOf(bytes(invoiceReady({ ResourceUri: 'ftp://x/v1/invoices/G016907411' })))[0]).toMatch(/^ResourceUri/);
    expect(problemsOf(bytes(invoiceReady({ ResourceUri: undefined })))[0]).toMatch(/^ResourceUri is missing/);
  });

  it('lists every problem of an invoice-ready event at once', () => {
    const problems = problemsOf(
      bytes(
        invoiceReady({
          ResourceUri: 42,
          ResourceName: 'customer',
          ResourceChangeUtcDate: 'yesterday',
        }),
      ),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^ResourceUri is number 42: expected/),
      expect.stringMatching(/^ResourceName is 'customer': expected 'invoice'/),
      expect.stringMatching(/^ResourceChangeUtcDate is 'yesterday': expected an ISO 8601 date and time/),
    ]);
  });

  it('refuses a body that is not a JSON object with an EventName', () => {
    expect(problemsOf(bytes('not json'))).toEqual([expect.stringMatching(/^the body is not JSON/)]);
    expect(problemsOf(bytes('[1]'))).toEqual([expect.stringMatching(/^the body is an array: expected a JSON object/)]);
    expect(problemsOf(bytes('null'))).toEqual([expect.stringMatching(/^the body is null/)]);
    expect(problemsOf(bytes({ ResourceUri: 'x' }))).toEqual([expect.stringMatching(/^EventName is missing: expected a non-empty string/)]);
    expect(problemsOf(bytes({ EventName: '  ' }))).toEqual([expect.stringMatching(/^EventName is ' {2}'/)]);
    expect(problemsOf(Buffer.from([0x7b, 0xff, 0x7d]))).toEqual([expect.stringMatching(/not UTF-8/)]);
  });

  it('refuses a body larger than any event', () => {
    const big = bytes(invoiceReady({ Padding: 'x'.repeat(MAX_EVENT_BYTES) }));
    expect(problemsOf(big)).toEqual([`the body is ${big.byteLength} bytes: expected at most ${MAX_EVENT_BYTES}`]);
  });
});

describe('eventIdentity', () => {
  const parse = (event: Record<string, unknown>) => {
    const parsed = parsePartnerCenterEvent(bytes(event));
    if (parsed.kind !== 'invoiceReady') throw new Error('expected an invoice-ready event');
    return eventIdentity(parsed);
  };

  it('is the same for a redelivery, however the JSON is laid out', () => {
    expect(parse(invoiceReady())).toBe(eventIdentity(parsePartnerCenterEvent(Buffer.from(JSON.stringify(invoiceReady(), null, 4))) as never));
  });

  it('differs for another invoice or a later change of the same invoice', () => {
    const first = parse(invoiceReady());
    expect(
      parse(
        invoiceReady({
          ResourceUri: 'https://api.partnercenter.microsoft.com/v1/invoices/G016907412',
        }),
      ),
    ).not.toBe(first);
    expect(parse(invoiceReady({ ResourceChangeUtcDate: '2026-11-09T09:37:19Z' }))).not.toBe(first);
  });
});
