/**
 * The CLI's commands as data: what each does, its flags (for util.parseArgs, strict) with their
 * defaults, and its exit codes; the help text is rendered from this, so it cannot drift.
 */
import { BILLED_KINDS, EXPORT_KINDS } from '../src/core/naming';
import { MAX_BACKFILL_INVOICES } from '../src/core/policy';
import { RUN_STATES } from '../src/core/requestFields';

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** How the value is written in help, e.g. `YYYY-MM`. */
  readonly value?: string;
  readonly help: string;
}

export type CommandName = 'start' | 'worker' | 'run' | 'status' | 'backfill' | 'report' | 'emulator' | 'demo';

export interface CommandSpec {
  readonly summary: string;
  readonly description: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly exitCodes: readonly string[];
}

const JSON_FLAG: FlagSpec = { type: 'boolean', help: 'print one JSON object as the last line of standard output' };
const KIND_FLAGS = {
  kind: { type: 'string', value: 'KIND', help: `${EXPORT_KINDS.join('|')} (default: the first of EXPORT_KINDS, else unbilled-usage)` },
  invoice: { type: 'string', value: 'ID', help: 'the invoice a billed kind exports, such as G016907411 (billed kinds only, and required for them)' },
} as const satisfies Record<string, FlagSpec>;
const START_FLAGS = {
  ...KIND_FLAGS,
  currency: { type: 'string', value: 'CODE', help: 'ISO 4217 currency code (default: the first of EXPORT_CURRENCIES)' },
  period: { type: 'string', value: 'current|last', help: 'billing period (default: EXPORT_BILLING_PERIOD, else last)' },
  'attribute-set': { type: 'string', value: 'full|basic', help: 'attribute set (default: EXPORT_ATTRIBUTE_SET, else full)' },
  force: { type: 'boolean', help: 're-export a month or invoice that already landed (never one still running); the same data again ends as noNewData' },
} as const satisfies Record<string, FlagSpec>;

const SERVICE_DOWN = '3  a service (storage, Graph, the identity endpoint) could not be reached or refused, or an internal error';
const USAGE_CODE = '2  bad usage or bad settings';
const STOPPED = '130/143  stopped by SIGINT/SIGTERM';

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  start: {
    summary: 'start one export, as the timer does, then exit',
    description:
      'Starts one export (what the timer does for an unbilled kind, or an invoice-ready event for a billed kind), sends its first poll message and exits; `worker` then polls and lands it. Billed kinds take --invoice and no --currency or --period.',
    flags: { ...START_FLAGS, json: JSON_FLAG },
    exitCodes: ['0  started (or skipped: the month or invoice is running or has landed)', '1  the run failed at once', USAGE_CODE, SERVICE_DOWN],
  },
  worker: {
    summary: 'work the poll queue like the Functions host, until no run is in progress',
    description:
      "Runs the queue function against the real queue the way the Functions host does (host.json's batchSize, visibilityTimeout, maxDequeueCount), leasing each message and renewing the lease while it works, until no run is in progress. SIGINT/SIGTERM: it takes no more messages, makes the ones in hand visible again at once and exits.",
    flags: {
      'lease-seconds': { type: 'string', value: 'N', help: 'how long a received message stays hidden, renewed every third of it (default: 30)' },
      json: JSON_FLAG,
    },
    exitCodes: ['0  every run it worked on succeeded', '1  a run it worked on failed', USAGE_CODE, SERVICE_DOWN, STOPPED],
  },
  run: {
    summary: 'start + worker for one export; exit 0 if it landed',
    description: 'Starts one export and works its poll messages until it has landed or failed.',
    flags: { ...START_FLAGS, json: JSON_FLAG },
    exitCodes: ['0  the run succeeded, or ended as noData or noNewData', '1  the run failed (or was not started)', USAGE_CODE, SERVICE_DOWN, STOPPED],
  },
  status: {
    summary: 'the run history from the ledger',
    description: `Lists the runs in the ledger, newest first, filtered as GET /api/runs filters them. States: ${RUN_STATES.join(', ')}.`,
    flags: {
      month: { type: 'string', value: 'YYYY-MM', help: 'only runs of this billing month' },
      state: { type: 'string', value: 'STATE', help: `only runs in this state: ${RUN_STATES.join(', ')}` },
      kind: { type: 'string', value: 'KIND', help: `only runs of this kind: ${EXPORT_KINDS.join(', ')}` },
      invoice: { type: 'string', value: 'ID', help: 'only runs of this invoice' },
      json: JSON_FLAG,
    },
    exitCodes: ['0  listed (also when there are none)', USAGE_CODE, SERVICE_DOWN],
  },
  backfill: {
    summary: 'export past invoices: one run per invoice and billed kind',
    description: `Starts one export per invoice and billed kind, as POST /api/backfill does: at most ${MAX_BACKFILL_INVOICES} invoices, started at a bounded pace (Graph throttles), each skipped if it already landed (unless --force); then works the poll queue until every run has ended. Progress on stderr, a closing summary on stdout. An invoice Graph cannot export ends as failed with Graph's reason; the others go on.`,
    flags: {
      invoices: { type: 'string', value: 'G1,G2,...', help: `comma-separated invoice ids, 1-${MAX_BACKFILL_INVOICES} (required)` },
      kinds: { type: 'string', value: 'KIND,...', help: `comma-separated billed kinds: ${BILLED_KINDS.join(', ')} (default: BILLED_EXPORT_KINDS, else both)` },
      'attribute-set': { type: 'string', value: 'full|basic', help: 'attribute set (default: EXPORT_ATTRIBUTE_SET, else full)' },
      force: { type: 'boolean', help: 'export invoices that already landed again (the same data ends as noNewData)' },
      json: JSON_FLAG,
    },
    exitCodes: [
      '0  every run landed, or ended as noData or noNewData, or was skipped as landed',
      '1  a run failed (or could not be started)',
      USAGE_CODE,
      SERVICE_DOWN,
      STOPPED,
    ],
  },
  report: {
    summary: "a landed run's per-customer totals, as the data check summed them",
    description:
      "Prints the per-customer totals of a landed run (rows and each summed cost column per customer and currency, exact decimals) and the data check's problems, as manifest.json records them. Without a flag: the latest run that landed.",
    flags: {
      run: { type: 'string', value: 'ID', help: 'the run (its id, from `status`)' },
      month: { type: 'string', value: 'YYYY-MM', help: 'every run of this billing month that landed (the latest per kind, currency and attribute set)' },
      invoice: { type: 'string', value: 'ID', help: 'every run of this invoice that landed (the latest per kind and attribute set)' },
      json: JSON_FLAG,
    },
    exitCodes: ['0  printed', '1  no landed run matches (or it has no checked figures)', USAGE_CODE, SERVICE_DOWN],
  },
  emulator: {
    summary: 'run Azurite, the identity endpoint and the billing emulator; print settings',
    description:
      'Starts the local cloud (Azurite, a managed-identity endpoint, the Partner Billing emulator) and prints the settings that point the app or `func start` at it. Runs until SIGINT/SIGTERM, then stops everything it started.',
    flags: {},
    exitCodes: ['0  stopped by SIGINT/SIGTERM, everything it started stopped', SERVICE_DOWN],
  },
  demo: {
    summary: 'the emulators plus `run`, with progress and a summary',
    description:
      "Starts the local cloud, exports and lands one month (or, with a billed --kind, one invoice: the emulator's newest EUR invoice is G000000001) from it, prints a summary and stops the local cloud again.",
    flags: {
      ...KIND_FLAGS,
      currency: { type: 'string', value: 'CODE', help: 'ISO 4217 currency code (default: EUR)' },
      files: {
        type: 'string',
        value: 'N',
        help: 'files in the emulated export (default: 4; a reconciliation kind: at most N, holding the line items of N x --rows usage rows)',
      },
      rows: { type: 'string', value: 'N', help: 'usage rows per file (default: 2000)' },
      event: {
        type: 'string',
        value: 'signed|tampered',
        help: "with --invoice (no --kind): an invoice-ready event for it, signed by the emulated Partner Center, to the app's event function, which starts each kind of BILLED_EXPORT_KINDS; tampered: the body changed after signing, refused with 401",
      },
    },
    exitCodes: [
      '0  the export landed (or ended as noData); with --event, every export the event started landed, or the tampered event was refused and started nothing',
      '1  the export failed, or the event was not answered as expected',
      USAGE_CODE,
      SERVICE_DOWN,
      STOPPED,
    ],
  },
};

export const PROGRAM = 'npm run -s cli --';

export function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.prototype.hasOwnProperty.call(COMMANDS, name);
}

/** `--currency CODE` etc., for help and for "its flags are" in usage errors. */
export function flagList(command: CommandName): string {
  const names = Object.keys(COMMANDS[command].flags).map((name) => `--${name}`);
  return names.length > 0 ? `${names.join(', ')}, --help` : '--help only';
}

export function commandHelp(command: CommandName): string {
  const spec = COMMANDS[command];
  const flags: Array<[string, string]> = Object.entries(spec.flags).map(([name, flag]) => [`--${name}${flag.value ? ` ${flag.value}` : ''}`, flag.help]);
  flags.push(['-h, --help', 'show this help']);
  const width = Math.max(...flags.map(([left]) => left.length));
  return [
    `Usage: ${PROGRAM} ${command}${Object.keys(spec.flags).length ? ' [flags]' : ''}`,
    '',
    wrap(spec.description),
    '',
    'Flags:',
    ...flags.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`),
    '',
    'Exit codes:',
    ...spec.exitCodes.map((line) => `  ${line}`),
    '',
    'Settings come from the environment, over the Values of local.settings.json (names are case-insensitive).',
  ].join('\n');
}

export function overviewHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const width = Math.max(...names.map((name) => name.length));
  return [
    `Usage: ${PROGRAM} <command> [flags]`,
    '',
    'Commands:',
    ...names.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name].summary}`),
    '',
    `${PROGRAM} <command> --help (or ${PROGRAM} help <command>) shows a command's flags, defaults and exit codes.`,
    '',
    'Exit codes: 0 success; 1 a run failed; 2 bad usage or bad settings; 3 a service could not be',
    'reached or refused, or an internal error; 130/143 stopped by SIGINT/SIGTERM.',
    '',
    'Settings come from the environment, over the Values of local.settings.json (names are case-insensitive).',
  ].join('\n');
}

function wrap(text: string, width = 96): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}
