/**
 * The one rule for which HTTP statuses can pass by waiting, for Graph and for storage alike:
 * 408 (request timeout), 429 (throttled) and every 5xx. Any other status will not change on a
 * retry, and the service's own message says why. No status at all (the request never got an
 * answer: a dropped connection, a deadline) is transient too.
 */
export function isTransientStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}
