import { describe, expect, it } from 'vitest';
import { MAX_BACKFILL_INVOICES } from '../../src/core/policy';
import { InvalidRequestError, isCurrencyCode, parseRunFilter, runMatches } from '../../src/core/requestFields';
import { aBilledRun, aRun } from '../support/runs';
import { InvalidStartRequestError, parseBackfillRequest, parseStartRequest } from '../../src/core/startRequest';

const settings = {
  currencies: ['EUR', 'USD'],
  billingPeriod: 'last',
  attributeSet: 'full',
  exportKinds: ['unbilled-usage', 'unbilled-reconciliation'],
  billedExportKinds: ['billed-usage', 'billed-reconciliation'],
} as const;

describe('parseStartRequest', () => {
  it('fills what is left out from the settings (the kind is the first of EXPORT_KINDS)', () => {
    expect(parseStartRequest({}, settings, 'http')).toEqual({
      kind: 'unbilled-usage',
      currency: 'EUR',
      billingPeriod: 'last',
      attributeSet: 'full',
      force: false,
      trigger: 'http',
    });
    expect(parseStartRequest(undefined, { ...settings, exportKinds: ['unbilled-reconciliation'] }, 'cli')).toMatchObject({
      kind: 'unbilled-reconciliation',
      currency: 'EUR',
      trigger: 'cli',
    });
  });

  it('takes every field of an unbilled kind, upper-casing the currency', () => {
    expect(
      parseStartRequest({ kind: 'unbilled-reconciliation', currency: 'gbp', billingPeriod: 'current', attributeSet: 'basic', force: true }, settings, 'http'),
    ).toEqual({
      kind: 'unbilled-reconciliation',
      currency: 'GBP',
      billingPeriod: 'current',
      attributeSet: 'basic',
      force: true,
      trigger: 'http',
    });
  });

  it('takes a billed kind with its invoice, and neither currency nor period', () => {
    expect(parseStartRequest({ kind: 'billed-reconciliation', invoiceId: 'G016907411' }, settings, 'http')).toEqual({
      kind: 'billed-reconciliation',
      invoiceId: 'G016907411',
      attributeSet: 'full',
      force: false,
      trigger: 'http',
    });
  });

  it('refuses a billed kind without an invoice, with a currency or a period, naming each', () => {
    expect(() => parseStartRequest({ kind: 'billed-usage' }, settings, 'http')).toThrow(
      "'invoiceId' is missing: billed-usage exports one invoice, expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411",
    );
    expect(() => parseStartRequest({ kind: 'billed-usage', invoiceId: 'G016907411', currency: 'EUR', billingPeriod: 'last' }, settings, 'http')).toThrow(
      "'currency' is for unbilled kinds: billed-usage exports the invoice's own month and currency, so leave 'currency' out; 'billingPeriod' is for unbilled kinds",
    );
  });

  it.each([['G01690741/../x'], ['016907411'], ['G12'], ['GG016907411'], ['g016907411'], [16907411], ['G016907411 ']])(
    'refuses the invoice id %j, naming the expected form',
    (invoiceId) => {
      expect(() => parseStartRequest({ kind: 'billed-usage', invoiceId }, settings, 'http')).toThrow(
        `'invoiceId' is ${typeof invoiceId === 'string' ? `'${invoiceId}'` : String(invoiceId)}: expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411`,
      );
    },
  );

  it('refuses an invoice for an unbilled kind, and an invoice without a kind', () => {
    expect(() => parseStartRequest({ kind: 'unbilled-usage', invoiceId: 'G016907411' }, settings, 'http')).toThrow(
      "'invoiceId' is for billed kinds (billed-usage, billed-reconciliation): 'unbilled-usage' exports a month, so leave 'invoiceId' out",
    );
    expect(() => parseStartRequest({ invoiceId: 'G016907411' }, settings, 'http')).toThrow(
      "'kind' is missing: an invoice is exported as one of billed-usage, billed-reconciliation",
    );
  });

  it('names every problem at once', () => {
    const attempt = () =>
      parseStartRequest({ kind: 'usage', currency: 'EURO', billingPeriod: 'previous', attributeSet: 'all', force: 'yes', month: '2026-10' }, settings, 'http');
    expect(attempt).toThrow(InvalidStartRequestError);
    expect(attempt).toThrow(
      "Invalid export request: unknown field 'month': expected only kind, invoiceId, currency, billingPeriod, attributeSet, force; 'kind' is 'usage': expected one of unbilled-usage, unbilled-reconciliation, billed-usage, billed-reconciliation; 'attributeSet' is 'all': expected full or basic; 'force' is 'yes': expected true or false; 'currency' is 'EURO': expected an ISO 4217 currency code such as EUR; 'billingPeriod' is 'previous': expected current or last",
    );
  });

  it('rejects a body that is not an object', () => {
    expect(() => parseStartRequest(['EUR'], settings, 'http')).toThrow(
      'the body is an array: expected a JSON object {kind, invoiceId, currency, billingPeriod, attributeSet, force}',
    );
  });

  it('accepts only ISO 4217 currencies, as the runtime lists them', () => {
    expect(parseStartRequest({ currency: 'chf' }, settings, 'http')).toMatchObject({ currency: 'CHF' });
    expect(() => parseStartRequest({ currency: 'EUT' }, settings, 'http')).toThrow("'currency' is 'EUT': expected an ISO 4217 currency code such as EUR");
  });

  it('names the fields as the caller says: the CLI passes its flags', () => {
    const flags = {
      kind: '--kind',
      invoiceId: '--invoice',
      currency: '--currency',
      billingPeriod: '--period',
      attributeSet: '--attribute-set',
      force: '--force',
    };
    expect(() => parseStartRequest({ billingPeriod: 'yesterday', currency: 'EUT' }, settings, 'cli', flags)).toThrow(
      "--currency is 'EUT': expected an ISO 4217 currency code such as EUR; --period is 'yesterday': expected current or last",
    );
    expect(() => parseStartRequest({ kind: 'billed-usage', invoiceId: 'nope' }, settings, 'cli', flags)).toThrow(
      "--invoice is 'nope': expected a Partner Center invoice id",
    );
  });
});

describe('parseBackfillRequest', () => {
  it('takes invoices (repeats once) and defaults the kinds to BILLED_EXPORT_KINDS', () => {
    expect(parseBackfillRequest({ invoiceIds: ['G000000001', 'G000000002', 'G000000001'] }, { ...settings, billedExportKinds: ['billed-usage'] })).toEqual({
      invoiceIds: ['G000000001', 'G000000002'],
      kinds: ['billed-usage'],
      attributeSet: 'full',
      force: false,
    });
    expect(parseBackfillRequest({ invoiceIds: ['G000000001'], kinds: ['billed-reconciliation'], force: true, attributeSet: 'basic' }, settings)).toEqual({
      invoiceIds: ['G000000001'],
      kinds: ['billed-reconciliation'],
      attributeSet: 'basic',
      force: true,
    });
  });

  it('refuses no invoices, a bad id, an unbilled kind and too many invoices, naming each', () => {
    expect(() => parseBackfillRequest({ invoiceIds: [] }, settings)).toThrow(`'invoiceIds' is []: expected a list of 1-${MAX_BACKFILL_INVOICES} invoice ids`);
    expect(() => parseBackfillRequest({ invoiceIds: ['G000000001', 'x/y'], kinds: ['unbilled-usage'] }, settings)).toThrow(
      "Invalid backfill request: 'invoiceIds' has 'x/y': expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411; 'kinds' has 'unbilled-usage': expected one of billed-usage, billed-reconciliation (a backfill exports invoices)",
    );
    const tooMany = Array.from({ length: MAX_BACKFILL_INVOICES + 1 }, (_, i) => `G${String(i + 1).padStart(9, '0')}`);
    expect(() => parseBackfillRequest({ invoiceIds: tooMany }, settings)).toThrow(
      `'invoiceIds' has ${MAX_BACKFILL_INVOICES + 1} invoices: expected at most ${MAX_BACKFILL_INVOICES} per backfill`,
    );
    expect(() => parseBackfillRequest('G1', settings)).toThrow("the body is the string 'G1': expected a JSON object {invoiceIds, kinds, attributeSet, force}");
  });
});

describe('isCurrencyCode', () => {
  it('knows ISO 4217 codes in any casing and nothing else', () => {
    expect(['EUR', 'usd', 'Chf', 'NOK'].map(isCurrencyCode)).toEqual([true, true, true, true]);
    expect(['EUT', 'EURO', 'E1R', '', 'XYZ'].map(isCurrencyCode)).toEqual([false, false, false, false, false]);
  });
});

describe('parseRunFilter', () => {
  it('turns month, status, kind and invoice into the ledger filter', () => {
    expect(parseRunFilter({ month: '2026-10', status: 'failed' })).toEqual({ billingMonth: '2026-10', state: 'failed' });
    expect(parseRunFilter({ kind: 'billed-usage', invoice: 'G016907411', status: 'noNewData' })).toEqual({
      kind: 'billed-usage',
      invoiceId: 'G016907411',
      state: 'noNewData',
    });
    expect(parseRunFilter({})).toEqual({});
  });

  it('rejects a month that is not one, an unknown state, kind or invoice, named as the caller names them', () => {
    expect(() => parseRunFilter({ month: '2026-13', status: 'nonsense' })).toThrow(InvalidRequestError);
    expect(() =>
      parseRunFilter(
        { month: '2026-13', status: 'nonsense', kind: 'usage', invoice: 'G1' },
        { month: '--month', status: '--state', kind: '--kind', invoice: '--invoice' },
      ),
    ).toThrow(
      "--month is '2026-13': expected YYYY-MM; --state is 'nonsense': expected one of starting, polling, copying, succeeded, failed, noData, noNewData; --kind is 'usage': expected one of unbilled-usage, unbilled-reconciliation, billed-usage, billed-reconciliation; --invoice is 'G1': expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411",
    );
    expect(() => parseRunFilter({ month: '' })).toThrow("'month' is '': expected YYYY-MM");
  });
});

describe('runMatches', () => {
  it('passes a run only through every filter given: month for unbilled runs, invoice for billed ones', () => {
    const unbilled = aRun({ state: 'succeeded' });
    const billed = aBilledRun({ state: 'noNewData' });
    expect([unbilled, billed].map((run) => runMatches(run, {}))).toEqual([true, true]);
    expect([unbilled, billed].map((run) => runMatches(run, { billingMonth: '2026-10' }))).toEqual([true, false]);
    expect([unbilled, billed].map((run) => runMatches(run, { invoiceId: 'G016907411' }))).toEqual([false, true]);
    expect([unbilled, billed].map((run) => runMatches(run, { kind: 'billed-usage', state: 'noNewData' }))).toEqual([false, true]);
    expect(runMatches(billed, { invoiceId: 'G016907412' })).toBe(false);
    expect(runMatches(unbilled, { billingMonth: '2026-10', state: 'failed' })).toBe(false);
  });
});
