/** The results as a plain-text table (stdout) and as Markdown (for the README). */
import { describeMachine } from './machine';
import { FIGURE_IDS, type BenchResults, type Measurement, type Unit } from './results';

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '–';
  switch (unit) {
    case 's':
      return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} s`;
    case 'ms':
      return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ms`;
    case 'MiB':
      return `${value.toFixed(0)} MiB`;
    case 'count':
      return Number.isInteger(value) ? String(value) : value.toFixed(1);
    case 'requests/file':
      return value.toFixed(2);
  }
}

export function formatRatio(ratio: number | null): string {
  return ratio === null ? '–' : `${ratio < 10 ? ratio.toFixed(2) : ratio.toFixed(1)}×`;
}

interface Line {
  readonly figure: string;
  readonly measurement: string;
  readonly value: string;
  readonly floor: string;
  readonly ratio: string;
  readonly floorLabel: string;
}

function lines(results: BenchResults): Line[] {
  return results.figures.flatMap((figure) =>
    figure.rows.map((row: Measurement, rowIndex) => ({
      figure: rowIndex === 0 ? `${FIGURE_IDS.indexOf(figure.id) + 1}. ${figure.title}` : '',
      measurement: row.label,
      value: formatValue(row.value, row.unit),
      floor: formatValue(row.floor, row.unit),
      ratio: formatRatio(row.ratio),
      floorLabel: row.floorLabel,
    })),
  );
}

const HEADER: Line = { figure: 'figure', measurement: 'measurement (median)', value: 'value', floor: 'floor', ratio: 'ratio', floorLabel: 'floor is' };
const COLUMNS: ReadonlyArray<keyof Line> = ['figure', 'measurement', 'value', 'floor', 'ratio', 'floorLabel'];
const RIGHT_ALIGNED = new Set<keyof Line>(['value', 'floor', 'ratio']);

export function formatTable(results: BenchResults): string {
  const rows = [HEADER, ...lines(results)];
  const widths = COLUMNS.map((column) => Math.max(...rows.map((row) => row[column].length)));
  const render = (row: Line) =>
    COLUMNS.map((column, index) => (RIGHT_ALIGNED.has(column) ? row[column].padStart(widths[index]!) : row[column].padEnd(widths[index]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [
    `partner-billing-export benchmarks (${results.mode}), ${results.startedAt}, ${results.durationSeconds.toFixed(0)} s`,
    `machine: ${describeMachine(results.machine)}`,
    '',
    render(HEADER),
    rule,
    ...rows.slice(1).map(render),
  ].join('\n');
}

export function formatMarkdown(results: BenchResults): string {
  const escape = (text: string) => text.replace(/\|/g, '\\|');
  return [
    `| figure | measurement (median) | value | floor | ratio | floor is |`,
    `|---|---|--:|--:|--:|---|`,
    ...lines(results).map((line) => `| ${COLUMNS.map((column) => escape(line[column])).join(' | ')} |`),
  ].join('\n');
}
