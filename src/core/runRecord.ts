/**
 * A run as a flat record of named, typed fields (a ledger row): the one list of a run's fields,
 * and the check that a record read back is a run. A row another version wrote wrongly, or an
 * operator edited, fails here with the row and the field named, instead of travelling on as a
 * run it is not.
 */
import { LedgerRowError } from '../errors';
import { EXPORT_KINDS, isBilled, isBilledKind, isExportKind } from './naming';
import { RUN_STATES, RUN_TRIGGERS, destinationOf, type BilledRun, type Run, type UnbilledRun } from './run';

type FieldKind = 'string' | 'number' | readonly string[];
/** Which runs have the field: every run, or only runs of unbilled or of billed kinds. */
type Variant = 'all' | 'unbilled' | 'billed';

/** Every field a Run can have, its type, which runs have it, and whether they all do. */
const RUN_FIELDS = {
  runId: { kind: 'string', required: true, of: 'all' },
  kind: { kind: EXPORT_KINDS, required: true, of: 'all' },
  billingMonth: { kind: 'string', required: true, of: 'unbilled' },
  currency: { kind: 'string', required: true, of: 'unbilled' },
  billingPeriod: { kind: ['current', 'last'], required: true, of: 'unbilled' },
  invoiceId: { kind: 'string', required: true, of: 'billed' },
  attributeSet: { kind: ['full', 'basic'], required: true, of: 'all' },
  trigger: { kind: RUN_TRIGGERS, required: true, of: 'all' },
  state: { kind: RUN_STATES, required: true, of: 'all' },
  seq: { kind: 'number', required: true, of: 'all' },
  pollCount: { kind: 'number', required: true, of: 'all' },
  startedAt: { kind: 'string', required: true, of: 'all' },
  updatedAt: { kind: 'string', required: true, of: 'all' },
  bytesCopied: { kind: 'number', required: true, of: 'all' },
  finishedAt: { kind: 'string', required: false, of: 'all' },
  operationUrl: { kind: 'string', required: false, of: 'all' },
  operationId: { kind: 'string', required: false, of: 'all' },
  manifestETag: { kind: 'string', required: false, of: 'all' },
  lastLandedETag: { kind: 'string', required: false, of: 'all' },
  lastLandedContainer: { kind: 'string', required: false, of: 'all' },
  partnerTenantId: { kind: 'string', required: false, of: 'all' },
  blobCount: { kind: 'number', required: false, of: 'all' },
  landingAttempts: { kind: 'number', required: false, of: 'all' },
  copyWaits: { kind: 'number', required: false, of: 'all' },
  checksSentAt: { kind: 'string', required: false, of: 'all' },
  restarts: { kind: 'number', required: false, of: 'all' },
  startFailures: { kind: 'number', required: false, of: 'all' },
  uncertainPosts: { kind: 'number', required: false, of: 'all' },
  nextActionAt: { kind: 'string', required: false, of: 'all' },
  revivals: { kind: 'number', required: false, of: 'all' },
  revivedAtMark: { kind: 'string', required: false, of: 'all' },
  landingClaimId: { kind: 'string', required: false, of: 'all' },
  landingClaimedUntil: { kind: 'string', required: false, of: 'all' },
  destinationContainer: { kind: 'string', required: false, of: 'all' },
  destinationFolder: { kind: 'string', required: false, of: 'all' },
  errorCode: { kind: 'string', required: false, of: 'all' },
  errorMessage: { kind: 'string', required: false, of: 'all' },
  lastErrorCode: { kind: 'string', required: false, of: 'all' },
  lastErrorMessage: { kind: 'string', required: false, of: 'all' },
  lastErrorCount: { kind: 'number', required: false, of: 'all' },
  lastErrorAt: { kind: 'string', required: false, of: 'all' },
  malformedAnswers: { kind: 'number', required: false, of: 'all' },
} as const satisfies {
  readonly [K in keyof Required<UnbilledRun> | keyof Required<BilledRun>]: {
    readonly kind: FieldKind;
    readonly required: K extends keyof UnbilledRun & keyof BilledRun ? (undefined extends Run[K] ? false : true) : true;
    readonly of: K extends keyof UnbilledRun & keyof BilledRun ? 'all' : K extends keyof UnbilledRun ? 'unbilled' : 'billed';
  };
};

/**
 * Rows written before the destination was stored as parts hold `destination` as
 * `{container}/{folder}/`: a container name has no '/', so the first one splits it.
 */
function migrated(record: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const legacy = record.destination;
  if (typeof legacy !== 'string' || record.destinationContainer !== undefined || record.destinationFolder !== undefined) return record;
  const slash = legacy.indexOf('/');
  if (slash <= 0) return record;
  return { ...record, destinationContainer: legacy.slice(0, slash), destinationFolder: legacy.slice(slash + 1) };
}

/**
 * The run in a record read back from storage, checked field by field; fields the record has
 * beyond a run's (a newer version's, or another kind's) are left out. `row` names the record in errors.
 */
export function runFromRecord(stored: Readonly<Record<string, unknown>>, row: string): Run {
  const record = migrated(stored);
  const run: Record<string, unknown> = {};
  const problems: string[] = [];
  const kind = record.kind;
  const variant: Variant | undefined = isExportKind(kind) ? (isBilledKind(kind) ? 'billed' : 'unbilled') : undefined;
  for (const [name, { kind: type, required, of }] of Object.entries(RUN_FIELDS) as [string, { kind: FieldKind; required: boolean; of: Variant }][]) {
    // A field of the other variant is not this run's (and a row of an unknown kind is reported by 'kind').
    if (of !== 'all' && of !== variant) continue;
    const value = record[name];
    if (value === undefined || value === null) {
      if (required) problems.push(`'${name}' is missing`);
      continue;
    }
    const fits =
      type === 'string'
        ? typeof value === 'string'
        : type === 'number'
          ? typeof value === 'number' && Number.isFinite(value)
          : typeof value === 'string' && type.includes(value);
    if (!fits) {
      const expected = type === 'string' ? 'a string' : type === 'number' ? 'a number' : `one of ${type.map((k) => `'${k}'`).join(', ')}`;
      problems.push(`'${name}' is ${JSON.stringify(value)?.slice(0, 60) ?? typeof value}: expected ${expected}`);
      continue;
    }
    run[name] = value;
  }
  if (problems.length > 0) throw new LedgerRowError(`ledger row ${row} is not a run: ${problems.join('; ')}`);
  return run as unknown as Run;
}

/**
 * What every line and event about a run says of it: the log line (../runLog.ts) and the
 * telemetry dimensions (../telemetry.ts) both derive from this one list. Absent values are left out.
 */
export function runFacts(run: Run): Record<string, string | number> {
  const facts: Record<string, string | number | undefined> = {
    runId: run.runId,
    operationId: run.operationId,
    kind: run.kind,
    ...(isBilled(run) ? { invoiceId: run.invoiceId } : { billingMonth: run.billingMonth, currency: run.currency }),
    attributeSet: run.attributeSet,
    ...(isBilled(run) ? {} : { billingPeriod: run.billingPeriod }),
    state: run.state,
    pollCount: run.pollCount,
    bytesCopied: run.bytesCopied,
    blobCount: run.blobCount,
    destination: destinationOf(run),
    errorCode: run.errorCode,
    reason: run.errorMessage,
  };
  return Object.fromEntries(Object.entries(facts).filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== ''));
}
