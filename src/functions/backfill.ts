/**
 * Backfill: past invoices exported in each billed kind, one run per invoice and kind, through the
 * same start as the timer and the invoice-ready event (so a key that landed is skipped unless
 * forced, and two backfills never start one key twice). Starts are paced (BACKFILL_START_INTERVAL_MS:
 * Graph throttles), and one invoice's trouble does not stop the others: an invoice Graph refuses
 * ends as a failed run with Graph's reason, storage trouble is reported for that item.
 *
 * POST /api/backfill {"invoiceIds": ["G016907411", ...], "kinds"?: [...], "attributeSet"?, "force"?}
 * answers 202 with every item once all are started; `npm run -s cli -- backfill` also waits for them.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { BACKFILL_START_INTERVAL_MS } from '../core/policy';
import { InvalidStartRequestError, parseBackfillRequest, type BackfillRequest } from '../core/startRequest';
import type { BilledKind } from '../core/naming';
import type { Run } from '../core/run';
import type { Deps } from '../deps';
import { asError } from '../errors';
import { logEvent, type RunLogger } from '../runLog';
import { runSummary, type RunSummary } from '../runSummary';
import { badRequest, readJsonBody } from './http';
import { startExport } from './startExport';

export type BackfillItem =
  | { readonly invoiceId: string; readonly kind: BilledKind; readonly outcome: 'started' | 'skipped'; readonly run: Run; readonly reason?: string }
  /** Not started: the ledger or queue could not be reached (the message says which). */
  | { readonly invoiceId: string; readonly kind: BilledKind; readonly outcome: 'error'; readonly reason: string };

/** One item done, `done` of `total`. */
export type BackfillProgress = (item: BackfillItem, done: number, total: number) => void;

export async function startBackfill(
  request: BackfillRequest,
  deps: Deps,
  log: RunLogger,
  onProgress: BackfillProgress = () => undefined,
): Promise<BackfillItem[]> {
  const items: BackfillItem[] = [];
  const total = request.invoiceIds.length * request.kinds.length;
  let lastStartAt: number | undefined;
  for (const invoiceId of request.invoiceIds) {
    for (const kind of request.kinds) {
      // Paced by the POSTs Graph saw: a skipped key made none.
      if (lastStartAt !== undefined) await sleep(lastStartAt + BACKFILL_START_INTERVAL_MS - Date.now());
      let item: BackfillItem;
      try {
        const outcome = await startExport({ kind, invoiceId, attributeSet: request.attributeSet, trigger: 'backfill', force: request.force }, deps, log);
        if (outcome.kind === 'started') lastStartAt = Date.now();
        item =
          outcome.kind === 'started'
            ? { invoiceId, kind, outcome: 'started', run: outcome.run }
            : { invoiceId, kind, outcome: 'skipped', run: outcome.run, reason: outcome.reason };
      } catch (thrown) {
        lastStartAt = Date.now();
        item = { invoiceId, kind, outcome: 'error', reason: asError(thrown).message };
        logEvent(log, 'error', 'backfill could not start an export', { invoiceId, kind, reason: item.reason });
      }
      items.push(item);
      onProgress(item, items.length, total);
    }
  }
  return items;
}

/** An item as the API and `backfill --json` show it. */
export function backfillItemSummary(
  item: BackfillItem,
  deps: Pick<Deps, 'destination'>,
): { readonly invoiceId: string; readonly kind: BilledKind; readonly outcome: BackfillItem['outcome']; readonly reason?: string; readonly run?: RunSummary } {
  return {
    invoiceId: item.invoiceId,
    kind: item.kind,
    outcome: item.outcome,
    ...(item.reason === undefined ? {} : { reason: item.reason }),
    ...(item.outcome === 'error' ? {} : { run: runSummary(item.run, deps) }),
  };
}

/** The bodies of a backfill: bounded by MAX_BACKFILL_INVOICES ids of at most 16 characters. */
const MAX_BODY_BYTES = 16 * 1024;

export async function backfillApi(request: HttpRequest, context: InvocationContext, deps: Deps): Promise<HttpResponseInit> {
  const read = await readJsonBody(request, MAX_BODY_BYTES, {
    notJson: 'the body is not JSON: expected {"invoiceIds": ["G016907411"], "kinds": ["billed-usage", "billed-reconciliation"], "force": false}',
  });
  if (!read.ok) return read.response;
  let backfill: BackfillRequest;
  try {
    backfill = parseBackfillRequest(read.body, deps.settings);
  } catch (thrown) {
    if (thrown instanceof InvalidStartRequestError) return badRequest(thrown.message);
    throw thrown;
  }
  const items = await startBackfill(backfill, deps, context);
  const count = (outcome: BackfillItem['outcome']) => items.filter((item) => item.outcome === outcome).length;
  return {
    status: 202,
    jsonBody: { started: count('started'), skipped: count('skipped'), errors: count('error'), items: items.map((item) => backfillItemSummary(item, deps)) },
  };
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolveSleep) => setTimeout(resolveSleep, ms)) : Promise.resolve();
}
