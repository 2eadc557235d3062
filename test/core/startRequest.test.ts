import { describe, expect, it } from 'vitest';
import { InvalidRequestError, isCurrencyCode, parseRunFilter } from '../../src/core/requestFields';
import { InvalidStartRequestError, parseStartRequest } from '../../src/core/startRequest';

const settings = { currencies: ['EUR', 'USD'], billingPeriod: 'last', attributeSet: 'full' } as const;

describe('parseStartRequest', () => {
  it('fills what is left out from the settings', () => {
    expect(parseStartRequest({}, settings, 'http')).toEqual({ currency: 'EUR', billingPeriod: 'last', attributeSet: 'full', force: false, trigger: 'http' });
    expect(parseStartRequest(undefined, settings, 'cli')).toMatchObject({ currency: 'EUR', trigger: 'cli' });
  });

  it('takes every field, upper-casing the currency', () => {
    expect(parseStartRequest({ currency: 'gbp', billingPeriod: 'current', attributeSet: 'basic', force: true }, settings, 'http')).toEqual({
      currency: 'GBP',
      billingPeriod: 'current',
      attributeSet: 'basic',
      force: true,
      trigger: 'http',
    });
  });

  it('names every problem at once', () => {
    const attempt = () => parseStartRequest({ currency: 'EURO', billingPeriod: 'previous', attributeSet: 'all', force: 'yes', month: '2026-10' }, settings, 'http');
    expect(attempt).toThrow(InvalidStartRequestError);
    expect(attempt).toThrow(
      "Invalid export request: unknown field 'month': expected only currency, billingPeriod, attributeSet, force; 'currency' is 'EURO': expected an ISO 4217 currency code such as EUR; 'billingPeriod' is 'previous': expected current or last; 'attributeSet' is 'all': expected full or basic; 'force' is 'yes': expected true or false",
    );
  });

  it('rejects a body that is not an object', () => {
    expect(() => parseStartRequest(['EUR'], settings, 'http')).toThrow("the body is an array: expected a JSON object {currency, billingPeriod, attributeSet, force}");
  });

  it('accepts only ISO 4217 currencies, as the runtime lists them', () => {
    expect(parseStartRequest({ currency: 'chf' }, settings, 'http').currency).toBe('CHF');
    expect(() => parseStartRequest({ currency: 'EUT' }, settings, 'http')).toThrow("'currency' is 'EUT': expected an ISO 4217 currency code such as EUR");
  });

  it('names the fields as the caller says: the CLI passes its flags', () => {
    const flags = { currency: '--currency', billingPeriod: '--period', attributeSet: '--attribute-set', force: '--force' };
    expect(() => parseStartRequest({ billingPeriod: 'yesterday', currency: 'EUT' }, settings, 'cli', flags)).toThrow(
      "--currency is 'EUT': expected an ISO 4217 currency code such as EUR; --period is 'yesterday': expected current or last",
    );
  });
});

describe('isCurrencyCode', () => {
  it('knows ISO 4217 codes in any casing and nothing else', () => {
    expect(['EUR', 'usd', 'Chf', 'NOK'].map(isCurrencyCode)).toEqual([true, true, true, true]);
    expect(['EUT', 'EURO', 'E1R', '', 'XYZ'].map(isCurrencyCode)).toEqual([false, false, false, false, false]);
  });
});

describe('parseRunFilter', () => {
  it('turns month and status into the ledger filter', () => {
    expect(parseRunFilter({ month: '2026-10', status: 'failed' })).toEqual({ billingMonth: '2026-10', state: 'failed' });
    expect(parseRunFilter({})).toEqual({});
  });

  it('rejects a month that is not one and an unknown state, named as the caller names them', () => {
    expect(() => parseRunFilter({ month: '2026-13', status: 'nonsense' })).toThrow(InvalidRequestError);
    expect(() => parseRunFilter({ month: '2026-13', status: 'nonsense' }, { month: '--month', status: '--state' })).toThrow(
      "--month is '2026-13': expected YYYY-MM; --state is 'nonsense': expected one of starting, polling, copying, succeeded, failed",
    );
    expect(() => parseRunFilter({ month: '' })).toThrow("'month' is '': expected YYYY-MM");
  });
});
