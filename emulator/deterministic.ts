/**
 * Reproducible "randomness" for the emulator: every id, name and number it invents is derived
 * from a seed and a key, so two runs with the same inputs produce byte-identical exports.
 */
import { createHash } from 'node:crypto';

/** A float in [0, 1); the next value of a seeded sequence. */
export type Random = () => number;

/** mulberry32: tiny, fast and well distributed enough for synthetic data (not for secrets). */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function digest(parts: ReadonlyArray<string | number>): Buffer {
  // The separator keeps ('a', 'bc') and ('ab', 'c') apart.
  return createHash('sha256').update(parts.join('\u0000')).digest();
}

/** A 32-bit seed derived from several key parts, for per-row or per-file sequences. */
export function seedFrom(...parts: ReadonlyArray<string | number>): number {
  return digest(parts).readUInt32BE(0);
}

/** A version-4-shaped GUID that is a pure function of its key parts. */
export function deterministicUuid(...parts: ReadonlyArray<string | number>): string {
  const bytes = digest(parts).subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** An alphanumeric string such as "WYjLro78HdMg6vUWR", a pure function of its key parts. */
export function deterministicAlphanumeric(length: number, ...parts: ReadonlyArray<string | number>): string {
  const next = seededRandom(seedFrom(...parts));
  let text = '';
  for (let i = 0; i < length; i++) text += ALPHANUMERIC[Math.floor(next() * ALPHANUMERIC.length)];
  return text;
}

export function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new RangeError('pick() needs at least one item');
  return item;
}

/** An integer in [min, max], both inclusive. */
export function integerBetween(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
