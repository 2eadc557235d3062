/**
 * One log line per run state change: a fixed message and a JSON object of ids, so a KQL query
 * can `parse_json` the tail of the line. Values pass through `redactSecrets` on the way out.
 */
import { redactSecrets } from './core/redact';

/** What handlers log through: an InvocationContext satisfies it. */
export interface RunLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export type LogLevel = 'info' | 'warn' | 'error';

export function logEvent(log: RunLogger, level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  log[level](redactSecrets(`${message} ${JSON.stringify(fields)}`));
}

/** The fields that identify a run in every line about it. */
export { runFacts as runFields } from './core/runRecord';
