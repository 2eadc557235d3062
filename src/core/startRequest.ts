/**
 * What "start an export now" may ask for, from the HTTP API's JSON body or the CLI's flags
 * (which build the same object): one parser, so both accept and reject the same things. The
 * caller says how the fields are named to its user (see requestFields.ts).
 */
import type { StartRequest, RunTrigger } from './run';
import type { Settings } from './settings';
import { describe, isRecord } from './operation';
import { InvalidRequestError, isCurrencyCode, shown, type FieldNames } from './requestFields';

export class InvalidStartRequestError extends InvalidRequestError {
  override readonly name = 'InvalidStartRequestError';
  constructor(problems: readonly string[]) {
    super(problems, 'Invalid export request');
  }
}

const FIELDS = ['currency', 'billingPeriod', 'attributeSet', 'force'] as const;
export type StartRequestField = (typeof FIELDS)[number];

/** The fields as a JSON body names them. */
export const BODY_FIELD_NAMES: FieldNames<StartRequestField> = { currency: "'currency'", billingPeriod: "'billingPeriod'", attributeSet: "'attributeSet'", force: "'force'" };

/**
 * `{ currency?, billingPeriod?, attributeSet?, force? }`; what is left out comes from the
 * settings (the first of EXPORT_CURRENCIES, EXPORT_BILLING_PERIOD, EXPORT_ATTRIBUTE_SET).
 */
export function parseStartRequest(
  body: unknown,
  settings: Pick<Settings, 'currencies' | 'billingPeriod' | 'attributeSet'>,
  trigger: RunTrigger,
  names: FieldNames<StartRequestField> = BODY_FIELD_NAMES,
): StartRequest {
  const value = body === undefined || body === null ? {} : body;
  if (!isRecord(value)) throw new InvalidStartRequestError([`the body is ${describe(value)}: expected a JSON object {currency, billingPeriod, attributeSet, force}`]);
  const problems: string[] = [];
  const unknown = Object.keys(value).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) problems.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: expected only ${FIELDS.join(', ')}`);

  const currency = value.currency ?? settings.currencies[0];
  if (typeof currency !== 'string' || !isCurrencyCode(currency)) problems.push(`${names.currency} is ${shown(currency)}: expected an ISO 4217 currency code such as EUR`);
  const billingPeriod = value.billingPeriod ?? settings.billingPeriod;
  if (billingPeriod !== 'current' && billingPeriod !== 'last') problems.push(`${names.billingPeriod} is ${shown(billingPeriod)}: expected current or last`);
  const attributeSet = value.attributeSet ?? settings.attributeSet;
  if (attributeSet !== 'full' && attributeSet !== 'basic') problems.push(`${names.attributeSet} is ${shown(attributeSet)}: expected full or basic`);
  const force = value.force ?? false;
  if (typeof force !== 'boolean') problems.push(`${names.force} is ${shown(force)}: expected true or false`);

  if (problems.length > 0) throw new InvalidStartRequestError(problems);
  return { currency: (currency as string).toUpperCase(), billingPeriod: billingPeriod as StartRequest['billingPeriod'], attributeSet: attributeSet as StartRequest['attributeSet'], force: force as boolean, trigger };
}
