/**
 * npm run -s cli -- <command>: the app's own handlers, driven locally. The commands, their
 * flags and exit codes are in ./commands.ts (and `--help`); this file parses a command's flags
 * (util.parseArgs, strict: a flag of another command is a usage error), runs it and turns what
 * went wrong into one line and an exit code.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { constants as osConstants } from 'node:os';
import { createStorageClients } from '../src/adapters/storageClients';
import { InvalidRequestError, parseRunFilter, type RunFilter } from '../src/core/requestFields';
import { DEFAULT_GRAPH_TOKEN_SCOPE, parseSettings, type Settings } from '../src/core/settings';
import { parseBackfillRequest, parseStartRequest, type BackfillRequest, type BackfillRequestField, type StartRequestField } from '../src/core/startRequest';
import { BILLED_KINDS, INVOICE_ID_FORM, KIND_DESCRIPTIONS, exportKeyString, isBilled, parseInvoiceId } from '../src/core/naming';
import { receivePartnerCenterEvent } from '../src/functions/invoiceEvents';
import { startPartnerCenterEvents } from '../emulator/partnerCenterEvents';
import { destinationOf, isFailure, isFinished, subjectOf, type Run, type StartRequest } from '../src/core/run';
import { backfillItemSummary, startBackfill, type BackfillItem } from '../src/functions/backfill';
import { createDeps, type Deps, type DepsOptions } from '../src/deps';
import { SettingsError } from '../src/errors';
import { startExport } from '../src/functions/startExport';
import { describeInvoices } from '../emulator/invoices';
import { startLocalCloud, type LocalCloud } from '../emulator/localCloud';
import { queueHostOptions, runWorker, type WorkerOptions, type WorkerResult } from '../emulator/queueHost';
import { runSummary } from '../src/runSummary';
import { COMMANDS, commandHelp, flagList, isCommand, overviewHelp, PROGRAM, type CommandName } from './commands';
import { describeFailure, EXIT } from './failure';
import { formatBytes, formatLogLine, formatRunTable } from './output';
import { formatTotalsTable } from './report';
import { runDataOf } from '../src/steps/runData';
import { loadSettingsEnv } from './settingsSource';

class UsageError extends Error {}

/** How the start request's fields are named on the command line. */
const START_FLAGS: Readonly<Record<StartRequestField, string>> = {
  kind: '--kind',
  invoiceId: '--invoice',
  currency: '--currency',
  billingPeriod: '--period',
  attributeSet: '--attribute-set',
  force: '--force',
};
/** How the backfill request's fields are named on the command line. */
const BACKFILL_FLAGS: Readonly<Record<BackfillRequestField, string>> = {
  invoiceIds: '--invoices',
  kinds: '--kinds',
  attributeSet: '--attribute-set',
  force: '--force',
};

type Values = Record<string, string | boolean | undefined>;

/** What the failure line may name: the settings in use, once they were read. */
const loaded: { settings?: Settings; env: Record<string, string | undefined> } = { env: {} };

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(`${overviewHelp()}\n`);
    return EXIT.usage;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(`${overviewHelp()}\n`);
    return EXIT.ok;
  }
  if (first === 'help') {
    if (!isCommand(rest[0]) || rest.length > 1) throw new UsageError(`help takes one command: one of ${Object.keys(COMMANDS).join(', ')}`);
    process.stdout.write(`${commandHelp(rest[0])}\n`);
    return EXIT.ok;
  }
  if (!isCommand(first)) {
    throw new UsageError(
      first.startsWith('-')
        ? `expected a command before '${first}': one of ${Object.keys(COMMANDS).join(', ')}`
        : `unknown command '${first}': expected one of ${Object.keys(COMMANDS).join(', ')}`,
    );
  }
  const values = parseFlags(first, rest);
  if (values.help) {
    process.stdout.write(`${commandHelp(first)}\n`);
    return EXIT.ok;
  }
  // Flags first: a typo is named before the settings are even read.
  if (first === 'start' || first === 'run') startRequest(FLAG_CHECK_DEFAULTS, values);
  if (first === 'status') runFilter(values);
  if (first === 'backfill') backfillRequest(FLAG_CHECK_DEFAULTS, values);
  if (first === 'report') reportSelection(values);
  switch (first) {
    case 'start':
      return withDeps(loadSettingsEnv(process.env), (deps) => start(deps, values));
    case 'worker':
      return withDeps(loadSettingsEnv(process.env), (deps) => worker(deps, values));
    case 'run':
      return withDeps(loadSettingsEnv(process.env), (deps) => run(deps, values));
    case 'status':
      return withDeps(loadSettingsEnv(process.env), (deps) => status(deps, values));
    case 'backfill':
      return withDeps(loadSettingsEnv(process.env), (deps) => backfill(deps, values));
    case 'report':
      return withDeps(loadSettingsEnv(process.env), (deps) => reportTotals(deps, values));
    case 'emulator':
      return emulator();
    case 'demo':
      return demo(values);
  }
}

/** The command's own flags, strictly: anything else is a usage error naming them. */
function parseFlags(command: CommandName, args: string[]): Values {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [name, flag] of Object.entries(COMMANDS[command].flags)) options[name] = { type: flag.type };
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values;
  } catch (thrown) {
    const code = (thrown as { code?: string }).code ?? '';
    const message = thrown instanceof Error ? thrown.message : String(thrown);
    const hint = `${command}'s flags: ${flagList(command)} (${PROGRAM} ${command} --help)`;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`${command} does not take ${flag}; ${hint}`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const argument = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`${command} takes no arguments, only flags: '${argument}' is not one; ${hint}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? 'a flag';
      throw new UsageError(
        COMMANDS[command].flags[flag.replace(/^--/, '')]?.type === 'boolean' ? `${flag} takes no value; ${hint}` : `${flag} needs a value; ${hint}`,
      );
    }
    throw thrown;
  }
}

async function withDeps(env: Record<string, string | undefined>, body: (deps: Deps) => Promise<number>): Promise<number> {
  const settings = parseSettings(env);
  loaded.settings = settings;
  loaded.env = env;
  applyIdentityEnv(env);
  const deps = createDeps(settings);
  try {
    return await body(deps);
  } finally {
    await deps.telemetry.flush();
  }
}

/**
 * @azure/identity reads its endpoint from process.env; local.settings.json may carry it. What
 * process.env already has stays, unless `overwrite` (the demos' local cloud is the one to use).
 */
function applyIdentityEnv(env: Record<string, string | undefined>, { overwrite = false } = {}): void {
  for (const name of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_CLIENT_ID']) {
    if (env[name] && (overwrite || !process.env[name])) process.env[name] = env[name];
  }
}

/** Stand-ins for the settings' defaults, so that only the flags given are judged. */
const FLAG_CHECK_DEFAULTS = {
  currencies: ['EUR'],
  billingPeriod: 'last',
  attributeSet: 'full',
  exportKinds: ['unbilled-usage'],
  billedExportKinds: BILLED_KINDS,
} as const satisfies Pick<Settings, 'currencies' | 'billingPeriod' | 'attributeSet' | 'exportKinds' | 'billedExportKinds'>;

/** What `parse` makes of the flags; the problems it finds (InvalidRequestError) as one usage error. */
function flagsParsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (thrown) {
    if (thrown instanceof InvalidRequestError) throw new UsageError(thrown.problems.join('; '));
    throw thrown;
  }
}

/** The flags as the HTTP API's body: one parser for both, naming the flags in its errors. */
function startRequest(settings: Pick<Settings, 'currencies' | 'billingPeriod' | 'attributeSet' | 'exportKinds'>, values: Values): StartRequest {
  return flagsParsed(() =>
    parseStartRequest(
      {
        ...(values.kind === undefined ? {} : { kind: values.kind }),
        ...(values.invoice === undefined ? {} : { invoiceId: values.invoice }),
        ...(values.currency === undefined ? {} : { currency: values.currency }),
        ...(values.period === undefined ? {} : { billingPeriod: values.period }),
        ...(values['attribute-set'] === undefined ? {} : { attributeSet: values['attribute-set'] }),
        force: values.force ?? false,
      },
      settings,
      'cli',
      START_FLAGS,
    ),
  );
}

/** backfill's flags as POST /api/backfill's body: the same parser, naming the flags. */
function backfillRequest(settings: Pick<Settings, 'billedExportKinds' | 'attributeSet'>, values: Values): BackfillRequest {
  const list = (value: string | boolean | undefined) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean)
      : value;
  return flagsParsed(() =>
    parseBackfillRequest(
      {
        invoiceIds: list(values.invoices),
        ...(values.kinds === undefined ? {} : { kinds: list(values.kinds) }),
        ...(values['attribute-set'] === undefined ? {} : { attributeSet: values['attribute-set'] }),
        force: values.force ?? false,
      },
      settings,
      BACKFILL_FLAGS,
    ),
  );
}

/** How often a process under the tsx wrapper checks that the wrapper is still its parent. */
const WRAPPER_CHECK_MS = 500;

/**
 * SIGINT and SIGTERM (from a terminal, `kill`, or relayed by the tsx wrapper), and the tsx
 * wrapper going away, all mean: stop, cleanly.
 */
function stopOnSignals(): { signal: AbortSignal; exitCode: () => number } {
  const controller = new AbortController();
  let code: number = EXIT.ok;
  const stop = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    code = 128 + (osConstants.signals[name] ?? 15);
    process.stderr.write(`${formatLogLine('info', `${name}: stopping`)}\n`);
    controller.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Under the tsx wrapper (`npm run`), a wrapper that died (SIGKILL) relays nothing any more:
  // this process is reparented, so a changed parent pid is the signal to stop.
  if (process.execArgv.some((arg) => /tsx[\\/]dist[\\/]preflight\.cjs$/.test(arg))) {
    const wrapper = process.ppid;
    setInterval(() => process.ppid !== wrapper && stop('SIGTERM'), WRAPPER_CHECK_MS).unref();
  }
  return { signal: controller.signal, exitCode: () => code };
}

/** A real InvocationContext whose log lines go to `write`, so stdout stays for results. */
function cliContext(functionName: string, write: (line: string) => void = stderrLine): InvocationContext {
  return new InvocationContext({ functionName, logHandler: (level, ...args) => write(formatLogLine(level, args.map(String).join(' '))) });
}

function stderrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** runWorker as the CLI runs it: on the app's poll queue, the handlers' log lines formatted to `write`. */
function cliWorker(deps: Deps, write: (line: string) => void, options: Omit<WorkerOptions, 'onLog'> = {}): Promise<WorkerResult> {
  return runWorker(deps, createStorageClients(deps.settings).queueService, { ...options, onLog: (level, line) => write(formatLogLine(level, line)) });
}

/**
 * Works the poll queue until the runs `runIds` have ended, or we are told to stop. `latest` gives
 * a run as the worker last saw it (any run it worked on), else the run as it was given.
 */
async function workRuns(
  deps: Deps,
  runIds: readonly string[],
  write: (line: string) => void,
  options: Pick<WorkerOptions, 'signal' | 'onWait'>,
): Promise<{ stopped: boolean; latest: (run: Run) => Run }> {
  const result = await cliWorker(deps, write, { ...options, runIds });
  const seen = new Map(result.runs.map((run) => [run.runId, run]));
  return { stopped: result.stopped, latest: (run) => seen.get(run.runId) ?? run };
}

/** What the worker is waiting for, as an info line on stderr. */
function onWaitLine(line: string): void {
  stderrLine(formatLogLine('info', line));
}

interface ExportOutcome {
  readonly run: Run;
  readonly skipped?: string;
  /** Told to stop before the run finished. */
  readonly stopped: boolean;
}

/**
 * The one sequence of `start`, `run` and `demo`: start the export as the timer does, then (unless
 * only starting) work its poll messages as the host does until it has finished or we are told to stop.
 */
async function exportOnce(
  deps: Deps,
  request: StartRequest,
  io: { work: boolean; signal?: AbortSignal; write?: (line: string) => void; onWait?: (line: string) => void },
): Promise<ExportOutcome> {
  const write = io.write ?? stderrLine;
  const outcome = await startExport(request, deps, cliContext('startExports', write));
  const skipped = outcome.kind === 'skipped' ? outcome.reason : undefined;
  if (!io.work || isFinished(outcome.run)) return { run: outcome.run, ...(skipped ? { skipped } : {}), stopped: false };
  const result = await workRuns(deps, [outcome.run.runId], write, {
    ...(io.onWait ? { onWait: io.onWait } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
  });
  return { run: result.latest(outcome.run), ...(skipped ? { skipped } : {}), stopped: result.stopped };
}

async function start(deps: Deps, values: Values): Promise<number> {
  const outcome = await exportOnce(deps, startRequest(deps.settings, values), { work: false });
  if (outcome.skipped) process.stderr.write(`Not started: ${outcome.skipped}\n`);
  report(outcome.run, deps, values.json === true);
  if (values.json !== true && !isFinished(outcome.run)) {
    process.stdout.write(
      `Next: \`${PROGRAM} worker\` polls the export and lands it (or run the app with \`func start\`); \`${PROGRAM} status\` shows where it is.\n`,
    );
  }
  return outcome.run.state === 'failed' ? EXIT.runFailed : EXIT.ok;
}

async function worker(deps: Deps, values: Values): Promise<number> {
  const host = queueHostOptions();
  const leaseSeconds = positiveInteger(values['lease-seconds'], '--lease-seconds', host.leaseSeconds);
  const stop = stopOnSignals();
  const result = await cliWorker(deps, stderrLine, { host: { ...host, leaseSeconds }, signal: stop.signal, onWait: onWaitLine });
  const failed = result.runs.filter((r) => r.state === 'failed');
  if (values.json) {
    // The worker's contract: its counts and the summary of every run it worked on or waited for.
    const { messagesProcessed, messagesPoisoned, leasesLost } = result;
    process.stdout.write(`${JSON.stringify({ messagesProcessed, messagesPoisoned, leasesLost, runs: result.runs.map((r) => runSummary(r, deps)) })}\n`);
  } else {
    const ending = result.stopped ? 'stopped; the messages in hand are visible again' : 'no run in progress';
    process.stdout.write(
      `Processed ${result.messagesProcessed} message(s); ${ending}.${failed.length ? ` Failed: ${failed.map((r) => `${r.runId} (${r.errorCode}: ${r.errorMessage})`).join(', ')}` : ''}\n`,
    );
  }
  if (result.stopped) return stop.exitCode();
  return failed.length > 0 ? EXIT.runFailed : EXIT.ok;
}

async function run(deps: Deps, values: Values): Promise<number> {
  const request = startRequest(deps.settings, values);
  const stop = stopOnSignals();
  const outcome = await exportOnce(deps, request, { work: true, signal: stop.signal, onWait: onWaitLine });
  if (outcome.skipped) process.stderr.write(`Not started: ${outcome.skipped}\n`);
  report(outcome.run, deps, values.json === true);
  if (outcome.stopped) return stop.exitCode();
  // noData and noNewData are ends, not failures; a run not started (still running elsewhere) is not landed.
  return isFinished(outcome.run) && !isFailure(outcome.run) ? EXIT.ok : EXIT.runFailed;
}

/** status's filters, checked by the parser GET /api/runs uses, naming the flags. */
function runFilter(values: Values): RunFilter {
  return flagsParsed(() =>
    parseRunFilter(
      {
        month: values.month as string | undefined,
        status: values.state as string | undefined,
        kind: values.kind as string | undefined,
        invoice: values.invoice as string | undefined,
      },
      { month: '--month', status: '--state', kind: '--kind', invoice: '--invoice' },
    ),
  );
}

async function status(deps: Deps, values: Values): Promise<number> {
  const filter = runFilter(values);
  await deps.ready();
  const runs = await deps.ledger.listRuns(filter);
  if (values.json) process.stdout.write(`${JSON.stringify({ runs: runs.map((r) => runSummary(r, deps)) })}\n`);
  else process.stdout.write(`${formatRunTable(runs, Object.keys(filter).length > 0)}\n`);
  return EXIT.ok;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** report's selection: one run, a month, or (neither) the latest run that landed. */
function reportSelection(values: Values): { runId?: string; filter: RunFilter } {
  const runId = values.run as string | undefined;
  const chosen = ['run', 'month', 'invoice'].filter((flag) => values[flag] !== undefined);
  if (chosen.length > 1) throw new UsageError(`${chosen.map((flag) => `--${flag}`).join(' and ')} choose the runs in different ways: give one of them`);
  if (runId !== undefined && !RUN_ID.test(runId)) throw new UsageError(`--run is '${runId}': expected a run id (a lower-case GUID, as \`status\` shows it)`);
  const { billingMonth, invoiceId } = runFilter({ month: values.month, invoice: values.invoice });
  return { ...(runId ? { runId } : {}), filter: { ...(billingMonth ? { billingMonth } : {}), ...(invoiceId ? { invoiceId } : {}) } };
}

async function reportTotals(deps: Deps, values: Values): Promise<number> {
  const { runId, filter } = reportSelection(values);
  await deps.ready();
  let runs: Run[];
  if (runId) {
    const stored = await deps.ledger.getRun(runId);
    runs = stored ? [stored.run] : [];
  } else {
    const landed = await deps.ledger.listRuns({ state: 'succeeded', ...filter });
    // Newest first: the latest per key of the month or invoice, or the latest of all.
    const latest = new Map<string, Run>();
    for (const run of landed) if (!latest.has(exportKeyString(run))) latest.set(exportKeyString(run), run);
    runs = filter.billingMonth || filter.invoiceId ? [...latest.values()] : landed.slice(0, 1);
  }
  const reports = [];
  for (const run of runs) {
    const data = await runDataOf(run, deps);
    if (data) reports.push({ run, data });
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ runs: reports.map(({ run, data }) => ({ ...runSummary(run, deps), ...data })) })}\n`);
  else if (reports.length > 0) process.stdout.write(`${reports.map(({ run, data }) => formatTotalsTable(run, data)).join('\n\n')}\n`);
  if (reports.length === 0) {
    const what = runId
      ? `run ${runId}`
      : filter.billingMonth
        ? `billing month ${filter.billingMonth}`
        : filter.invoiceId
          ? `invoice ${filter.invoiceId}`
          : 'the ledger';
    process.stderr.write(`No landed run with checked figures in ${what}${runs.length > 0 ? ' (it landed before the data check, or has not landed)' : ''}.\n`);
    return EXIT.runFailed;
  }
  return EXIT.ok;
}

function report(run: Run, deps: Deps, json: boolean): void {
  const summary = runSummary(run, deps);
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  process.stdout.write(`Run ${run.runId} (${describeRun(run)}): ${run.state}`);
  if (run.state === 'succeeded') process.stdout.write(` - ${run.blobCount ?? 0} file(s), ${formatBytes(run.bytesCopied)} in ${destinationOf(run)}`);
  if (run.state === 'noNewData') process.stdout.write(` - the same data (eTag ${run.manifestETag}) landed before, in ${destinationOf(run)}`);
  if (run.state === 'failed' || run.state === 'noData') process.stdout.write(` - ${run.errorCode}: ${run.errorMessage}`);
  process.stdout.write('\n');
}

/** `billed-usage, invoice G016907411, full` or `unbilled-usage, 2026-10, last period, EUR, full`. */
function describeRun(run: Run): string {
  return isBilled(run)
    ? `${run.kind}, invoice ${run.invoiceId}, ${run.attributeSet}`
    : `${run.kind}, ${run.billingMonth}, ${run.billingPeriod} period, ${run.currency}, ${run.attributeSet}`;
}

/**
 * Starts every invoice and kind (paced, as POST /api/backfill does), then works the poll queue
 * until each run has ended. Progress goes to stderr; the summary to stdout.
 */
async function backfill(deps: Deps, values: Values): Promise<number> {
  const request = backfillRequest(deps.settings, values);
  const stop = stopOnSignals();
  const context = cliContext('backfill');
  const items = await startBackfill(request, deps, context, (item, done, total) => {
    const what =
      item.outcome === 'error'
        ? `not started: ${item.reason}`
        : item.outcome === 'skipped'
          ? `skipped: ${item.reason ?? ''}`
          : `started run ${item.run.runId} (${item.run.state})`;
    stderrLine(formatLogLine('info', `backfill ${done}/${total}: ${item.kind} ${item.invoiceId} ${what}`));
  });
  const pending = items.flatMap((item) => (item.outcome === 'started' && !isFinished(item.run) ? [item.run.runId] : []));
  let finished: BackfillItem[] = items;
  let stopped = false;
  if (pending.length > 0 && !stop.signal.aborted) {
    stderrLine(formatLogLine('info', `backfill: working ${pending.length} run(s) until they end`));
    const result = await workRuns(deps, pending, stderrLine, { signal: stop.signal, onWait: onWaitLine });
    stopped = result.stopped;
    finished = items.map((item) => (item.outcome === 'error' ? item : { ...item, run: result.latest(item.run) }));
  }
  const states = new Map<string, number>();
  for (const item of finished) {
    const label = item.outcome === 'error' ? 'not started' : item.outcome === 'skipped' ? 'skipped (already landed or running)' : item.run.state;
    states.set(label, (states.get(label) ?? 0) + 1);
  }
  const failed = finished.filter((item) => item.outcome === 'error' || (item.outcome === 'started' && isFailure(item.run)));
  if (values.json) {
    const counts = Object.fromEntries(states);
    process.stdout.write(
      `${JSON.stringify({ invoices: request.invoiceIds.length, kinds: request.kinds, runs: finished.length, counts, stopped, items: finished.map((item) => backfillItemSummary(item, deps)) })}\n`,
    );
  } else {
    process.stdout.write(
      `Backfill of ${request.invoiceIds.length} invoice(s) x ${request.kinds.join(', ')}: ${[...states].map(([label, count]) => `${count} ${label}`).join(', ')}${stopped ? ' (stopped before every run ended)' : ''}\n`,
    );
    for (const item of failed) {
      process.stdout.write(`  ${item.kind} ${item.invoiceId}: ${item.outcome === 'error' ? item.reason : `${item.run.errorCode}: ${item.run.errorMessage}`}\n`);
    }
  }
  if (stopped) return stop.exitCode();
  return failed.length > 0 ? EXIT.runFailed : EXIT.ok;
}

async function emulator(): Promise<number> {
  const stop = stopOnSignals();
  const cloud = await startLocalCloud();
  try {
    // The emulator checks the token's audience the way Graph does, so the scope is Graph's, as deployed.
    const settings = {
      ...cloud.settings,
      GRAPH_TOKEN_SCOPE: DEFAULT_GRAPH_TOKEN_SCOPE,
      EXPORT_CURRENCIES: 'EUR,USD',
      POLL_INITIAL_DELAY_SECONDS: '1',
      POLL_MAX_DELAY_SECONDS: '5',
    };
    process.stdout.write('Local cloud running: Azurite, the managed-identity endpoint and the Partner Billing emulator.\n\n');
    process.stderr.write(`${describeInvoices(new Date())}\n`);
    process.stdout.write(`Environment (for \`${PROGRAM} run\` in another shell):\n`);
    for (const [name, value] of Object.entries(settings)) process.stdout.write(`export ${name}='${value}'\n`);
    process.stdout.write('\nlocal.settings.json (for `func start`):\n');
    process.stdout.write(`${JSON.stringify({ IsEncrypted: false, Values: { FUNCTIONS_WORKER_RUNTIME: 'node', ...settings } }, null, 2)}\n`);
    process.stdout.write('\nPress Ctrl+C to stop.\n');
    await new Promise<void>((resolveStop) =>
      stop.signal.aborted ? resolveStop() : stop.signal.addEventListener('abort', () => resolveStop(), { once: true }),
    );
  } finally {
    await cloud.stop();
  }
  process.stdout.write('Local cloud stopped.\n');
  return EXIT.ok;
}

/** How large the demos' export files are: --files and --rows. */
interface DemoSize {
  readonly fileCount: number;
  readonly rowsPerFile: number;
}

/** The demos' scenario beside the size: two pending polls, a second apart. */
const DEMO_PACE = { retryAfterSeconds: 1, runningPolls: 2 } as const;

/**
 * The app's deps for a demo on `cloud`: its settings with `settings` on top, polling quickly, and
 * its managed-identity endpoint in process.env, over any there (the demo's cloud is the one to use).
 */
function demoDeps(cloud: LocalCloud, settings: Record<string, string>, options?: DepsOptions): Deps {
  const env = { ...cloud.settings, POLL_INITIAL_DELAY_SECONDS: '1', POLL_MAX_DELAY_SECONDS: '2', ...settings };
  applyIdentityEnv(env, { overwrite: true });
  loaded.settings = parseSettings(env);
  return createDeps(loaded.settings, options);
}

async function demo(values: Values): Promise<number> {
  const began = Date.now();
  // Every flag is checked before anything starts.
  const size: DemoSize = { fileCount: positiveInteger(values.files, '--files', 4), rowsPerFile: positiveInteger(values.rows, '--rows', 2000) };
  if (values.event !== undefined) return eventDemo(values, size);
  const request = startRequest(FLAG_CHECK_DEFAULTS, values);
  const stop = stopOnSignals();
  process.stdout.write('Starting the local cloud: Azurite, a managed-identity endpoint and the Partner Billing emulator...\n');
  let cloud: LocalCloud | undefined;
  try {
    cloud = await startLocalCloud({ scenario: { ...size, ...DEMO_PACE } });
    if (stop.signal.aborted) return stop.exitCode();
    process.stdout.write(
      `  Graph (emulated)      ${cloud.settings.GRAPH_BASE_URL}\n  Managed identity      ${cloud.settings.IDENTITY_ENDPOINT}\n  Azurite blob/queue/table on 127.0.0.1:${cloud.azurite.blobPort}/${cloud.azurite.queuePort}/${cloud.azurite.tablePort}\n\n`,
    );
    const deps = demoDeps(cloud, { EXPORT_CURRENCIES: isBilled(request) ? 'EUR' : request.currency });
    const asked = isBilled(request) ? `invoice ${request.invoiceId}` : `period '${request.billingPeriod}', currency ${request.currency}`;
    process.stdout.write(`Exporting ${KIND_DESCRIPTIONS[request.kind]}: ${asked}, attribute set '${request.attributeSet}'...\n`);
    const outcome = await exportOnce(deps, request, { work: true, signal: stop.signal, write: (line) => process.stdout.write(`${line}\n`) });
    if (outcome.stopped) {
      process.stdout.write('\nStopped before the export landed; the local cloud stops now.\n');
      return stop.exitCode();
    }
    const final = outcome.run;
    const seconds = ((Date.now() - began) / 1000).toFixed(1);
    if (final.state === 'noData') {
      process.stdout.write(`\nGraph has no data for this export (${final.errorCode}: ${final.errorMessage}); nothing landed.\n`);
      return EXIT.ok;
    }
    if (final.state !== 'succeeded') {
      process.stdout.write(`\nThe export failed: ${final.errorCode}: ${final.errorMessage}\n`);
      return EXIT.runFailed;
    }
    const summary = runSummary(final, deps);
    process.stdout.write(
      `\nLanded ${final.blobCount} file(s), ${formatBytes(final.bytesCopied)} of ${KIND_DESCRIPTIONS[final.kind]} for ${subjectOf(final)} (${final.attributeSet}) in ${seconds} s:\n` +
        `  folder     ${destinationOf(final)}\n` +
        `  manifest   ${summary.manifestUrl}\n` +
        `  run        ${final.runId} (${final.pollCount} polls, ledger table BillingExportRuns)\n` +
        `  parquet    ${deps.settings.outputFormats.includes('parquet') ? `${destinationOf(final)}parquet/ (one per file)` : 'off (OUTPUT_FORMATS=raw)'}\n`,
    );
    const data = await runDataOf(final, deps);
    if (data) process.stdout.write(`\n${formatTotalsTable(final, data)}\n`);
    process.stdout.write(`\nEverything ran on local emulators; they stop now. \`${PROGRAM} emulator\` keeps them running.\n`);
    return EXIT.ok;
  } finally {
    await cloud?.stop();
  }
}

/**
 * `demo --event signed|tampered --invoice ID`: the emulated Partner Center signs an invoice-ready
 * event (its own CA and signing certificate, served on loopback) and the app's event function
 * receives it as the Functions host hands it over (raw body bytes and headers). Signed: it starts
 * each kind of BILLED_EXPORT_KINDS, which are then worked until they end. Tampered: 401, nothing
 * started. The app trusts the emulated root here only: deployed, it trusts Node's root store.
 */
async function eventDemo(values: Values, size: DemoSize): Promise<number> {
  const event = values.event;
  if (event !== 'signed' && event !== 'tampered') throw new UsageError(`--event is '${String(event)}': expected signed or tampered`);
  for (const flag of ['kind', 'currency'] as const) {
    if (values[flag] !== undefined)
      throw new UsageError(`--${flag} does not go with --event: the event starts each kind of BILLED_EXPORT_KINDS for the invoice`);
  }
  const invoiceId = parseInvoiceId(values.invoice);
  if (values.invoice === undefined) throw new UsageError(`--event needs --invoice: the invoice the event announces, ${INVOICE_ID_FORM}`);
  if (invoiceId === undefined) throw new UsageError(`--invoice is '${String(values.invoice)}': expected ${INVOICE_ID_FORM}`);
  const stop = stopOnSignals();
  process.stdout.write('Starting the local cloud and an emulated Partner Center webhook sender...\n');
  let cloud: LocalCloud | undefined;
  const sender = await startPartnerCenterEvents();
  try {
    cloud = await startLocalCloud({ scenario: { ...size, ...DEMO_PACE } });
    if (stop.signal.aborted) return stop.exitCode();
    const deps = demoDeps(cloud, { EXPORT_CURRENCIES: 'EUR', WEBHOOK_CERTIFICATE_HOSTS: '127.0.0.1' }, { webhookTrustedRoots: [sender.rootCertificatePem] });
    await deps.ready(); // the ledger's table, which a refused event would not create
    const signed = sender.sign(sender.invoiceReadyEvent(invoiceId), { tamper: event === 'tampered' });
    process.stdout.write(`  certificate  ${sender.certificateUrl} (WEBHOOK_CERTIFICATE_HOSTS=127.0.0.1)\n`);
    process.stdout.write(
      `POST /api/events/partner-center: invoice-ready for ${invoiceId}, ${event === 'tampered' ? 'body changed after it was signed' : 'signed'}...\n`,
    );
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://127.0.0.1/api/events/partner-center',
      headers: signed.headers,
      body: { bytes: signed.body },
    });
    const answer = await receivePartnerCenterEvent(
      request,
      cliContext('partnerCenterEvents', (line) => process.stdout.write(`${line}\n`)),
      deps,
    );
    process.stdout.write(`  answered ${answer.status ?? 200} ${JSON.stringify(answer.jsonBody ?? null)}\n`);
    const runs = await deps.ledger.listRuns({ invoiceId });
    if (event === 'tampered') {
      const refused = answer.status === 401 && runs.length === 0;
      process.stdout.write(
        refused ? `\nRefused, and no export started for ${invoiceId}.\n` : `\nExpected 401 and no run; ${runs.length} run(s) exist for ${invoiceId}.\n`,
      );
      return refused ? EXIT.ok : EXIT.runFailed;
    }
    if ((answer.status ?? 200) !== 200 || runs.length === 0) {
      process.stdout.write(`\nThe event started no export.\n`);
      return EXIT.runFailed;
    }
    process.stdout.write(`\nThe event started ${runs.map((r) => r.kind).join(' and ')}; working them until they end...\n`);
    const result = await workRuns(
      deps,
      runs.map((r) => r.runId),
      (line) => process.stdout.write(`${line}\n`),
      { signal: stop.signal },
    );
    if (result.stopped) return stop.exitCode();
    const finals = runs.map(result.latest);
    process.stdout.write('\n');
    for (const final of finals) {
      const what =
        final.state === 'succeeded'
          ? `${final.blobCount ?? 0} file(s), ${formatBytes(final.bytesCopied)} in ${destinationOf(final)}`
          : `${final.errorCode ?? ''}: ${final.errorMessage ?? ''}`;
      process.stdout.write(`${final.kind} ${invoiceId}: ${final.state} - ${what}\n`);
    }
    process.stdout.write('Everything ran on local emulators; they stop now.\n');
    return finals.every((final) => isFinished(final) && !isFailure(final)) ? EXIT.ok : EXIT.runFailed;
  } finally {
    await cloud?.stop();
    await sender.close();
  }
}

function positiveInteger(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`${name} is '${String(value)}': expected a whole number, at least 1`);
  return Number(value);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT.usage);
    }
    if (error instanceof SettingsError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT.usage);
    }
    const failure = describeFailure(error, loaded.settings, loaded.env);
    process.stderr.write(`${failure.line}\n`);
    process.exit(failure.exitCode);
  },
);
