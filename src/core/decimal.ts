/**
 * Exact decimal numbers as a BigInt of digits and a scale (value = digits / 10^scale): sums of
 * money never drift the way binary floating point does (0.1 + 0.2). Values come from the source
 * text of a JSON number (never from a JS number), and leave as decimal strings.
 */

export interface Decimal {
  readonly digits: bigint;
  readonly scale: number;
}

export const ZERO: Decimal = { digits: 0n, scale: 0 };

const DECIMAL_TEXT = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$|^([+-]?)\.(\d+)$/;
/** More fractional digits than any money or rate needs; refuses 1e-999999 instead of allocating it. */
const MAX_SCALE = 40;
const MAX_DIGITS = 60;

/** 10^0 … 10^(MAX_DIGITS + MAX_SCALE): a sum or a rescale multiplies by one on every value. */
const POWERS_OF_TEN = Array.from({ length: MAX_DIGITS + MAX_SCALE + 1 }, (_, power) => 10n ** BigInt(power));
const tenTo = (power: number): bigint => POWERS_OF_TEN[power] ?? 10n ** BigInt(power);

/** The decimal a number's text means ('0.0409275', '-12', '1.5E-7'), or undefined if it is not one. */
export function parseDecimal(text: string): Decimal | undefined {
  const match = DECIMAL_TEXT.exec(text.trim());
  if (!match) return undefined;
  const sign = match[1] ?? match[5] ?? '';
  const whole = match[2] ?? '0';
  const fraction = match[3] ?? match[6] ?? '';
  const exponent = Number(match[4] ?? '0');
  let digits = (whole + fraction).replace(/^0+(?=\d)/, '');
  let scale = fraction.length - exponent;
  if (scale < 0) {
    if (digits.length - scale > MAX_DIGITS) return undefined;
    digits += '0'.repeat(-scale);
    scale = 0;
  }
  if (scale > MAX_SCALE || digits.length > MAX_DIGITS) return undefined;
  const value = BigInt(digits);
  return normalize({ digits: sign === '-' ? -value : value, scale });
}

/** Without trailing fractional zeros: 12.50 is 12.5, so equal values compare equal. */
function normalize(value: Decimal): Decimal {
  let { digits, scale } = value;
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n;
    scale--;
  }
  return digits === 0n ? ZERO : { digits, scale };
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return normalize({ digits: a.digits * tenTo(scale - a.scale) + b.digits * tenTo(scale - b.scale), scale });
}

/** value × 10^power, exactly (a rate of 0.15 as the percentage 15). */
export function shiftDecimal(value: Decimal, power: number): Decimal {
  if (power >= value.scale) return normalize({ digits: value.digits * tenTo(power - value.scale), scale: 0 });
  return normalize({ digits: value.digits, scale: value.scale - power });
}

/** The shortest exact text: '12.5', '-0.000001', '0'. */
export function decimalText(value: Decimal): string {
  const negative = value.digits < 0n;
  const digits = (negative ? -value.digits : value.digits).toString().padStart(value.scale + 1, '0');
  const whole = digits.slice(0, digits.length - value.scale);
  const fraction = digits.slice(digits.length - value.scale);
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/**
 * The value rounded to `scale` decimal places, half away from zero (as SQL's CAST to DECIMAL
 * rounds): for a typed copy whose column has fewer places than the source text.
 */
function roundToScale(value: Decimal, scale: number): Decimal {
  if (value.scale <= scale) return value;
  const divisor = tenTo(value.scale - scale);
  const magnitude = value.digits < 0n ? -value.digits : value.digits;
  let quotient = magnitude / divisor;
  if ((magnitude % divisor) * 2n >= divisor) quotient += 1n;
  return normalize({ digits: value.digits < 0n ? -quotient : quotient, scale });
}

/**
 * The value as an integer count of 10^-scale for a DECIMAL(precision, scale) column, rounded to
 * `scale` places (half away from zero), or why it does not fit: too many integer digits.
 */
export function toScaledInteger(value: Decimal, precision: number, scale: number): bigint | string {
  const rounded = roundToScale(value, scale);
  const scaled = rounded.digits * tenTo(scale - rounded.scale);
  const limit = tenTo(precision);
  if (scaled >= limit || scaled <= -limit) return `has more than ${precision - scale} integer digits`;
  return scaled;
}

/** Sum of decimal strings (already checked): for merging per-file totals. */
export function sumDecimalTexts(texts: readonly string[]): string {
  let sum = ZERO;
  for (const text of texts) {
    const value = parseDecimal(text);
    if (!value) throw new RangeError(`'${text}' is not a decimal number`);
    sum = addDecimal(sum, value);
  }
  return decimalText(sum);
}
