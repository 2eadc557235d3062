/**
 * npm run chaos [-- --seed N --runs N --rate R --workers N --kill-every-ms N --timeout S --json]
 * Prints the chaos run's figures; exits 1 if a figure that must be zero is not. --runs is the
 * number of exports, each of its own ledger key (up to MAX_CHAOS_RUNS); --timeout defaults to
 * 300 s plus 2 s per export.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CHAOS, MUST_BE_ZERO, runChaos, type ChaosReport } from './runChaos';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string' },
    rate: { type: 'string' },
    workers: { type: 'string' },
    'kill-every-ms': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  },
});

function number(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} '${value}': expected a number >= 0`);
  return parsed;
}

export function formatReport(report: ChaosReport): string {
  const rows: Array<[string, string]> = [
    ['seed', String(report.seed)],
    ['runs', String(report.runs)],
    ['fault rate', String(report.faultRate)],
    ...Object.entries(report.faultsInjected)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, count]): [string, string] => [`  fault: ${kind}`, String(count)]),
    ['timer firings that failed', String(report.timerFailures)],
    ['exports never started (every firing failed)', String(report.exportsNeverStarted)],
    ['runs succeeded', String(report.runsSucceeded)],
    [
      'runs failed with a reason',
      `${report.runsFailedWithReason}${
        Object.keys(report.failureReasons).length
          ? ` (${Object.entries(report.failureReasons)
              .map(([code, n]) => `${code}: ${n}`)
              .join(', ')})`
          : ''
      }`,
    ],
    ['export restarts (operation gone)', String(report.restarts)],
    ['stalled runs revived', String(report.revivals)],
    ['orphaned Graph operations', String(report.orphanedGraphOperations)],
    ['runs stuck (must be 0)', String(report.runsStuck)],
    ['manifests without every file verified (must be 0)', String(report.incompleteManifests)],
    ['duplicate exports for one key (must be 0)', String(report.duplicateExports)],
    ['secrets found in output (must be 0)', String(report.secretsFound)],
    ['duration', `${report.durationSeconds} s`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

async function main(): Promise<number> {
  const report = await runChaos({
    seed: number(values.seed, 'seed', DEFAULT_CHAOS.seed),
    runs: number(values.runs, 'runs', DEFAULT_CHAOS.runs),
    faultRate: number(values.rate, 'rate', DEFAULT_CHAOS.faultRate),
    workers: number(values.workers, 'workers', DEFAULT_CHAOS.workers),
    killEveryMs: number(values['kill-every-ms'], 'kill-every-ms', DEFAULT_CHAOS.killEveryMs),
    ...(values.timeout === undefined ? {} : { timeoutSeconds: number(values.timeout, 'timeout', 0) }),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${values.json ? JSON.stringify(report) : formatReport(report)}\n`);
  return MUST_BE_ZERO.some((figure) => report[figure] !== 0) ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(2);
    },
  );
}
