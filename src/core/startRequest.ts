/**
 * What "start an export now" may ask for, from the HTTP API's JSON body or the CLI's flags
 * (which build the same object): one parser, so both accept and reject the same things.
 */
import type { StartRequest, RunTrigger } from './run';
import type { Settings } from './settings';
import { describe, isRecord } from './operation';

export class InvalidStartRequestError extends Error {
  override readonly name = 'InvalidStartRequestError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid export request: ${problems.join('; ')}`);
  }
}

const FIELDS = ['currency', 'billingPeriod', 'attributeSet', 'force'] as const;

/**
 * `{ currency?, billingPeriod?, attributeSet?, force? }`; what is left out comes from the
 * settings (the first of EXPORT_CURRENCIES, EXPORT_BILLING_PERIOD, EXPORT_ATTRIBUTE_SET).
 */
export function parseStartRequest(body: unknown, settings: Pick<Settings, 'currencies' | 'billingPeriod' | 'attributeSet'>, trigger: RunTrigger): StartRequest {
  const value = body === undefined || body === null ? {} : body;
  if (!isRecord(value)) throw new InvalidStartRequestError([`the body is ${describe(value)}: expected a JSON object {currency, billingPeriod, attributeSet, force}`]);
  const problems: string[] = [];
  const unknown = Object.keys(value).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) problems.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: expected only ${FIELDS.join(', ')}`);

  const currency = value.currency ?? settings.currencies[0];
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) problems.push(`'currency' is ${JSON.stringify(currency) ?? 'missing'}: expected a three-letter ISO 4217 code such as 'EUR'`);
  const billingPeriod = value.billingPeriod ?? settings.billingPeriod;
  if (billingPeriod !== 'current' && billingPeriod !== 'last') problems.push(`'billingPeriod' is ${JSON.stringify(billingPeriod)}: expected 'current' or 'last'`);
  const attributeSet = value.attributeSet ?? settings.attributeSet;
  if (attributeSet !== 'full' && attributeSet !== 'basic') problems.push(`'attributeSet' is ${JSON.stringify(attributeSet)}: expected 'full' or 'basic'`);
  const force = value.force ?? false;
  if (typeof force !== 'boolean') problems.push(`'force' is ${JSON.stringify(force)}: expected true or false`);

  if (problems.length > 0) throw new InvalidStartRequestError(problems);
  return { currency: (currency as string).toUpperCase(), billingPeriod: billingPeriod as StartRequest['billingPeriod'], attributeSet: attributeSet as StartRequest['attributeSet'], force: force as boolean, trigger };
}
