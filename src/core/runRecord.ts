/**
 * A run as a flat record of named, typed fields (a ledger row): the one list of a run's fields,
 * and the check that a record read back is a run. A row another version wrote wrongly, or an
 * operator edited, fails here with the row and the field named, instead of travelling on as a
 * run it is not.
 */
import { LedgerRowError } from '../errors';
import type { Run } from './run';

type FieldKind = 'string' | 'number' | readonly string[];

/** Every field of a Run, its type, and whether every run has it. */
const RUN_FIELDS = {
  runId: { kind: 'string', required: true },
  kind: { kind: ['unbilled-usage'], required: true },
  billingMonth: { kind: 'string', required: true },
  currency: { kind: 'string', required: true },
  attributeSet: { kind: ['full', 'basic'], required: true },
  billingPeriod: { kind: ['current', 'last'], required: true },
  trigger: { kind: ['timer', 'cli', 'http'], required: true },
  state: { kind: ['starting', 'polling', 'copying', 'succeeded', 'failed'], required: true },
  seq: { kind: 'number', required: true },
  pollCount: { kind: 'number', required: true },
  startedAt: { kind: 'string', required: true },
  updatedAt: { kind: 'string', required: true },
  bytesCopied: { kind: 'number', required: true },
  finishedAt: { kind: 'string', required: false },
  operationUrl: { kind: 'string', required: false },
  operationId: { kind: 'string', required: false },
  manifestETag: { kind: 'string', required: false },
  partnerTenantId: { kind: 'string', required: false },
  blobCount: { kind: 'number', required: false },
  landingAttempts: { kind: 'number', required: false },
  copyWaits: { kind: 'number', required: false },
  restarts: { kind: 'number', required: false },
  startFailures: { kind: 'number', required: false },
  uncertainPosts: { kind: 'number', required: false },
  nextActionAt: { kind: 'string', required: false },
  revivals: { kind: 'number', required: false },
  revivedAtMark: { kind: 'string', required: false },
  landingClaimId: { kind: 'string', required: false },
  landingClaimedUntil: { kind: 'string', required: false },
  destination: { kind: 'string', required: false },
  errorCode: { kind: 'string', required: false },
  errorMessage: { kind: 'string', required: false },
  lastErrorCode: { kind: 'string', required: false },
  lastErrorMessage: { kind: 'string', required: false },
  lastErrorCount: { kind: 'number', required: false },
  lastErrorAt: { kind: 'string', required: false },
  malformedAnswers: { kind: 'number', required: false },
} as const satisfies { readonly [K in keyof Required<Run>]: { readonly kind: FieldKind; readonly required: undefined extends Run[K] ? false : true } };

export const RUN_FIELD_NAMES = Object.keys(RUN_FIELDS) as readonly (keyof Run)[];

/**
 * The run in a record read back from storage, checked field by field; fields the record has
 * beyond a run's (a newer version's) are left out. `row` names the record in errors.
 */
export function runFromRecord(record: Readonly<Record<string, unknown>>, row: string): Run {
  const run: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, { kind, required }] of Object.entries(RUN_FIELDS) as [string, { kind: FieldKind; required: boolean }][]) {
    const value = record[name];
    if (value === undefined || value === null) {
      if (required) problems.push(`'${name}' is missing`);
      continue;
    }
    const fits = kind === 'string' ? typeof value === 'string' : kind === 'number' ? typeof value === 'number' && Number.isFinite(value) : typeof value === 'string' && kind.includes(value);
    if (!fits) {
      const expected = kind === 'string' ? 'a string' : kind === 'number' ? 'a number' : `one of ${kind.map((k) => `'${k}'`).join(', ')}`;
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
  };
  return Object.fromEntries(Object.entries(facts).filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== ''));
}
