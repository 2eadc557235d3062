/**
 * One line of an export file, read exactly and checked against its family's schema
 * (./dataSchema.ts): numbers keep their exact value (parseExactJson), keys are
 * matched case-insensitively and through their documented other names, and each value is typed
 * as its column says. What does not fit is a problem of the row, named; a line that is not JSON
 * at all is the caller's to fail on.
 */
import { parseDecimal, shiftDecimal, toScaledInteger, type Decimal } from './decimal';
import { ALIASES, type Column, type FamilySchema } from './dataSchema';
import { isRecord } from './jsonValue';

/** A typed value: text, an exact decimal, a day (days since 1970-01-01) or an instant (ms since the epoch). */
export type CellValue = string | Decimal | { readonly day: number } | { readonly instant: number } | null;

export interface CheckedRow {
  /** Per column of the schema, in its order. */
  readonly values: readonly CellValue[];
  readonly problems: readonly string[];
  /** Whether a present value could not be typed (so a typed copy of the row would lose it). */
  readonly untypable: boolean;
}

/**
 * Where a line may hold a top-level number a binary double does not keep: one (after its key's
 * colon) with a run of 16 or more digits (a decimal point among them) or an exponent (1e-400
 * parses to 0). A JSON number without either has at most 15 significant digits, and every such
 * decimal comes back from its double unchanged (a double keeps 15: DBL_DIG), so String(n) is its
 * exact value. A match inside a string only sends the line down the slower, always exact path.
 */
const MAY_OUTGROW_A_DOUBLE = /:\s*-?(?:\d[\d.]{15}|[\d.]+[eE])/;

// Node.js 22 (V8's JSON.parse source text access); not yet in TypeScript's lib.
const json = JSON as unknown as { rawJSON(text: string): RawJson; isRawJSON(value: unknown): value is RawJson };
interface RawJson {
  readonly rawJSON: string;
}

/**
 * JSON.parse, with every number's exact value: a JS number where its text has at most 15
 * significant digits and no exponent (String(n) gives it back exactly), otherwise its source text
 * as JSON.rawJSON (which JSON.stringify writes back verbatim, inside a nested value too). Throws
 * SyntaxError for text that is not JSON.
 */
export function parseExactJson(text: string): unknown {
  // JSON.parse with a reviver costs about three plain parses: only lines that need it pay.
  if (!MAY_OUTGROW_A_DOUBLE.test(text)) return JSON.parse(text);
  // The whole line (key '') keeps its type, so a line that is a bare number is named as one.
  const reviver = (key: string, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && key !== '' && context?.source !== undefined ? json.rawJSON(context.source) : value;
  return JSON.parse(text, reviver);
}

/** Key spellings remembered per file; the schemas have at most about 60 columns and 5 other names. */
const MAX_REMEMBERED_SPELLINGS = 1_000;

/** The readers of one schema: a map from lower-case key to column, made once per file. */
export interface RowReader {
  readonly schema: FamilySchema;
  check(parsed: unknown): CheckedRow;
}

export function rowReader(schema: FamilySchema): RowReader {
  const columnIndex = new Map<string, number>(schema.columns.map((column, index) => [column.name.toLowerCase(), index]));
  const keyIndexes = schema.keyFields.map((name) => ({ name, index: columnIndex.get(name.toLowerCase()) }));
  // Every row of a file spells its keys the same way: each spelling is matched once, not per row.
  const spellings = new Map<string, { readonly index: number; readonly percentOfRate: boolean } | null>();
  const placeOf = (key: string) => {
    let place = spellings.get(key);
    if (place === undefined) {
      const lower = key.toLowerCase();
      const alias = ALIASES[lower];
      const index = columnIndex.get(alias ? alias.column.toLowerCase() : lower);
      place = index === undefined ? null : { index, percentOfRate: alias?.percentOfRate === true };
      // A file of ever new keys is not billing data: it is read, not remembered.
      if (spellings.size < MAX_REMEMBERED_SPELLINGS) spellings.set(key, place);
    }
    return place;
  };
  return {
    schema,
    check(parsed) {
      if (!isRecord(parsed)) {
        return {
          values: [],
          problems: [`the line is ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}: expected a JSON object`],
          untypable: false,
        };
      }
      const raw: unknown[] = new Array<unknown>(schema.columns.length);
      const problems: string[] = [];
      for (const key in parsed) {
        const place = placeOf(key);
        if (place === null) continue; // an attribute this schema does not list: kept in the raw file
        if (raw[place.index] !== undefined) {
          problems.push(`'${key}' repeats ${schema.columns[place.index]!.name} in another spelling`);
          continue;
        }
        raw[place.index] = place.percentOfRate ? { rate: parsed[key] } : parsed[key];
      }
      const values: CellValue[] = [];
      let untypable = false;
      schema.columns.forEach((column, index) => {
        const typed = typedValue(column, raw[index]);
        if (typeof typed === 'object' && typed !== null && 'rounded' in typed) {
          problems.push(typed.problem);
          values.push(typed.rounded);
        } else if (typeof typed === 'object' && typed !== null && 'problem' in typed) {
          problems.push(typed.problem);
          untypable = true;
          values.push(null);
        } else values.push(typed);
      });
      for (const { name, index } of keyIndexes) {
        if (index === undefined || raw[index] === undefined || raw[index] === null || raw[index] === '') problems.push(`${name} is missing`);
      }
      return { values, problems, untypable };
    },
  };
}

function typedValue(column: Column, value: unknown): ReturnType<typeof fitted> {
  if (value === undefined || value === null) return null;
  if (typeof value === 'object' && !Array.isArray(value) && 'rate' in value) {
    const rate = textOf(value.rate);
    const decimal = rate === '' ? undefined : parseDecimal(rate);
    if (rate === '') return null;
    if (!decimal) return { problem: `${column.name} (as a rate) is '${clip(rate)}': expected a decimal number` };
    return fitted(column, shiftDecimal(decimal, 2), rate);
  }
  const text = textOf(value);
  switch (column.type.kind) {
    case 'string':
      return text;
    case 'decimal': {
      if (text === '') return null;
      const decimal = parseDecimal(text);
      if (!decimal) return { problem: `${column.name} is '${clip(text)}': expected a decimal number` };
      return fitted(column, decimal, text);
    }
    case 'date': {
      if (text === '') return null;
      const day = epochDay(text);
      return day === undefined ? { problem: `${column.name} is '${clip(text)}': expected a date (YYYY-MM-DD, midnight UTC, or M/D/YYYY)` } : { day };
    }
    case 'timestamp': {
      if (text === '') return null;
      const instant = epochMillis(text);
      return instant === undefined ? { problem: `${column.name} is '${clip(text)}': expected an ISO 8601 date-time (or M/D/YYYY)` } : { instant };
    }
  }
}

/**
 * The exact value, or why its column cannot hold it. More decimal places than the column has is
 * not fatal: a JSON number written from a binary double (0.0024749999999999998) has that many, the
 * totals keep the exact value and the Parquet copy keeps it rounded; the row reports it.
 */
function fitted(
  column: Column,
  decimal: Decimal,
  text: string,
): CellValue | { readonly problem: string } | { readonly rounded: Decimal; readonly problem: string } {
  if (column.type.kind !== 'decimal') return decimal;
  const { precision, scale } = column.type;
  const scaled = toScaledInteger(decimal, precision, scale);
  if (typeof scaled === 'string') return { problem: `${column.name} is '${clip(text)}': ${scaled} (DECIMAL(${precision},${scale}))` };
  if (decimal.scale > scale)
    return {
      rounded: decimal,
      problem: `${column.name} is '${clip(text)}': more than ${scale} decimal places; the Parquet copy keeps it rounded to ${scale} (DECIMAL(${precision},${scale}))`,
    };
  return decimal;
}

/** A value as text: a number its exact decimal text (see parseExactJson); an object or array (Tags written as JSON) its JSON. */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (json.isRawJSON(value)) return value.rawJSON;
  return JSON.stringify(value);
}

const clip = (text: string) => (text.length > 40 ? `${text.slice(0, 40)}…` : text);

const DAY = /^(\d{4})-(\d{2})-(\d{2})(?:T00:00:00(?:\.0{1,7})?(?:Z|[+-]00:00)?)?$/;
const US_DAY = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Days since 1970-01-01 of a day, or undefined (a time of day is not a day). */
export function epochDay(text: string): number | undefined {
  const iso = DAY.exec(text);
  const us = iso ? undefined : US_DAY.exec(text);
  const [year, month, day] = iso ? [iso[1], iso[2], iso[3]] : us ? [us[3], us[1], us[2]] : [];
  if (!year) return undefined;
  const millis = validUtc(Number(year), Number(month), Number(day));
  return millis === undefined ? undefined : millis / 86_400_000;
}

/**
 * Milliseconds since the epoch of an ISO 8601 date-time (no zone is UTC, as Partner Center's
 * files are), a day alone (midnight UTC) or M/D/YYYY; undefined for anything else, or a time
 * finer than a millisecond (Parquet TIMESTAMP(ms) would lose it).
 */
export function epochMillis(text: string): number | undefined {
  const us = US_DAY.exec(text);
  if (us) return validUtc(Number(us[3]), Number(us[1]), Number(us[2]));
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const day = validUtc(Number(m[1]), Number(m[2]), Number(m[3]));
  const [hours, minutes, seconds] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const fraction = m[7] ?? '';
  if (day === undefined || hours > 23 || minutes > 59 || seconds > 59 || /[^0]/.test(fraction.slice(3))) return undefined;
  const zone = m[8] && m[8] !== 'Z' ? (m[8].startsWith('-') ? -1 : 1) * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) : 0;
  return day + ((hours * 60 + minutes - zone) * 60 + seconds) * 1000 + Number(fraction.slice(0, 3).padEnd(3, '0'));
}

function validUtc(year: number, month: number, day: number): number | undefined {
  const millis = Date.UTC(year, month - 1, day);
  const date = new Date(millis);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? millis : undefined;
}
