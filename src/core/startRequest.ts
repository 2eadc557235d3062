/**
 * What "start an export now" may ask for, from the HTTP API's JSON body or the CLI's flags
 * (which build the same object): one parser, so both accept and reject the same things. The
 * caller says how the fields are named to its user (see requestFields.ts). The same for a
 * backfill: many invoices, each exported in each billed kind.
 */
import { BILLED_KINDS, EXPORT_KINDS, INVOICE_ID_FORM, isBilledKind, isExportKind, parseInvoiceId, type BilledKind, type UnbilledKind } from './naming';
import { MAX_BACKFILL_INVOICES } from './policy';
import type { StartRequest, RunTrigger } from './run';
import type { AttributeSet, BillingPeriod, Settings } from './settings';
import { describeJsonValue, isRecord } from './jsonValue';
import { InvalidRequestError, isCurrencyCode, oneOf, quotedFieldNames, shown, type FieldNames } from './requestFields';

export class InvalidStartRequestError extends InvalidRequestError {
  override readonly name = 'InvalidStartRequestError';
  constructor(problems: readonly string[], prefix = 'Invalid export request') {
    super(problems, prefix);
  }
}

const FIELDS = ['kind', 'invoiceId', 'currency', 'billingPeriod', 'attributeSet', 'force'] as const;
export type StartRequestField = (typeof FIELDS)[number];

/** The fields as a JSON body names them. */
export const BODY_FIELD_NAMES = quotedFieldNames(FIELDS);

export type StartSettings = Pick<Settings, 'currencies' | 'billingPeriod' | 'attributeSet' | 'exportKinds'>;

/**
 * `{ kind?, invoiceId?, currency?, billingPeriod?, attributeSet?, force? }`. A billed kind needs
 * `invoiceId` and takes no currency or period (the invoice has them); an unbilled kind takes no
 * invoice. What is left out comes from the settings (the first of EXPORT_KINDS and of
 * EXPORT_CURRENCIES, EXPORT_BILLING_PERIOD, EXPORT_ATTRIBUTE_SET).
 */
export function parseStartRequest(
  body: unknown,
  settings: StartSettings,
  trigger: RunTrigger,
  names: FieldNames<StartRequestField> = BODY_FIELD_NAMES,
): StartRequest {
  const value = body === undefined || body === null ? {} : body;
  if (!isRecord(value))
    throw new InvalidStartRequestError([
      `the body is ${describeJsonValue(value)}: expected a JSON object {kind, invoiceId, currency, billingPeriod, attributeSet, force}`,
    ]);
  const problems: string[] = [];
  const unknown = Object.keys(value).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0)
    problems.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: expected only ${FIELDS.join(', ')}`);

  const kind = value.kind ?? (value.invoiceId === undefined ? settings.exportKinds[0] : undefined);
  if (kind === undefined) problems.push(`${names.kind} is missing: an invoice is exported as ${oneOf(BILLED_KINDS)}`);
  else if (!isExportKind(kind)) problems.push(`${names.kind} is ${shown(kind)}: expected ${oneOf(EXPORT_KINDS)}`);
  const attributeSet = value.attributeSet ?? settings.attributeSet;
  if (attributeSet !== 'full' && attributeSet !== 'basic') problems.push(`${names.attributeSet} is ${shown(attributeSet)}: expected full or basic`);
  const force = value.force ?? false;
  if (typeof force !== 'boolean') problems.push(`${names.force} is ${shown(force)}: expected true or false`);

  if (isExportKind(kind) && isBilledKind(kind)) {
    const invoiceId = parseInvoiceId(value.invoiceId);
    if (value.invoiceId === undefined) problems.push(`${names.invoiceId} is missing: ${kind} exports one invoice, expected ${INVOICE_ID_FORM}`);
    else if (invoiceId === undefined) problems.push(`${names.invoiceId} is ${shown(value.invoiceId)}: expected ${INVOICE_ID_FORM}`);
    for (const field of ['currency', 'billingPeriod'] as const) {
      if (value[field] !== undefined)
        problems.push(`${names[field]} is for unbilled kinds: ${kind} exports the invoice's own month and currency, so leave ${names[field]} out`);
    }
    if (problems.length > 0) throw new InvalidStartRequestError(problems);
    return { kind, invoiceId: invoiceId!, attributeSet: attributeSet as AttributeSet, force: force as boolean, trigger };
  }

  if (value.invoiceId !== undefined && kind !== undefined)
    problems.push(`${names.invoiceId} is for billed kinds (${BILLED_KINDS.join(', ')}): ${shown(kind)} exports a month, so leave ${names.invoiceId} out`);
  const currency = value.currency ?? settings.currencies[0];
  if (typeof currency !== 'string' || !isCurrencyCode(currency))
    problems.push(`${names.currency} is ${shown(currency)}: expected an ISO 4217 currency code such as EUR`);
  const billingPeriod = value.billingPeriod ?? settings.billingPeriod;
  if (billingPeriod !== 'current' && billingPeriod !== 'last') problems.push(`${names.billingPeriod} is ${shown(billingPeriod)}: expected current or last`);

  if (problems.length > 0) throw new InvalidStartRequestError(problems);
  return {
    kind: kind as UnbilledKind,
    currency: (currency as string).toUpperCase(),
    billingPeriod: billingPeriod as BillingPeriod,
    attributeSet: attributeSet as AttributeSet,
    force: force as boolean,
    trigger,
  };
}

/** A backfill: every invoice of `invoiceIds` in every kind of `kinds`. */
export interface BackfillRequest {
  readonly invoiceIds: readonly string[];
  readonly kinds: readonly BilledKind[];
  readonly attributeSet: AttributeSet;
  readonly force: boolean;
}

const BACKFILL_FIELDS = ['invoiceIds', 'kinds', 'attributeSet', 'force'] as const;
export type BackfillRequestField = (typeof BACKFILL_FIELDS)[number];
export const BACKFILL_BODY_FIELD_NAMES = quotedFieldNames(BACKFILL_FIELDS);

/**
 * `{ invoiceIds: [...], kinds?: [...], attributeSet?, force? }`: 1 to MAX_BACKFILL_INVOICES
 * invoice ids (repeats counted once), billed kinds only (default BILLED_EXPORT_KINDS).
 */
export function parseBackfillRequest(
  body: unknown,
  settings: Pick<Settings, 'billedExportKinds' | 'attributeSet'>,
  names: FieldNames<BackfillRequestField> = BACKFILL_BODY_FIELD_NAMES,
): BackfillRequest {
  if (!isRecord(body))
    throw new InvalidStartRequestError(
      [`the body is ${describeJsonValue(body)}: expected a JSON object {invoiceIds, kinds, attributeSet, force}`],
      'Invalid backfill request',
    );
  const problems: string[] = [];
  const unknown = Object.keys(body).filter((key) => !(BACKFILL_FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0)
    problems.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: expected only ${BACKFILL_FIELDS.join(', ')}`);

  const invoiceIds: string[] = [];
  const given = body.invoiceIds;
  if (!Array.isArray(given) || given.length === 0)
    problems.push(`${names.invoiceIds} is ${shown(given)}: expected a list of 1-${MAX_BACKFILL_INVOICES} invoice ids, each ${INVOICE_ID_FORM}`);
  else {
    const bad = given.filter((id) => parseInvoiceId(id) === undefined);
    if (bad.length > 0)
      problems.push(
        `${names.invoiceIds} has ${bad.slice(0, 5).map(shown).join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}: expected ${INVOICE_ID_FORM}`,
      );
    for (const id of given) {
      const parsed = parseInvoiceId(id);
      if (parsed !== undefined && !invoiceIds.includes(parsed)) invoiceIds.push(parsed);
    }
    if (invoiceIds.length > MAX_BACKFILL_INVOICES)
      problems.push(
        `${names.invoiceIds} has ${invoiceIds.length} invoices: expected at most ${MAX_BACKFILL_INVOICES} per backfill (Graph throttles); split the list`,
      );
  }

  const kindsGiven = body.kinds ?? settings.billedExportKinds;
  const kinds: BilledKind[] = [];
  if (!Array.isArray(kindsGiven) || kindsGiven.length === 0) problems.push(`${names.kinds} is ${shown(kindsGiven)}: expected a list of ${oneOf(BILLED_KINDS)}`);
  else {
    for (const kind of kindsGiven as unknown[]) {
      if (!isExportKind(kind) || !isBilledKind(kind))
        problems.push(`${names.kinds} has ${shown(kind)}: expected ${oneOf(BILLED_KINDS)} (a backfill exports invoices)`);
      else if (!kinds.includes(kind)) kinds.push(kind);
    }
  }
  const attributeSet = body.attributeSet ?? settings.attributeSet;
  if (attributeSet !== 'full' && attributeSet !== 'basic') problems.push(`${names.attributeSet} is ${shown(attributeSet)}: expected full or basic`);
  const force = body.force ?? false;
  if (typeof force !== 'boolean') problems.push(`${names.force} is ${shown(force)}: expected true or false`);
  if (problems.length > 0) throw new InvalidStartRequestError(problems, 'Invalid backfill request');
  return { invoiceIds, kinds, attributeSet: attributeSet as AttributeSet, force: force as boolean };
}
