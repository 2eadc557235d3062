/**
 * Structured telemetry for operators: every run state change is one trace whose custom
 * dimensions carry the run's ids (runId, operationId, kind, billingMonth, currency, state,
 * pollCount, bytesCopied, reason), a failed run is an error-level trace, and finished runs
 * record metrics (export duration, polls, bytes copied).
 *
 * `context.log` cannot carry custom dimensions in the Node.js v4 model, so with an Application
 * Insights connection string the events go through OpenTelemetry's logs and metrics SDKs to the
 * Azure Monitor exporter (./azureMonitor.ts): the vendor-neutral API Microsoft supports, loaded
 * only when configured, on the first event (so cold starts pay nothing for it). Without a
 * connection string the same events go to the invocation's log, that is, the console.
 */
import { asError } from './errors';
import { runFacts } from './core/runRecord';
import type { Run } from './core/run';
import { logEvent, type LogLevel, type RunLogger } from './runLog';

export interface Telemetry {
  /** One run state change: `run <state>` plus the run's dimensions. */
  runChanged(log: RunLogger, run: Run, extra?: Record<string, unknown>): void;
  /** Sends what is buffered; the host may freeze the process after an invocation. */
  flush(): Promise<void>;
}

/** The custom dimensions of a run event (what KQL reads from customDimensions). */
export function runDimensions(run: Run, extra: Record<string, unknown> = {}): Record<string, string | number> {
  // runFacts leaves out absent values; an empty extra leaves its dimension out too.
  const dimensions: Record<string, string | number> = {
    ...runFacts(run),
    ...(run.finishedAt ? { durationSeconds: (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000 } : {}),
  };
  for (const [name, value] of Object.entries(extra)) {
    if (value === '') delete dimensions[name];
    else if (typeof value === 'string' || typeof value === 'number') dimensions[name] = value;
  }
  return dimensions;
}

function levelOf(run: Run): LogLevel {
  return run.state === 'failed' ? 'error' : 'info';
}

/** Events to the invocation's log as `run <state> {json}`: the local and fallback sink. */
export const consoleTelemetry: Telemetry = {
  runChanged(log, run, extra) {
    logEvent(log, levelOf(run), `run ${run.state}`, runDimensions(run, extra));
  },
  flush: () => Promise.resolve(),
};

/**
 * Telemetry whose sink is loaded on the first event (./azureMonitor.ts through import()).
 * Events are handed over in order once it has loaded; flush() waits for that. If it cannot be
 * loaded, every event goes to the invocation's log instead, with an error saying why.
 */
export function deferredTelemetry(load: () => Promise<Telemetry>): Telemetry {
  let sink: Promise<Telemetry> | undefined;
  let handedOver: Promise<void> = Promise.resolve();
  return {
    runChanged(log, run, extra) {
      sink ??= load();
      const loading = sink;
      handedOver = handedOver.then(() =>
        loading.then(
          (loaded) => loaded.runChanged(log, run, extra),
          (error: unknown) => {
            logEvent(log, 'error', 'telemetry not sent to Application Insights: its exporter did not load', {
              reason: asError(error).message,
            });
            consoleTelemetry.runChanged(log, run, extra);
          },
        ),
      );
    },
    async flush() {
      await handedOver;
      const loaded = await sink?.catch(() => undefined);
      await loaded?.flush();
    },
  };
}
