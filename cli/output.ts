/** How the CLI shows runs and log lines. */
import { isBilled } from '../src/core/naming';
import type { Run } from '../src/core/run';

export function formatRunTable(runs: readonly Run[], filtered = false): string {
  if (runs.length === 0) return filtered ? 'No runs match.' : 'No runs recorded yet.';
  const rows = runs.map((run) => [
    run.startedAt.replace('T', ' ').slice(0, 19),
    run.kind,
    // Billed kinds: the invoice; unbilled kinds: month, period and currency.
    isBilled(run) ? run.invoiceId : `${run.billingMonth} ${run.billingPeriod} ${run.currency}`,
    run.attributeSet,
    run.state,
    String(run.pollCount),
    run.state === 'succeeded'
      ? `${run.blobCount ?? 0} files, ${formatBytes(run.bytesCopied)}`
      : run.state === 'failed' || run.state === 'noData'
        ? `${run.errorCode}: ${run.errorMessage ?? ''}`
        : run.state === 'noNewData'
          ? `unchanged since the last landing (eTag ${run.manifestETag ?? '?'})`
          : run.lastErrorCode
            ? `waiting: ${run.lastErrorCode} (${run.lastErrorCount ?? 1}x): ${run.lastErrorMessage ?? ''}`
            : '',
    run.runId,
  ]);
  return formatColumns(['started (UTC)', 'kind', 'invoice or month', 'set', 'state', 'polls', 'result', 'run id'], rows, { maxWidth: 60 });
}

/**
 * A header and rows as columns two spaces apart, each as wide as its widest cell, but at most
 * `maxWidth` (a longer cell is cut, ending in …); `rightAligned` columns are padded on the left.
 */
export function formatColumns(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  options: { maxWidth?: number; rightAligned?: (column: number) => boolean } = {},
): string {
  const widths = header.map((title, column) => Math.min(options.maxWidth ?? Infinity, Math.max(title.length, ...rows.map((row) => row[column]!.length))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column]!;
        if (cell.length > width) return `${cell.slice(0, width - 1)}…`;
        return options.rightAligned?.(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `message {json}` log lines become `  HH:MM:SS message  key=value ...`. */
export function formatLogLine(level: string, line: string): string {
  const time = new Date().toISOString().slice(11, 19);
  const marker = level === 'error' ? 'ERROR ' : level === 'warning' || level === 'warn' ? 'WARN  ' : '';
  const brace = line.indexOf(' {');
  if (brace < 0) return `  ${time} ${marker}${line}`;
  try {
    const fields = JSON.parse(line.slice(brace + 1)) as Record<string, unknown>;
    const shown = ['kind', 'invoiceId', 'billingMonth', 'currency', 'state', 'pollCount', 'delaySeconds', 'blobCount', 'bytesCopied', 'reason', 'error']
      .filter((key) => fields[key] !== undefined && fields[key] !== null && fields[key] !== '' && fields[key] !== 0)
      .map((key) => `${key}=${typeof fields[key] === 'string' ? fields[key] : JSON.stringify(fields[key])}`);
    return `  ${time} ${marker}${line.slice(0, brace)}  ${shown.join(' ')}`.trimEnd();
  } catch {
    return `  ${time} ${marker}${line}`;
  }
}
