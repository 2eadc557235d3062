/**
 * The checks a request's fields get wherever they come from: the HTTP API's body and query
 * string, or the CLI's flags. One parser each, so both accept and reject the same things; what
 * differs is only how a field is named to the one who typed it (`'billingPeriod'` in a JSON body,
 * `--period` on the command line), which the caller passes in.
 */
import { EXPORT_KINDS, INVOICE_ID_FORM, isBilled, isExportKind, parseInvoiceId, type ExportKind } from './naming';
import { RUN_STATES, type Run, type RunState } from './run';

export { RUN_STATES };

/** How each field is named in error messages, e.g. `{ billingPeriod: "'billingPeriod'" }` or `{ billingPeriod: '--period' }`. */
export type FieldNames<Field extends string> = Readonly<Record<Field, string>>;

/** Fields named as a JSON body or a query string names them: each in quotes ('currency'). */
export function quotedFieldNames<Field extends string>(fields: readonly Field[]): FieldNames<Field> {
  return Object.fromEntries(fields.map((field) => [field, `'${field}'`])) as Record<Field, string>;
}

/** Currency codes as the runtime knows them (ISO 4217, from ICU), so `EUT` is not one. */
const ISO_4217 = new Set(Intl.supportedValuesOf('currency'));

/** Whether `code` is an ISO 4217 currency code, in any casing. */
export function isCurrencyCode(code: string): boolean {
  return /^[A-Za-z]{3}$/.test(code) && ISO_4217.has(code.toUpperCase());
}

/** A value as it appears in a message: a string in quotes, anything else as JSON. */
export function shown(value: unknown): string {
  if (value === undefined) return 'missing';
  // JSON.stringify gives undefined for a function or a symbol: name its type instead.
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? `a ${typeof value}`);
}

export class InvalidRequestError extends Error {
  override readonly name: string = 'InvalidRequestError';
  constructor(
    readonly problems: readonly string[],
    prefix = 'Invalid request',
  ) {
    super(`${prefix}: ${problems.join('; ')}`);
  }
}

const RUN_FILTER_FIELDS = ['month', 'status', 'kind', 'invoice'] as const;
export type RunFilterField = (typeof RUN_FILTER_FIELDS)[number];
/** The query string of GET /api/runs. */
export const QUERY_FILTER_NAMES = quotedFieldNames(RUN_FILTER_FIELDS);

export interface RunFilter {
  readonly billingMonth?: string;
  readonly state?: RunState;
  readonly kind?: ExportKind;
  readonly invoiceId?: string;
}

/** `expected one of a, b, c` for a list of choices. */
export function oneOf(choices: readonly string[]): string {
  return `one of ${choices.join(', ')}`;
}

/**
 * `{ month?: 'YYYY-MM', status?: RunState, kind?: ExportKind, invoice?: invoice id }` as typed;
 * throws InvalidRequestError naming every bad one.
 */
export function parseRunFilter(
  input: {
    readonly month?: string | undefined;
    readonly status?: string | undefined;
    readonly kind?: string | undefined;
    readonly invoice?: string | undefined;
  },
  names: FieldNames<RunFilterField> = QUERY_FILTER_NAMES,
): RunFilter {
  const problems: string[] = [];
  const { month, status, kind, invoice } = input;
  if (month !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) problems.push(`${names.month} is ${shown(month)}: expected YYYY-MM`);
  if (status !== undefined && !(RUN_STATES as readonly string[]).includes(status))
    problems.push(`${names.status} is ${shown(status)}: expected ${oneOf(RUN_STATES)}`);
  if (kind !== undefined && !isExportKind(kind)) problems.push(`${names.kind} is ${shown(kind)}: expected ${oneOf(EXPORT_KINDS)}`);
  const invoiceId = invoice === undefined ? undefined : parseInvoiceId(invoice);
  if (invoice !== undefined && invoiceId === undefined) problems.push(`${names.invoice} is ${shown(invoice)}: expected ${INVOICE_ID_FORM}`);
  if (problems.length > 0) throw new InvalidRequestError(problems, 'Invalid run filter');
  return {
    ...(month !== undefined ? { billingMonth: month } : {}),
    ...(status !== undefined ? { state: status as RunState } : {}),
    ...(kind !== undefined ? { kind: kind as ExportKind } : {}),
    ...(invoiceId !== undefined ? { invoiceId } : {}),
  };
}

/** Whether a run passes the filter: a month filter passes only runs of that month (unbilled kinds), an invoice filter only that invoice's. */
export function runMatches(run: Run, filter: RunFilter): boolean {
  if (filter.billingMonth !== undefined && !(!isBilled(run) && run.billingMonth === filter.billingMonth)) return false;
  if (filter.state !== undefined && run.state !== filter.state) return false;
  if (filter.kind !== undefined && run.kind !== filter.kind) return false;
  if (filter.invoiceId !== undefined && !(isBilled(run) && run.invoiceId === filter.invoiceId)) return false;
  return true;
}
