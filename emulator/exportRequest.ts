/**
 * Checks the body of POST .../usage/unbilled/export the way Graph checks action parameters:
 * required parameters present, enum members spelled exactly, no unknown parameters.
 * https://learn.microsoft.com/graph/api/partners-billing-unbilledusage-export
 */
import type { BillingPeriod, UnbilledUsageExportRequest } from './exportFiles';
import type { AttributeSet } from './usageData';

export type ParsedExportRequest = { ok: true; request: UnbilledUsageExportRequest } | { ok: false; message: string };

const BILLING_PERIODS: readonly BillingPeriod[] = ['current', 'last'];
const ATTRIBUTE_SETS: readonly AttributeSet[] = ['full', 'basic'];
const PARAMETERS = ['currencyCode', 'billingPeriod', 'attributeSet'];

export function parseExportRequest(body: unknown): ParsedExportRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: `The request body must be a JSON object with ${PARAMETERS.join(', ')}.` };
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];

  const unknown = Object.keys(fields).filter((name) => !PARAMETERS.includes(name));
  for (const name of unknown) {
    const expected = PARAMETERS.join(', ');
    problems.push(`The parameter '${name}' in the request payload is not a valid parameter for the operation 'export' (expected ${expected}).`);
  }

  const { currencyCode, billingPeriod, attributeSet = 'full' } = fields;
  const currency = typeof currencyCode === 'string' && /^[A-Za-z]{3}$/.test(currencyCode) ? currencyCode.toUpperCase() : undefined;
  if (!currency) problems.push(`currencyCode is ${describe(currencyCode)}: expected a 3-letter ISO 4217 currency code such as "USD".`);
  const period = isOneOf(billingPeriod, BILLING_PERIODS) ? billingPeriod : undefined;
  if (!period) problems.push(`billingPeriod is ${describe(billingPeriod)}: expected one of ${quoted(BILLING_PERIODS)}.`);
  const set = isOneOf(attributeSet, ATTRIBUTE_SETS) ? attributeSet : undefined;
  if (!set) problems.push(`attributeSet is ${describe(attributeSet)}: expected one of ${quoted(ATTRIBUTE_SETS)} (optional, default "full").`);

  if (currency && period && set && problems.length === 0) {
    return { ok: true, request: { currencyCode: currency, billingPeriod: period, attributeSet: set } };
  }
  return { ok: false, message: problems.join(' ') };
}

function isOneOf<T extends string>(value: unknown, allowed: readonly T[]): value is T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value);
}

function describe(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function quoted(values: readonly string[]): string {
  return values.map((value) => `"${value}"`).join(', ');
}
