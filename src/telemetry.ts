/**
 * Structured telemetry for operators: every run state change is one trace whose custom
 * dimensions carry the run's ids (runId, operationId, kind, billingMonth, currency, state,
 * pollCount, bytesCopied, reason), a failed run is an error-level trace, and finished runs
 * record metrics (export duration, polls, bytes copied).
 *
 * `context.log` cannot carry custom dimensions in the Node.js v4 model, so with an Application
 * Insights connection string the events go through OpenTelemetry's logs and metrics SDKs to the
 * Azure Monitor exporter: the vendor-neutral API Microsoft supports, loaded only when
 * configured (so local runs and cold starts without it pay nothing). Without a connection
 * string the same events go to the invocation's log, that is, the console.
 */
import type { TokenCredential } from '@azure/identity';
import { redactSecrets } from './core/redact';
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
  const dimensions: Record<string, string | number | undefined> = {
    runId: run.runId,
    operationId: run.operationId,
    kind: run.kind,
    billingMonth: run.billingMonth,
    currency: run.currency,
    attributeSet: run.attributeSet,
    billingPeriod: run.billingPeriod,
    state: run.state,
    pollCount: run.pollCount,
    bytesCopied: run.bytesCopied,
    blobCount: run.blobCount,
    destination: run.destination,
    errorCode: run.errorCode,
    reason: run.errorMessage,
    durationSeconds: run.finishedAt ? (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000 : undefined,
  };
  for (const [name, value] of Object.entries(extra)) {
    if (typeof value === 'string' || typeof value === 'number') dimensions[name] = value;
  }
  return Object.fromEntries(Object.entries(dimensions).filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== ''));
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

export interface AzureMonitorOptions {
  readonly connectionString: string;
  /** Entra ID auth for ingestion when the resource has local auth disabled. */
  readonly credential?: TokenCredential;
  /** How often metrics are exported; flush() exports at once too. @default 60000 */
  readonly metricIntervalMs?: number;
}

/**
 * Telemetry to Application Insights through OpenTelemetry and the Azure Monitor exporter.
 * Log records become `traces` (message, severity, customDimensions); instruments become
 * `customMetrics`.
 */
export function createAzureMonitorTelemetry(options: AzureMonitorOptions): Telemetry {
  // Required here, not imported at the top: only a configured app loads the SDKs.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { AzureMonitorLogExporter, AzureMonitorMetricExporter } = require('@azure/monitor-opentelemetry-exporter') as typeof import('@azure/monitor-opentelemetry-exporter');
  const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs');
  const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { SeverityNumber } = require('@opentelemetry/api-logs') as typeof import('@opentelemetry/api-logs');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const exporterOptions = {
    connectionString: options.connectionString,
    ...(options.credential ? { credential: options.credential } : {}),
    // A Function App's file system is not a place to queue telemetry between cold starts.
    disableOfflineStorage: true,
  };
  // service.name becomes the cloud role name in Application Insights.
  const resource = resourceFromAttributes({ 'service.name': 'partner-billing-export' });
  const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new AzureMonitorLogExporter(exporterOptions) })] });
  const meterProvider = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({ exporter: new AzureMonitorMetricExporter(exporterOptions), exportIntervalMillis: options.metricIntervalMs ?? 60_000 })],
  });
  const logger = loggerProvider.getLogger('partner-billing-export');
  const meter = meterProvider.getMeter('partner-billing-export');
  const duration = meter.createHistogram('export.duration', { unit: 's', description: 'Time from the start of a run to its end' });
  const polls = meter.createHistogram('export.polls', { description: 'Operation polls a finished run made' });
  const bytesCopied = meter.createCounter('export.bytes_copied', { unit: 'By', description: 'Bytes landed in the destination' });

  return {
    runChanged(_log, run, extra) {
      const dimensions = runDimensions(run, extra);
      logger.emit({
        severityNumber: run.state === 'failed' ? SeverityNumber.ERROR : SeverityNumber.INFO,
        severityText: run.state === 'failed' ? 'Error' : 'Information',
        body: redactSecrets(`run ${run.state} ${JSON.stringify(dimensions)}`),
        attributes: Object.fromEntries(Object.entries(dimensions).map(([name, value]) => [name, typeof value === 'string' ? redactSecrets(value) : value])),
      });
      if (run.state === 'succeeded' || run.state === 'failed') {
        const attributes = { currency: run.currency, billingMonth: run.billingMonth, attributeSet: run.attributeSet, state: run.state };
        if (typeof dimensions.durationSeconds === 'number') duration.record(dimensions.durationSeconds, attributes);
        polls.record(run.pollCount, attributes);
        if (run.state === 'succeeded') bytesCopied.add(run.bytesCopied, attributes);
      }
    },
    async flush() {
      await Promise.all([loggerProvider.forceFlush(), meterProvider.forceFlush()]);
    },
  };
}
