import { describe, expect, it } from 'vitest';
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
      "Invalid export request: unknown field 'month': expected only currency, billingPeriod, attributeSet, force; 'currency' is \"EURO\": expected a three-letter ISO 4217 code such as 'EUR'; 'billingPeriod' is \"previous\": expected 'current' or 'last'; 'attributeSet' is \"all\": expected 'full' or 'basic'; 'force' is \"yes\": expected true or false",
    );
  });

  it('rejects a body that is not an object', () => {
    expect(() => parseStartRequest(['EUR'], settings, 'http')).toThrow("the body is an array: expected a JSON object {currency, billingPeriod, attributeSet, force}");
  });
});
