/**
 * Starting exports. The timer: once per schedule, each unbilled kind of EXPORT_KINDS per
 * configured currency. An invoice (its invoice-ready event): each billed kind of
 * BILLED_EXPORT_KINDS. A duplicate or past-due firing, or a replayed event, finds the key in the
 * ledger and starts nothing.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { exportKeyString, type BilledKind, type ExportKey } from '../core/naming';
import { decideStart, keyForRequest, newRun, subjectOf, type Run, type RunTrigger, type StartRequest } from '../core/run';
import type { StoredRun } from '../adapters/ledger';
import type { Deps } from '../deps';
import { LedgerConflictError, asError } from '../errors';
import { logEvent, type RunLogger } from '../runLog';
import { beginExport, failRun } from '../steps/runSteps';
import { pollMessageFor } from '../core/pollMessage';
import { START_RECOVERY_DELAY_SECONDS } from '../core/policy';

export type StartOutcome = { readonly kind: 'started'; readonly run: Run } | { readonly kind: 'skipped'; readonly reason: string; readonly run: Run };

export async function startExportsOnSchedule(timer: Timer, context: InvocationContext, deps: Deps): Promise<void> {
  const { settings } = deps;
  logEvent(context, 'info', 'scheduled export firing', {
    isPastDue: timer.isPastDue,
    kinds: settings.exportKinds,
    currencies: settings.currencies,
    billingPeriod: settings.billingPeriod,
  });
  const failures: string[] = [];
  for (const kind of settings.exportKinds) {
    for (const currency of settings.currencies) {
      try {
        await startExport({ kind, currency, billingPeriod: settings.billingPeriod, attributeSet: settings.attributeSet, trigger: 'timer' }, deps, context);
      } catch (thrown) {
        // One export's trouble must not stop the others; the host records the failure below.
        failures.push(`${kind} ${currency}: ${asError(thrown).message}`);
      }
    }
  }
  if (failures.length > 0) throw new Error(`could not start every export: ${failures.join('; ')}`);
}

/**
 * Starts each billed kind of `kinds` (default BILLED_EXPORT_KINDS) for one invoice; one kind's
 * trouble does not stop the other, and is thrown once both were tried.
 */
export async function startInvoiceExports(
  invoiceId: string,
  deps: Deps,
  log: RunLogger,
  options: { readonly trigger: RunTrigger; readonly kinds?: readonly BilledKind[]; readonly force?: boolean },
): Promise<StartOutcome[]> {
  const outcomes: StartOutcome[] = [];
  const failures: string[] = [];
  for (const kind of options.kinds ?? deps.settings.billedExportKinds) {
    try {
      outcomes.push(
        await startExport({ kind, invoiceId, attributeSet: deps.settings.attributeSet, trigger: options.trigger, force: options.force ?? false }, deps, log),
      );
    } catch (thrown) {
      failures.push(`${kind} ${invoiceId}: ${asError(thrown).message}`);
    }
  }
  if (failures.length > 0) throw new Error(`could not start every export of invoice ${invoiceId}: ${failures.join('; ')}`);
  return outcomes;
}

/** Starts one export unless its key is already running or landed. */
export async function startExport(request: StartRequest, deps: Deps, log: RunLogger): Promise<StartOutcome> {
  await deps.ready();
  const now = deps.now();
  const key = keyForRequest(request, now);

  const { latest, keyEtag, claimedAt } = await deps.ledger.latestForKey(key);
  const decision = decideStart(latest?.run, request, now, deps.settings.exportDeadlineSeconds, claimedAt);
  if (decision.kind === 'skip') {
    logEvent(log, 'info', 'export not started', { key: exportKeyString(key), reason: decision.reason });
    return { kind: 'skipped', reason: decision.reason, run: decision.run ?? (await winningRun(deps, key)) };
  }
  if (decision.supersedes && latest) {
    await failRun(latest, 'DeadlineExceeded', 'the run passed its deadline without finishing and was superseded by a new run', deps, log).catch(
      () => undefined,
    );
  }

  const run = newRun(request, randomUUID(), now, latest?.run);
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
    if (attempt >= 20) throw new Error(`the run that claimed ${exportKeyString(key)} (${subjectOf(key)}) was not recorded within 10 s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 500));
  }
}
