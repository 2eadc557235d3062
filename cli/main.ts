/**
 * npm run -s cli -- <command>: the app's own handlers, driven locally.
 *
 *   start    what the timer does for one export, then exit
 *   worker   the queue function, run like the Functions host runs it, until no run is in progress
 *   run      start + worker; exit 0 if the run succeeded, 1 if it failed
 *   status   the run history from the ledger
 *   emulator start Azurite, the identity endpoint and the Partner Billing emulator; print settings
 *   demo     the emulators plus `run`, with progress and a closing summary
 *
 * Exit codes: 0 success, 1 the run failed, 2 bad usage or bad settings.
 */
import { InvocationContext } from '@azure/functions';
import { parseArgs } from 'node:util';
import { createStorageClients } from '../src/adapters/storageClients';
import { DEFAULT_GRAPH_TOKEN_SCOPE, parseSettings, type Settings } from '../src/core/settings';
import { InvalidStartRequestError, parseStartRequest } from '../src/core/startRequest';
import { isFinished, type Run } from '../src/core/run';
import { createDeps, type Deps } from '../src/deps';
import { SettingsError } from '../src/errors';
import { startExport } from '../src/functions/startExport';
import { startLocalCloud, type LocalCloud } from '../emulator/localCloud';
import { runSummary } from '../src/runSummary';
import { formatBytes, formatLogLine, formatRunTable } from './output';
import { loadSettingsEnv } from './settingsSource';
import { queueHostOptions, runWorker } from '../emulator/queueHost';

class UsageError extends Error {}

const USAGE = `Usage: npm run -s cli -- <command> [options]

Commands:
  start   [--currency C] [--period current|last] [--attribute-set full|basic] [--force] [--json]
  worker  [--lease-seconds N] [--json]
  run     [start's options] [--json]
  status  [--month YYYY-MM] [--state STATE] [--json]
  emulator
  demo    [--currency C] [--files N] [--rows N]

Settings come from the environment, over the Values of local.settings.json (names are
case-insensitive). worker leases a message for --lease-seconds (default 30), renewing it while
it works.
--currency defaults to the first of EXPORT_CURRENCIES; --period and --attribute-set to
EXPORT_BILLING_PERIOD and EXPORT_ATTRIBUTE_SET. --force re-exports a month that already landed.`;

const OPTIONS = {
  currency: { type: 'string' },
  period: { type: 'string' },
  'attribute-set': { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  month: { type: 'string' },
  state: { type: 'string' },
  files: { type: 'string' },
  rows: { type: 'string' },
  'lease-seconds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

async function main(argv: string[]): Promise<number> {
  const { values: options, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const command = positionals[0];
  if (options.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || options.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);

  switch (command) {
    case 'start':
      return withDeps(loadSettingsEnv(process.env), (deps) => start(deps, options));
    case 'worker':
      return withDeps(loadSettingsEnv(process.env), (deps) => worker(deps, options));
    case 'run':
      return withDeps(loadSettingsEnv(process.env), (deps) => run(deps, options));
    case 'status':
      return withDeps(loadSettingsEnv(process.env), (deps) => status(deps, options));
    case 'emulator':
      return emulator();
    case 'demo':
      return demo(options);
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

async function withDeps(env: Record<string, string | undefined>, body: (deps: Deps) => Promise<number>): Promise<number> {
  const settings = parseSettings(env);
  applyIdentityEnv(env);
  const deps = createDeps(settings);
  try {
    return await body(deps);
  } finally {
    await deps.telemetry.flush();
  }
}

/** @azure/identity reads its endpoint from process.env; local.settings.json may carry it. */
function applyIdentityEnv(env: Record<string, string | undefined>): void {
  for (const name of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_CLIENT_ID']) {
    if (env[name] && !process.env[name]) process.env[name] = env[name];
  }
}

/** The CLI's flags as the HTTP API's body: one parser for both. */
function startRequest(settings: Settings, options: Options) {
  try {
    return parseStartRequest(
      {
        ...(options.currency === undefined ? {} : { currency: options.currency }),
        ...(options.period === undefined ? {} : { billingPeriod: options.period }),
        ...(options['attribute-set'] === undefined ? {} : { attributeSet: options['attribute-set'] }),
        force: options.force ?? false,
      },
      settings,
      'cli',
    );
  } catch (thrown) {
    if (thrown instanceof InvalidStartRequestError) throw new UsageError(thrown.message);
    throw thrown;
  }
}

/** A real InvocationContext whose log lines go to stderr, so stdout stays for results. */
function cliContext(functionName: string): InvocationContext {
  return new InvocationContext({
    functionName,
    logHandler: (level, ...args) => process.stderr.write(`${formatLogLine(level, args.map(String).join(' '))}\n`),
  });
}

async function start(deps: Deps, options: Options): Promise<number> {
  const context = cliContext('startExports');
  const outcome = await startExport(startRequest(deps.settings, options), deps, context);
  if (outcome.kind === 'skipped') process.stderr.write(`Not started: ${outcome.reason}\n`);
  report(outcome.run, deps, options.json ?? false);
  return outcome.run.state === 'failed' ? 1 : 0;
}

async function worker(deps: Deps, options: Options): Promise<number> {
  const host = queueHostOptions();
  const leaseSeconds = positiveInteger(options['lease-seconds'], '--lease-seconds', host.leaseSeconds);
  const result = await runWorker(deps, createStorageClients(deps.settings).queueService, {
    host: { ...host, leaseSeconds },
    onLog: (level, line) => process.stderr.write(`${formatLogLine(level, line)}\n`),
    onWait: (line) => process.stderr.write(`${formatLogLine('info', line)}\n`),
  });
  const failed = result.runs.filter((r) => r.state === 'failed');
  if (options.json) {
    // The worker's contract: its counts and the summary of every run it worked on or waited for.
    const { messagesProcessed, messagesPoisoned, leasesLost } = result;
    process.stdout.write(`${JSON.stringify({ messagesProcessed, messagesPoisoned, leasesLost, runs: result.runs.map((r) => runSummary(r, deps)) })}\n`);
  } else {
    process.stdout.write(`Processed ${result.messagesProcessed} message(s); no run in progress.${failed.length ? ` Failed: ${failed.map((r) => `${r.runId} (${r.errorCode}: ${r.errorMessage})`).join(', ')}` : ''}\n`);
  }
  return failed.length > 0 ? 1 : 0;
}

async function run(deps: Deps, options: Options): Promise<number> {
  const context = cliContext('startExports');
  const outcome = await startExport(startRequest(deps.settings, options), deps, context);
  if (outcome.kind === 'skipped') process.stderr.write(`Not started: ${outcome.reason}\n`);
  let final = outcome.run;
  if (!isFinished(final)) {
    const result = await runWorker(deps, createStorageClients(deps.settings).queueService, {
      runIds: [final.runId],
      onLog: (level, line) => process.stderr.write(`${formatLogLine(level, line)}\n`),
      onWait: (line) => process.stderr.write(`${formatLogLine('info', line)}\n`),
    });
    final = result.runs[0] ?? final;
  }
  report(final, deps, options.json ?? false);
  return final.state === 'succeeded' ? 0 : 1;
}

async function status(deps: Deps, options: Options): Promise<number> {
  await deps.ready();
  const runs = await deps.ledger.listRuns({
    ...(options.month ? { billingMonth: options.month } : {}),
    ...(options.state ? { state: options.state as Run['state'] } : {}),
  });
  if (options.json) process.stdout.write(`${JSON.stringify({ runs: runs.map((r) => runSummary(r, deps)) })}\n`);
  else process.stdout.write(`${formatRunTable(runs)}\n`);
  return 0;
}

function report(run: Run, deps: Deps, json: boolean): void {
  const summary = runSummary(run, deps);
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  process.stdout.write(`Run ${run.runId}: ${run.state}`);
  if (run.state === 'succeeded') process.stdout.write(` - ${run.blobCount ?? 0} file(s), ${formatBytes(run.bytesCopied)} in ${run.destination}`);
  if (run.state === 'failed') process.stdout.write(` - ${run.errorCode}: ${run.errorMessage}`);
  process.stdout.write('\n');
}

async function emulator(): Promise<number> {
  const cloud = await startLocalCloud();
  // The emulator checks the token's audience the way Graph does, so the scope is Graph's, as deployed.
  const settings = { ...cloud.settings, GRAPH_TOKEN_SCOPE: DEFAULT_GRAPH_TOKEN_SCOPE, EXPORT_CURRENCIES: 'EUR,USD', POLL_INITIAL_DELAY_SECONDS: '1', POLL_MAX_DELAY_SECONDS: '5' };
  process.stdout.write('Local cloud running: Azurite, the managed-identity endpoint and the Partner Billing emulator.\n\n');
  process.stdout.write('Environment (for `npm run -s cli -- run` in another shell):\n');
  for (const [name, value] of Object.entries(settings)) process.stdout.write(`export ${name}='${value}'\n`);
  process.stdout.write('\nlocal.settings.json (for `func start`):\n');
  process.stdout.write(`${JSON.stringify({ IsEncrypted: false, Values: { FUNCTIONS_WORKER_RUNTIME: 'node', ...settings } }, null, 2)}\n`);
  process.stdout.write('\nPress Ctrl+C to stop.\n');
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', resolveStop);
    process.once('SIGTERM', resolveStop);
  });
  await cloud.stop();
  return 0;
}

async function demo(options: Options): Promise<number> {
  const began = Date.now();
  process.stdout.write('Starting the local cloud: Azurite, a managed-identity endpoint and the Partner Billing emulator...\n');
  const fileCount = positiveInteger(options.files, '--files', 4);
  const rowsPerFile = positiveInteger(options.rows, '--rows', 2000);
  let cloud: LocalCloud | undefined;
  try {
    cloud = await startLocalCloud({ scenario: { fileCount, rowsPerFile, retryAfterSeconds: 1, runningPolls: 2 } });
    const env = {
      ...cloud.settings,
      EXPORT_CURRENCIES: options.currency ?? 'EUR',
      POLL_INITIAL_DELAY_SECONDS: '1',
      POLL_MAX_DELAY_SECONDS: '2',
    };
    process.stdout.write(`  Graph (emulated)      ${cloud.settings.GRAPH_BASE_URL}\n  Managed identity      ${cloud.settings.IDENTITY_ENDPOINT}\n  Azurite blob/queue/table on 127.0.0.1:${cloud.azurite.blobPort}/${cloud.azurite.queuePort}/${cloud.azurite.tablePort}\n\n`);
    for (const name of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER']) process.env[name] = env[name as keyof typeof env];
    const settings = parseSettings(env);
    const deps = createDeps(settings);
    const request = startRequest(settings, options);
    process.stdout.write(`Exporting unbilled usage: period '${request.billingPeriod}', currency ${request.currency}, attribute set '${request.attributeSet}'...\n`);
    const context = cliContext('startExports');
    const outcome = await startExport(request, deps, context);
    const result = await runWorker(deps, createStorageClients(settings).queueService, {
      runIds: [outcome.run.runId],
      onLog: (level, line) => process.stdout.write(`${formatLogLine(level, line)}\n`),
    });
    const final = result.runs[0] ?? outcome.run;
    const seconds = ((Date.now() - began) / 1000).toFixed(1);
    if (final.state !== 'succeeded') {
      process.stdout.write(`\nThe export failed: ${final.errorCode}: ${final.errorMessage}\n`);
      return 1;
    }
    const summary = runSummary(final, deps);
    process.stdout.write(
      `\nLanded ${final.blobCount} file(s), ${formatBytes(final.bytesCopied)} of ${final.billingMonth} usage (${final.currency}, ${final.attributeSet}) in ${seconds} s:\n` +
        `  folder     ${final.destination}\n` +
        `  manifest   ${summary.manifestUrl}\n` +
        `  run        ${final.runId} (${final.pollCount} polls, ledger table BillingExportRuns)\n` +
        'Everything ran on local emulators; they stop now. `npm run -s cli -- emulator` keeps them running.\n',
    );
    return 0;
  } finally {
    await cloud?.stop();
  }
}

function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${name} '${value}': expected a whole number, at least 1`);
  return Number(value);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof SettingsError || error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`${error.message}\n${error instanceof UsageError || error instanceof TypeError ? `\n${USAGE}\n` : ''}`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
