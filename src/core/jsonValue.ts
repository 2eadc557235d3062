/**
 * Reading JSON of unknown shape (Graph's answers, queue messages, request bodies): whether a value
 * is an object, and how to name what arrived instead when it is not what was expected.
 */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a value is, for an error message: "null", "an array", "the string '…'" (its start), "a number". */
export function describeJsonValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string '${value.slice(0, 40)}'` : `a ${typeof value}`;
}
