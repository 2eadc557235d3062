/**
 * Telemetry to Application Insights through OpenTelemetry's logs and metrics SDKs and the Azure
 * Monitor exporter (see ./telemetry.ts for what is sent and why). ./deps.ts imports this module
 * only when APPLICATIONINSIGHTS_CONNECTION_STRING is set, on the first event, so cold starts do
 * not load these SDKs (scripts/bundle.mjs ships it as its own file, dist/telemetry.js).
 */
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { AzureMonitorLogExporter, AzureMonitorMetricExporter } from '@azure/monitor-opentelemetry-exporter';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { redactSecrets } from './core/redact';
import { isBilled } from './core/naming';
import { isFinished } from './core/run';
import type { ApplicationInsightsSettings } from './core/settings';
import { runDimensions, type Telemetry } from './telemetry';

/** The app's settings for Application Insights: Entra ID ingestion as the managed identity when asked for. */
export function azureMonitorTelemetryFor(insights: ApplicationInsightsSettings): Telemetry {
  const clientId = insights.entraId?.clientId;
  return createAzureMonitorTelemetry({
    connectionString: insights.connectionString,
    ...(insights.entraId ? { credential: clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential() } : {}),
  });
}

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
  const exporterOptions = {
    connectionString: options.connectionString,
    ...(options.credential ? { credential: options.credential } : {}),
    // A Function App's file system is not a place to queue telemetry between cold starts.
    disableOfflineStorage: true,
  };
  // service.name becomes the cloud role name in Application Insights.
  const resource = resourceFromAttributes({ 'service.name': 'partner-billing-export' });
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: new AzureMonitorLogExporter(exporterOptions) })],
  });
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new AzureMonitorMetricExporter(exporterOptions),
        exportIntervalMillis: options.metricIntervalMs ?? 60_000,
      }),
    ],
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
      if (isFinished(run)) {
        // Metric dimensions stay few: per kind and state (an invoice id would be a series per invoice).
        const attributes = {
          kind: run.kind,
          ...(isBilled(run) ? {} : { currency: run.currency, billingMonth: run.billingMonth }),
          attributeSet: run.attributeSet,
          state: run.state,
        };
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
