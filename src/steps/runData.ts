/**
 * A landed run's checked figures (rows, per-customer totals, problems), as the data check
 * recorded them when it wrote manifest.json: for GET /api/runs/{runId} and the CLI's report.
 */
import type { RunDataSummary } from '../core/dataCheck';
import { publicTotals, type PublicCustomerTotal } from '../core/publicManifest';
import type { Run } from '../core/run';
import type { Deps } from '../deps';

export interface RunData {
  readonly rowCount: number;
  readonly totals: readonly PublicCustomerTotal[];
  readonly check: RunDataSummary['check'];
}

/** Undefined for a run that has not landed, or landed before the data check existed. */
export async function runDataOf(run: Run, deps: Pick<Deps, 'fileChecks'>): Promise<RunData | undefined> {
  if (run.state !== 'succeeded' || !run.manifestETag) return undefined;
  const summary = (await deps.fileChecks.readSummary(run.runId, run.manifestETag)) as RunDataSummary | undefined;
  return summary ? { rowCount: summary.rowCount, totals: publicTotals(summary.totals), check: summary.check } : undefined;
}
