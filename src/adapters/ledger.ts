/**
 * The run ledger in Azure Table storage. Two kinds of rows in one table:
 *   PartitionKey 'run', RowKey <runId>:   one per run, the whole Run record;
 *   PartitionKey 'key', RowKey <key>:     one per export key, naming its latest run.
 * Every write is conditional on the ETag read before it (optimistic concurrency), so two
 * workers, duplicate deliveries or duplicate timer firings can never both advance a run or
 * both start an export for one key: the loser sees `LedgerConflictError` and stands down.
 * Every other storage failure leaves as StorageRequestError (./storageError.ts).
 */
import type { TableClient, TableEntity } from '@azure/data-tables';
import { exportKeyString, type ExportKey } from '../core/naming';
import { runMatches, type RunFilter } from '../core/requestFields';
import type { Run } from '../core/run';
import { runFromRecord } from '../core/runRecord';
import { LedgerConflictError, LedgerRowError } from '../errors';
import { callDeadline } from './deadline';
import { classified, failure } from './storageError';

const RUN_PARTITION = 'run';
// Key rows: exportKeyString, `unbilled-usage|2026-10|EUR|full` (unchanged from the first ledgers)
// or `billed-usage|G016907411|full`.
const KEY_PARTITION = 'key';

export interface StoredRun {
  readonly run: Run;
  readonly etag: string;
}

export interface Ledger {
  ensure(): Promise<void>;
  getRun(runId: string): Promise<StoredRun | undefined>;
  /**
   * The key's latest run, the key row's ETag (undefined when the key has never run), and when the
   * key was last claimed (its latest run may not be recorded yet).
   */
  latestForKey(key: ExportKey): Promise<{ readonly latest?: StoredRun; readonly keyEtag?: string; readonly claimedAt?: string }>;
  /**
   * Records a new run as the key's latest, if the key row is still as read (`keyEtag`, or
   * absent). Throws LedgerConflictError when another start won the race.
   */
  createRun(run: Run, keyEtag: string | undefined): Promise<StoredRun>;
  /** Replaces a run if it is unchanged since `etag`; returns the stored version. */
  saveRun(run: Run, etag: string): Promise<StoredRun>;
  /**
   * Every run matching the filter (month, state, kind, invoice), newest first. A row that is not
   * a run (LedgerRowError: another version wrote it, an operator edited it) is left out and
   * reported, so one bad row cannot stop the sweeper or the API from seeing the others.
   */
  listRuns(filter?: RunFilter): Promise<Run[]>;
}

export interface LedgerOptions {
  readonly callTimeoutMs?: number;
  /** Where a row left out of a listing is reported, one line naming the row and the problem. @default console.warn */
  readonly warn?: (line: string) => void;
}

export function createLedger(table: TableClient, options: LedgerOptions = {}): Ledger {
  // The adapter has no invocation to log through; the Functions host captures console output as log lines.
  const warn = options.warn ?? ((line: string) => console.warn(line));
  const deadline = () => callDeadline(options.callTimeoutMs);

  async function getRun(runId: string): Promise<StoredRun | undefined> {
    try {
      const entity = await table.getEntity<TableEntity>(RUN_PARTITION, runId, deadline());
      return { run: runFromEntity(entity), etag: entity.etag };
    } catch (thrown) {
      const { error, is } = failure(thrown, 404);
      if (is) return undefined;
      throw error;
    }
  }

  return {
    async ensure() {
      await classified(() => table.createTable(deadline()));
    },

    getRun,

    async latestForKey(key) {
      let keyEntity: { latestRunId?: string; claimedAt?: string; etag: string };
      try {
        keyEntity = await table.getEntity<{ latestRunId?: string; claimedAt?: string }>(KEY_PARTITION, exportKeyString(key), deadline());
      } catch (thrown) {
        const { error, is } = failure(thrown, 404);
        if (is) return {};
        throw error;
      }
      const latest = keyEntity.latestRunId ? await getRun(keyEntity.latestRunId) : undefined;
      return { keyEtag: keyEntity.etag, ...(keyEntity.claimedAt ? { claimedAt: keyEntity.claimedAt } : {}), ...(latest ? { latest } : {}) };
    },

    async createRun(run, keyEtag) {
      const keyRow = { partitionKey: KEY_PARTITION, rowKey: exportKeyString(run), latestRunId: run.runId, claimedAt: run.startedAt };
      try {
        if (keyEtag) await table.updateEntity(keyRow, 'Replace', { etag: keyEtag, ...deadline() });
        else await table.createEntity(keyRow, deadline());
      } catch (thrown) {
        const { error, is } = failure(thrown, 409, 412);
        if (is) throw new LedgerConflictError(`another run was started for ${exportKeyString(run)} at the same time`, { cause: error });
        throw error;
      }
      // The key row points at the run before the run row exists. Another start that reads the
      // key in between sees a fresh claim and stands down; a crash in between leaves a claim
      // that goes stale, which a later start treats as "never ran" (decideStart).
      const entity = runToEntity(run);
      const response = await classified(() => table.createEntity(entity, deadline()));
      return { run: runFromEntity(entity), etag: response.etag ?? '' };
    },

    async saveRun(run, etag) {
      try {
        const entity = runToEntity(run);
        const response = await table.updateEntity(entity, 'Replace', { etag, ...deadline() });
        // The run as stored: long strings cut to fit.
        return { run: runFromEntity(entity), etag: response.etag ?? '' };
      } catch (thrown) {
        const { error, is } = failure(thrown, 404, 412);
        if (is) throw new LedgerConflictError(`run ${run.runId} was changed by another worker`, { cause: error });
        throw error;
      }
    },

    async listRuns(filter = {}) {
      const runs: Run[] = [];
      await classified(async () => {
        for await (const entity of table.listEntities<TableEntity>({ queryOptions: { filter: `PartitionKey eq '${RUN_PARTITION}'` }, ...deadline() })) {
          let run: Run;
          try {
            run = runFromEntity(entity);
          } catch (thrown) {
            if (!(thrown instanceof LedgerRowError)) throw thrown;
            warn(`ledger row skipped while listing runs {"rowKey":${JSON.stringify(entity.rowKey)},"problem":${JSON.stringify(thrown.message)}}`);
            continue;
          }
          if (!runMatches(run, filter)) continue;
          runs.push(run);
        }
      });
      return runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    },
  };
}

/**
 * A Table property holds at most 64 KiB, and strings are stored as UTF-16: 32,768 UTF-16 code
 * units. A longer value (an error message quoting a service's answer) fails the whole write with
 * 400 PropertyValueTooLarge, which would leave the run unrecorded; it is cut to fit instead.
 */
export const MAX_TABLE_STRING_LENGTH = 32 * 1024;

/** Keeps the head of a string too long for a Table property and says that, and how much, was cut. */
export function fitTableProperty(value: string): string {
  if (value.length <= MAX_TABLE_STRING_LENGTH) return value;
  const note = ` [cut: the first ${MAX_TABLE_STRING_LENGTH - 64} of ${value.length} characters kept]`;
  let head = value.slice(0, MAX_TABLE_STRING_LENGTH - 64);
  // Do not leave half of a surrogate pair at the cut.
  if (/[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  return `${head}${note}`;
}

function runToEntity(run: Run): TableEntity {
  const entity: TableEntity = { partitionKey: RUN_PARTITION, rowKey: run.runId };
  for (const [name, value] of Object.entries(run)) {
    if (value !== undefined) entity[name] = typeof value === 'string' ? fitTableProperty(value) : value;
  }
  return entity;
}

/** The run in a row, checked (LedgerRowError names the row and the field); the RowKey is the run's id. */
function runFromEntity(entity: TableEntity): Run {
  return runFromRecord({ ...entity, runId: entity.rowKey }, `${RUN_PARTITION}/${entity.rowKey}`);
}
