/**
 * A run as the outside sees it: the CLI's `--json` contract and the HTTP API's body. One shape,
 * so `npm run -s cli -- status --json` and `GET /api/runs` always agree.
 */
import { MANIFEST_FILE_NAME, isBilled } from './core/naming';
import { destinationOf, hasLanded, isFinished, type Run, type UnbilledRun } from './core/run';
import type { Deps } from './deps';

export interface RunSummary {
  readonly runId: string;
  readonly status: Run['state'];
  readonly operationId: string | null;
  readonly blobCount: number;
  readonly bytesCopied: number;
  readonly destination: string | null;
  readonly kind: Run['kind'];
  /** Billed kinds: the invoice; null for unbilled kinds. */
  readonly invoiceId: string | null;
  /** Unbilled kinds: the period asked for, the month and currency; null for billed kinds. */
  readonly billingPeriod: UnbilledRun['billingPeriod'] | null;
  readonly billingMonth: string | null;
  readonly currency: string | null;
  readonly attributeSet: Run['attributeSet'];
  readonly trigger: Run['trigger'];
  readonly pollCount: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly manifestUrl: string | null;
  readonly error?: { readonly code: string; readonly message: string };
  /** noData: Graph's reason (code 5000); noNewData: the eTag that had landed already. */
  readonly reason?: { readonly code: string; readonly message: string };
  /** While the run is in progress: the transient failure it is waiting out, and how often in a row. */
  readonly lastError?: { readonly code: string; readonly message: string; readonly count: number; readonly at: string | null };
}

export function runSummary(run: Run, deps: Pick<Deps, 'destination'>): RunSummary {
  // The manifest's URL is known for the app's own container (a run from before PARTNER_CONTAINER changed has none).
  const folder = run.destinationContainer === deps.destination.containerName ? run.destinationFolder : undefined;
  return {
    runId: run.runId,
    status: run.state,
    operationId: run.operationId ?? null,
    blobCount: run.blobCount ?? 0,
    bytesCopied: run.bytesCopied,
    destination: destinationOf(run) ?? null,
    kind: run.kind,
    invoiceId: isBilled(run) ? run.invoiceId : null,
    billingPeriod: isBilled(run) ? null : run.billingPeriod,
    billingMonth: isBilled(run) ? null : run.billingMonth,
    currency: isBilled(run) ? null : run.currency,
    attributeSet: run.attributeSet,
    trigger: run.trigger,
    pollCount: run.pollCount,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt ?? null,
    manifestUrl: hasLanded(run) && folder !== undefined ? deps.destination.url(`${folder}${MANIFEST_FILE_NAME}`) : null,
    ...(run.state === 'failed' ? { error: { code: run.errorCode ?? 'unknown', message: run.errorMessage ?? '' } } : {}),
    ...(run.state === 'noData' ? { reason: { code: run.errorCode ?? 'unknown', message: run.errorMessage ?? '' } } : {}),
    ...(run.state === 'noNewData'
      ? { reason: { code: 'NoNewData', message: `the data (eTag ${run.manifestETag ?? '?'}) landed before, at ${destinationOf(run) ?? '(unknown)'}` } }
      : {}),
    ...(!isFinished(run) && run.lastErrorCode
      ? { lastError: { code: run.lastErrorCode, message: run.lastErrorMessage ?? '', count: run.lastErrorCount ?? 1, at: run.lastErrorAt ?? null } }
      : {}),
  };
}
