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

/** A rate (0.15) read under a percentage column's other name (RateOfPartnerEarnedCredit): its column holds 15. */
class RateOfPercentage {
  constructor(readonly rate: unknown) {}
}

export interface CheckedRow {
  /** Per column of the schema, in its order. */
  readonly values: readonly CellValue[];
  /** What does not fit, named: a value its column cannot type is null in `values` and one of these. */
  readonly problems: readonly string[];
}

/**
 * Where a line may hold a number a binary double does not keep: one (after a key's colon, or in
 * an array after its bracket or a comma) with a run of 16 or more digits (a decimal point among
 * them) or an exponent (1e-400 parses to 0). A JSON number without either has at most 15 significant digits, and every such
 * decimal comes back from its double unchanged (a double keeps 15: DBL_DIG), so String(n) is its
 * exact value. A match inside a string only sends the line down the slower, always exact path.
 */
const MAY_OUTGROW_A_DOUBLE_AFTER_A_KEY = /:\s*-?(?:\d[\d.]{15}|[\d.]+[eE])/;
const MAY_OUTGROW_A_DOUBLE_IN_AN_ARRAY = /[[,]\s*-?(?:\d[\d.]{15}|[\d.]+[eE])/;
/** The second pattern only for lines with an array: a pattern that starts with ':' alone is found faster. */
const mayOutgrowADouble = (text: string) => MAY_OUTGROW_A_DOUBLE_AFTER_A_KEY.test(text) || (text.includes('[') && MAY_OUTGROW_A_DOUBLE_IN_AN_ARRAY.test(text));

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
  if (!mayOutgrowADouble(text)) return JSON.parse(text);
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
        raw[place.index] = place.percentOfRate ? new RateOfPercentage(parsed[key]) : parsed[key];
      }
      const values: CellValue[] = [];
      schema.columns.forEach((column, index) => {
        const typed = typedValue(column, raw[index]);
        if (typeof typed === 'object' && typed !== null && 'rounded' in typed) {
          problems.push(typed.problem);
          values.push(typed.rounded);
        } else if (typeof typed === 'object' && typed !== null && 'problem' in typed) {
          problems.push(typed.problem);
          values.push(null);
        } else values.push(typed);
      });
      for (const { name, index } of keyIndexes) {
        if (index === undefined || raw[index] === undefined || raw[index] === null || raw[index] === '') problems.push(`${name} is missing`);
      }
      return { values, problems };
    },
  };
}

function typedValue(column: Column, value: unknown): ReturnType<typeof fitted> {
  if (value === undefined || value === null) return null;
  if (value instanceof RateOfPercentage) {
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
      return day === undefined ? { problem: `${column.name} is '${clip(text)}': expected a date (ISO 8601 or M/D/YYYY)` } : { day };
    }
    case 'timestamp': {
      if (text === '') return null;
      const instant = epochMillis(text);
      return instant === undefined ? { problem: `${column.name} is '${clip(text)}': expected a date-time (ISO 8601 or M/D/YYYY)` } : { instant };
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

/** YYYY-MM-DD, then an optional time of day (T or a space) to the nanosecond and a zone (Z, ±hh:mm, ±hhmm or ±hh). */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(?:Z|([+-])(\d{2})(?::?(\d{2}))?)?)?$/i;
/** M/D/YYYY, as the CSV form writes it, with an optional h:mm[:ss] [AM|PM]. */
const US = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AP]M)?)?$/i;

interface WrittenDateTime {
  /** Midnight UTC of the calendar day as written. */
  readonly day: number;
  /** Milliseconds into that day, as written (before the zone). */
  readonly time: number;
  /** The zone's offset east of UTC in minutes; 0 for Z or none (Partner Center writes UTC). */
  readonly offsetMinutes: number;
}

/**
 * A date or date-time as the file writes it, read leniently (the formats inside the files are
 * not documented, §4.5): ISO 8601 with or without a time, fraction or zone, or the CSV form's
 * M/D/YYYY with an optional 12- or 24-hour time. A fraction finer than a millisecond (.NET writes
 * seven digits) is cut to the millisecond, as Parquet's TIMESTAMP(ms) keeps it. Undefined for
 * anything else, or a day or time that does not exist.
 */
function readDateTime(text: string): WrittenDateTime | undefined {
  const iso = ISO.exec(text);
  const us = iso ? undefined : US.exec(text);
  if (!iso && !us) return undefined;
  const [year, month, dayOfMonth] = iso ? [iso[1], iso[2], iso[3]] : [us![3], us![1], us![2]];
  const day = validUtc(Number(year), Number(month), Number(dayOfMonth));
  const parts = iso ?? us!;
  let hours = Number(parts[4] ?? 0);
  const [minutes, seconds] = [Number(parts[5] ?? 0), Number(parts[6] ?? 0)];
  const meridiem = us?.[7]?.toUpperCase();
  if (meridiem) {
    if (hours < 1 || hours > 12) return undefined;
    hours = (hours % 12) + (meridiem === 'PM' ? 12 : 0);
  }
  if (day === undefined || hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const millis = iso?.[7] ? Number(iso[7].slice(0, 3).padEnd(3, '0')) : 0;
  // The zone's sign, hours and minutes (none for Z or no zone).
  const [zoneHours, zoneMinutes] = [Number(iso?.[9] ?? 0), Number(iso?.[10] ?? 0)];
  if (zoneMinutes > 59 || zoneHours * 60 + zoneMinutes > 18 * 60) return undefined;
  const offsetMinutes = (iso?.[8] === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes);
  return { day, time: ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis, offsetMinutes };
}

/**
 * The date-times read so far, by their text: a file's few dozen distinct dates repeat on every row
 * (four date columns, a million rows), and reading one costs about a microsecond.
 */
const readSoFar = new Map<string, WrittenDateTime | undefined>();
const MAX_REMEMBERED_DATES = 4_096;

function remembered(text: string): WrittenDateTime | undefined {
  if (readSoFar.has(text)) return readSoFar.get(text);
  const written = readDateTime(text);
  // A file of ever new instants (to the second) is read, not remembered.
  if (readSoFar.size >= MAX_REMEMBERED_DATES) readSoFar.clear();
  readSoFar.set(text, written);
  return written;
}

/** Days since 1970-01-01 of the calendar day a date or date-time is written on (its time of day and zone aside), or undefined. */
export function epochDay(text: string): number | undefined {
  const written = remembered(text);
  return written && written.day / 86_400_000;
}

/** Milliseconds since the epoch of a date or date-time (no zone is UTC; a day alone is its midnight), or undefined. */
export function epochMillis(text: string): number | undefined {
  const written = remembered(text);
  return written && written.day + written.time - written.offsetMinutes * 60_000;
}

function validUtc(year: number, month: number, day: number): number | undefined {
  const millis = Date.UTC(year, month - 1, day);
  const date = new Date(millis);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? millis : undefined;
}
