/**
 * A run as the outside sees it: the CLI's `--json` contract and the HTTP API's body. One shape,
 * so `npm run -s cli -- status --json` and `GET /api/runs` always agree.
 */
import { MANIFEST_FILE_NAME } from './core/naming';
import { isFinished, type Run } from './core/run';
import type { Deps } from './deps';

export interface RunSummary {
  readonly runId: string;
  readonly status: Run['state'];
  readonly operationId: string | null;
  readonly blobCount: number;
  readonly bytesCopied: number;
  readonly destination: string | null;
  readonly kind: Run['kind'];
  readonly billingPeriod: Run['billingPeriod'];
  readonly billingMonth: string;
  readonly currency: string;
  readonly attributeSet: Run['attributeSet'];
  readonly trigger: Run['trigger'];
  readonly pollCount: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly manifestUrl: string | null;
  readonly error?: { readonly code: string; readonly message: string };
  /** While the run is in progress: the transient failure it is waiting out, and how often in a row. */
  readonly lastError?: { readonly code: string; readonly message: string; readonly count: number; readonly at: string | null };
}

export function runSummary(run: Run, deps: Pick<Deps, 'destination'>): RunSummary {
  const folder = run.destination?.slice(deps.destination.containerName.length + 1);
  return {
    runId: run.runId,
    status: run.state,
    operationId: run.operationId ?? null,
    blobCount: run.blobCount ?? 0,
    bytesCopied: run.bytesCopied,
    destination: run.destination ?? null,
    kind: run.kind,
    billingPeriod: run.billingPeriod,
    billingMonth: run.billingMonth,
    currency: run.currency,
    attributeSet: run.attributeSet,
    trigger: run.trigger,
    pollCount: run.pollCount,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt ?? null,
    manifestUrl: run.state === 'succeeded' && folder !== undefined ? deps.destination.url(`${folder}${MANIFEST_FILE_NAME}`) : null,
    ...(run.state === 'failed' ? { error: { code: run.errorCode ?? 'unknown', message: run.errorMessage ?? '' } } : {}),
    ...(!isFinished(run) && run.lastErrorCode
      ? { lastError: { code: run.lastErrorCode, message: run.lastErrorMessage ?? '', count: run.lastErrorCount ?? 1, at: run.lastErrorAt ?? null } }
      : {}),
  };
}
