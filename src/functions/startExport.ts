/**
 * The timer function: once per schedule, one unbilled-usage export per configured currency.
 * A duplicate or past-due firing finds the month in the ledger and starts nothing.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { EXPORT_KIND, billingMonthFor, exportKeyString, type ExportKey } from '../core/naming';
import { decideStart, newRun, type Run, type StartRequest } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { LedgerConflictError } from '../errors';
import { logEvent, type RunLogger } from '../runLog';
import { beginExport, failRun } from '../steps/runSteps';
import { pollMessageFor } from '../core/pollMessage';
import { START_RECOVERY_DELAY_SECONDS } from '../core/policy';


export type StartOutcome =
  | { readonly kind: 'started'; readonly run: Run }
  | { readonly kind: 'skipped'; readonly reason: string; readonly run: Run };

export async function startExportsOnSchedule(timer: Timer, context: InvocationContext, deps: Deps): Promise<void> {
  const { settings } = deps;
  logEvent(context, 'info', 'scheduled export firing', { isPastDue: timer.isPastDue, currencies: settings.currencies, billingPeriod: settings.billingPeriod });
  const failures: string[] = [];
  for (const currency of settings.currencies) {
    try {
      await startExport({ currency, billingPeriod: settings.billingPeriod, attributeSet: settings.attributeSet, trigger: 'timer' }, deps, context);
    } catch (thrown) {
      // One currency's trouble must not stop the others; the host records the failure below.
      failures.push(`${currency}: ${thrown instanceof Error ? thrown.message : String(thrown)}`);
    }
  }
  if (failures.length > 0) throw new Error(`could not start every export: ${failures.join('; ')}`);
}

/** Starts one export unless its month is already running or landed: what the timer does per currency. */
export async function startExport(request: StartRequest, deps: Deps, log: RunLogger): Promise<StartOutcome> {
  await deps.ready();
  const now = deps.now();
  const key: ExportKey = { kind: EXPORT_KIND, billingMonth: billingMonthFor(request.billingPeriod, now), currency: request.currency, attributeSet: request.attributeSet };

  const { latest, keyEtag, claimedAt } = await deps.ledger.latestForKey(key);
  const decision = decideStart(latest?.run, request, now, deps.settings.exportDeadlineSeconds, claimedAt);
  if (decision.kind === 'skip') {
    logEvent(log, 'info', 'export not started', { key: exportKeyString(key), reason: decision.reason });
    return { kind: 'skipped', reason: decision.reason, run: decision.run ?? (await winningRun(deps, key)) };
  }
  if (decision.supersedes && latest) {
    await failRun(latest, 'DeadlineExceeded', 'the run passed its deadline without finishing and was superseded by a new run', deps, log).catch(() => undefined);
  }

  const run = newRun(key, request, randomUUID(), now);
  let stored: StoredRun;
  try {
    stored = await deps.ledger.createRun(run, keyEtag);
  } catch (thrown) {
    if (thrown instanceof LedgerConflictError) {
      logEvent(log, 'info', 'export not started', { key: exportKeyString(key), reason: thrown.message });
      return { kind: 'skipped', reason: thrown.message, run: await winningRun(deps, key) };
    }
    throw thrown;
  }
  deps.telemetry.runChanged(log, stored.run);

  await deps.queue.send(pollMessageFor(stored.run), START_RECOVERY_DELAY_SECONDS);
  const started = await beginExport(stored, deps, log);
  return { kind: 'started', run: started.run };
}

/** The run that won a race for the key, once it is recorded (it is written right after the key). */
async function winningRun(deps: Deps, key: ExportKey): Promise<Run> {
  for (let attempt = 0; ; attempt++) {
    const { latest } = await deps.ledger.latestForKey(key);
    if (latest) return latest.run;
    if (attempt >= 20) throw new Error(`the run that claimed ${exportKeyString(key)} was not recorded within 10 s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 500));
  }
}
