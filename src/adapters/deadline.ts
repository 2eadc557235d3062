/**
 * Every storage call gets a deadline. The storage SDKs' `tryTimeoutInMs` only asks the server
 * to give up (Azurite ignores it) and the SDKs do not retry a try they aborted, so the deadline
 * is an AbortSignal on each call: a call that hangs fails, and the layers above retry it (the
 * landing's attempts, the queue's redelivery, the sweeper).
 */
import { setMaxListeners } from 'node:events';

/** One storage request, including the SDK's own retries of it. */
export const STORAGE_CALL_TIMEOUT_MS = 60_000;

/** How many listeners one deadline may carry: every try and page of a call adds one. */
const LISTENERS_PER_DEADLINE = 100;

export function callDeadline(ms = STORAGE_CALL_TIMEOUT_MS): { abortSignal: AbortSignal } {
  const abortSignal = AbortSignal.timeout(ms);
  // One deadline spans the SDK's retries and a listing's pages, each of which listens for the
  // abort; Node would otherwise warn of a leak past ten listeners.
  setMaxListeners(LISTENERS_PER_DEADLINE, abortSignal);
  return { abortSignal };
}
