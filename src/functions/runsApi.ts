/**
 * Run history and "run now" over HTTP (auth level `function`), as Cost Management exports offer
 * them: GET /api/runs[?month=YYYY-MM&status=STATE&kind=KIND&invoice=ID], GET /api/runs/{runId},
 * POST /api/runs {kind, invoiceId | currency, billingPeriod, attributeSet, force}.
 * Bodies are RunSummary objects, the same shape the CLI prints with --json.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { parseStartRequest, InvalidStartRequestError } from '../core/startRequest';
import { InvalidRequestError, parseRunFilter, type RunFilter } from '../core/requestFields';
import type { Deps } from '../deps';
import { runSummary } from '../runSummary';
import { runDataOf } from '../steps/runData';
import { badRequest, readJsonBody } from './http';
import { startExport } from './startExport';

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A start request is a handful of fields; anything larger is not one. */
const MAX_BODY_BYTES = 4096;

export async function listRuns(request: HttpRequest, _context: InvocationContext, deps: Deps): Promise<HttpResponseInit> {
  let filter: RunFilter;
  try {
    const query = (name: string) => request.query.get(name) ?? undefined;
    filter = parseRunFilter({ month: query('month'), status: query('status'), kind: query('kind'), invoice: query('invoice') });
  } catch (thrown) {
    if (thrown instanceof InvalidRequestError) return badRequest(thrown.problems.join('; '));
    throw thrown;
  }

  await deps.ready();
  const runs = await deps.ledger.listRuns(filter);
  return { status: 200, jsonBody: { runs: runs.map((run) => runSummary(run, deps)) } };
}

export async function getRun(request: HttpRequest, _context: InvocationContext, deps: Deps): Promise<HttpResponseInit> {
  const runId = request.params.runId ?? '';
  if (!RUN_ID.test(runId)) return badRequest(`run id '${runId}' is not a run id: expected a lower-case GUID`);
  await deps.ready();
  const stored = await deps.ledger.getRun(runId);
  if (!stored) return { status: 404, jsonBody: { error: { code: 'RunNotFound', message: `no run ${runId} in the ledger` } } };
  // A landed run also carries its checked figures: rows and per-customer totals.
  const data = await runDataOf(stored.run, deps);
  return { status: 200, jsonBody: { ...runSummary(stored.run, deps), ...(data ? { rowCount: data.rowCount, totals: data.totals, check: data.check } : {}) } };
}

/** Starts an export now: 202 with the run, or 409 when the month or invoice is running or has landed. */
export async function startRun(request: HttpRequest, context: InvocationContext, deps: Deps): Promise<HttpResponseInit> {
  const read = await readJsonBody(request, MAX_BODY_BYTES, {
    notJson:
      'the body is not JSON: expected {"kind": "unbilled-usage", "currency": "EUR", "billingPeriod": "last", "attributeSet": "full", "force": false} or {"kind": "billed-usage", "invoiceId": "G016907411"}',
    blank: {},
  });
  if (!read.ok) return read.response;
  let startRequest;
  try {
    startRequest = parseStartRequest(read.body, deps.settings, 'http');
  } catch (thrown) {
    if (thrown instanceof InvalidStartRequestError) return badRequest(thrown.message);
    throw thrown;
  }

  const outcome = await startExport(startRequest, deps, context);
  const summary = runSummary(outcome.run, deps);
  if (outcome.kind === 'skipped') {
    return { status: 409, jsonBody: { error: { code: 'ExportNotStarted', message: outcome.reason }, run: summary } };
  }
  return { status: 202, headers: { location: `${new URL(request.url).origin}/api/runs/${outcome.run.runId}` }, jsonBody: summary };
}
