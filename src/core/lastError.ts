/**
 * Why a run is waiting. Every transient failure that reschedules a run records its last error
 * on the run, so `status` can say what it is waiting out; the record is cleared when the run
 * advances. Some failures are worth a few tries but not hours: a managed identity that gives no
 * token, or an answer that is not JSON. Those end the run after a bounded number of tries in a
 * row, with their own code and message, instead of being retried until the export deadline.
 */
import { boundedFailureExhausted } from './policy';
import { NO_LAST_ERROR, type Run } from './run';

export type TransientFailureDecision = { readonly kind: 'retry'; readonly run: Run } | { readonly kind: 'giveUp'; readonly run: Run; readonly tries: number };

/** Records a transient failure on the run and says whether it is still worth another try. */
export function noteTransientFailure(run: Run, failure: { readonly code: string; readonly message: string }, now: Date): TransientFailureDecision {
  const tries = run.lastErrorCode === failure.code ? (run.lastErrorCount ?? 1) + 1 : 1;
  const noted: Run = {
    ...run,
    lastErrorCode: failure.code,
    lastErrorMessage: failure.message,
    lastErrorCount: tries,
    lastErrorAt: now.toISOString(),
    ...(failure.code === 'InvalidJson' ? { malformedAnswers: (run.malformedAnswers ?? 0) + 1 } : {}),
  };
  return boundedFailureExhausted(failure.code, tries) ? { kind: 'giveUp', run: noted, tries } : { kind: 'retry', run: noted };
}

/** The run once it has advanced: nothing to wait out any more. */
export function withoutLastError(run: Run): Run {
  return { ...run, ...NO_LAST_ERROR };
}
