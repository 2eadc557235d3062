/**
 * The data check's rows in the run ledger's table, one partition per run
 * (`datacheck|<runId>`), keys prefixed with the data version (the manifest eTag as a path
 * segment), so a new version starts clean:
 *   <version>|plan                 what manifest.json needs besides the files (no SAS)
 *   <version>|file|000042          one per landed file: its landed facts, `pending` or `done`, its result
 *   <version>|summary              the run's merged figures, once every file is done
 * A result can outgrow a Table property (64 KiB) or an entity (1 MiB): its JSON is cut into
 * pieces, the first few on the row, the rest on rows `<key>|part0001`, ... written before it,
 * so a row marked done always has every piece.
 */
import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';
import { eTagSegment } from '../core/naming';
import { callDeadline } from './deadline';
import { classified, failure } from './storageError';

/** UTF-16 code units per piece: under a string property's 32 K. */
const PIECE_CHARS = 30_000;
/** Pieces per row: 8 × 60 KB stays under an entity's 1 MiB. */
const PIECES_PER_ROW = 8;
/** Rows per entity group transaction (the service's limit). */
const BATCH_ROWS = 100;

export interface PlannedFile {
  readonly index: number;
  readonly name: string;
  readonly partitionValue: string;
  readonly byteCount: number;
  readonly contentMD5?: string;
  /** The landed copy's ETag when it was planned: a copy replaced since is checked again. */
  readonly landedEtag: string;
}

export interface FileCheckRow extends PlannedFile {
  readonly state: 'pending' | 'done';
  /** Transient failures met checking it, so far. */
  readonly attempts: number;
  /** The check's outcome (../adapters/dataFile.ts DataFileOutcome), once done. */
  readonly result?: unknown;
}

export interface FileChecks {
  readPlan(runId: string, eTag: string): Promise<unknown>;
  savePlan(runId: string, eTag: string, plan: unknown): Promise<void>;
  /** Every file row of the version, with results, in index order. */
  listFiles(runId: string, eTag: string): Promise<FileCheckRow[]>;
  getFile(runId: string, eTag: string, index: number): Promise<FileCheckRow | undefined>;
  /** Writes these files' rows as pending (new rows, or rows to check again). */
  planFiles(runId: string, eTag: string, files: readonly PlannedFile[]): Promise<void>;
  /** `at`: when it was done, the run's check progress (lastProgressAt). */
  markDone(runId: string, eTag: string, file: PlannedFile, result: unknown, at: Date): Promise<void>;
  noteAttempt(runId: string, eTag: string, index: number, attempts: number, at: Date): Promise<void>;
  /** When a file of the version was last done or last met a transient failure (ISO 8601); undefined if none has. */
  lastProgressAt(runId: string, eTag: string): Promise<string | undefined>;
  /** Whether any file of the version is still pending (one small query). */
  anyPending(runId: string, eTag: string): Promise<boolean>;
  saveSummary(runId: string, eTag: string, summary: unknown): Promise<void>;
  readSummary(runId: string, eTag: string): Promise<unknown>;
}

const partitionOf = (runId: string) => `datacheck|${runId}`;
const versionOf = (eTag: string) => eTagSegment(eTag);
const fileKey = (eTag: string, index: number) => `${versionOf(eTag)}|file|${String(index).padStart(6, '0')}`;
const FILE_KEY = /\|file\|\d{6}$/;

export function createFileChecks(table: TableClient, options: { readonly callTimeoutMs?: number } = {}): FileChecks {
  const deadline = () => callDeadline(options.callTimeoutMs);

  /** The JSON of `value` as properties of the row, with rows for the pieces that do not fit on it. */
  async function withJson(partitionKey: string, rowKey: string, value: unknown): Promise<Record<string, unknown>> {
    const pieces = cutIntoPieces(JSON.stringify(value));
    const groups: string[][] = [];
    for (let at = 0; at < pieces.length; at += PIECES_PER_ROW) groups.push(pieces.slice(at, at + PIECES_PER_ROW));
    for (let part = 1; part < groups.length; part++) {
      await table.upsertEntity({ partitionKey, rowKey: `${rowKey}|part${String(part).padStart(4, '0')}`, ...piecesOf(groups[part]!) }, 'Replace', deadline());
    }
    return { jsonRows: groups.length, ...piecesOf(groups[0] ?? []) };
  }
  async function jsonOf(entity: TableEntity, extraRows: ReadonlyMap<string, TableEntity> | undefined): Promise<unknown> {
    const rows = Number(entity.jsonRows ?? 0);
    if (!rows) return undefined;
    let json = textOfPieces(entity);
    for (let part = 1; part < rows; part++) {
      const key = `${entity.rowKey}|part${String(part).padStart(4, '0')}`;
      const row = extraRows?.get(key) ?? (await table.getEntity<TableEntity>(entity.partitionKey, key, deadline()));
      json += textOfPieces(row);
    }
    return JSON.parse(json);
  }
  async function getRow(partitionKey: string, rowKey: string): Promise<TableEntity | undefined> {
    try {
      return await table.getEntity<TableEntity>(partitionKey, rowKey, deadline());
    } catch (thrown) {
      const { error, is } = failure(thrown, 404);
      if (is) return undefined;
      throw error;
    }
  }
  const fileOf = async (entity: TableEntity, extraRows?: ReadonlyMap<string, TableEntity>): Promise<FileCheckRow> => ({
    index: Number(entity.index),
    name: textProperty(entity.name),
    partitionValue: textProperty(entity.partitionValue),
    byteCount: Number(entity.byteCount),
    ...(typeof entity.contentMD5 === 'string' && entity.contentMD5 ? { contentMD5: entity.contentMD5 } : {}),
    landedEtag: textProperty(entity.landedEtag),
    state: entity.state === 'done' ? 'done' : 'pending',
    attempts: Number(entity.attempts ?? 0),
    ...(entity.state === 'done' ? { result: await jsonOf(entity, extraRows) } : {}),
  });
  const plannedProperties = (file: PlannedFile) => ({
    index: file.index,
    name: file.name,
    partitionValue: file.partitionValue,
    byteCount: file.byteCount,
    contentMD5: file.contentMD5 ?? '',
    landedEtag: file.landedEtag,
  });

  return {
    readPlan: (runId, eTag) =>
      classified(async () => {
        const row = await getRow(partitionOf(runId), `${versionOf(eTag)}|plan`);
        return row ? jsonOf(row, undefined) : undefined;
      }),

    savePlan: (runId, eTag, plan) =>
      classified(async () => {
        const partitionKey = partitionOf(runId);
        const rowKey = `${versionOf(eTag)}|plan`;
        await table.upsertEntity({ partitionKey, rowKey, ...(await withJson(partitionKey, rowKey, plan)) }, 'Replace', deadline());
      }),

    listFiles: (runId, eTag) =>
      classified(async () => {
        const prefix = `${versionOf(eTag)}|file|`;
        const rows = new Map<string, TableEntity>();
        const filter = `PartitionKey eq '${partitionOf(runId)}' and RowKey ge '${prefix}' and RowKey lt '${prefix}~'`;
        for await (const entity of table.listEntities<TableEntity>({ queryOptions: { filter }, ...deadline() })) rows.set(entity.rowKey, entity);
        const files: FileCheckRow[] = [];
        for (const [key, entity] of rows) if (FILE_KEY.test(key)) files.push(await fileOf(entity, rows));
        return files.sort((a, b) => a.index - b.index);
      }),

    getFile: (runId, eTag, index) =>
      classified(async () => {
        const row = await getRow(partitionOf(runId), fileKey(eTag, index));
        return row ? fileOf(row) : undefined;
      }),

    planFiles: (runId, eTag, files) =>
      classified(async () => {
        const partitionKey = partitionOf(runId);
        for (let at = 0; at < files.length; at += BATCH_ROWS) {
          const actions: TransactionAction[] = files
            .slice(at, at + BATCH_ROWS)
            .map((file) => [
              'upsert',
              { partitionKey, rowKey: fileKey(eTag, file.index), ...plannedProperties(file), state: 'pending', attempts: 0, jsonRows: 0 },
              'Replace',
            ]);
          await table.submitTransaction(actions, deadline());
        }
      }),

    markDone: (runId, eTag, file, result, at) =>
      classified(async () => {
        const partitionKey = partitionOf(runId);
        const rowKey = fileKey(eTag, file.index);
        await table.upsertEntity(
          {
            partitionKey,
            rowKey,
            ...plannedProperties(file),
            state: 'done',
            progressAt: at.toISOString(),
            ...(await withJson(partitionKey, rowKey, result)),
          },
          'Merge',
          deadline(),
        );
      }),

    noteAttempt: (runId, eTag, index, attempts, at) =>
      classified(async () => {
        await table.upsertEntity(
          { partitionKey: partitionOf(runId), rowKey: fileKey(eTag, index), attempts, progressAt: at.toISOString() },
          'Merge',
          deadline(),
        );
      }),

    lastProgressAt: (runId, eTag) =>
      classified(async () => {
        const prefix = `${versionOf(eTag)}|file|`;
        const filter = `PartitionKey eq '${partitionOf(runId)}' and RowKey ge '${prefix}' and RowKey lt '${prefix}~'`;
        let latest: string | undefined;
        for await (const entity of table.listEntities<TableEntity>({ queryOptions: { filter, select: ['progressAt'] }, ...deadline() })) {
          const at = entity.progressAt;
          // ISO 8601 in UTC: the text's order is the time's.
          if (typeof at === 'string' && at && (latest === undefined || at > latest)) latest = at;
        }
        return latest;
      }),

    anyPending: (runId, eTag) =>
      classified(async () => {
        const prefix = `${versionOf(eTag)}|file|`;
        const filter = `PartitionKey eq '${partitionOf(runId)}' and RowKey ge '${prefix}' and RowKey lt '${prefix}~' and state eq 'pending'`;
        // The service may answer a filtered query with an empty page and a continuation.
        for await (const page of table.listEntities({ queryOptions: { filter, select: ['RowKey'] }, ...deadline() }).byPage({ maxPageSize: 1 }))
          if (page.length > 0) return true;
        return false;
      }),

    saveSummary: (runId, eTag, summary) =>
      classified(async () => {
        const partitionKey = partitionOf(runId);
        const rowKey = `${versionOf(eTag)}|summary`;
        await table.upsertEntity({ partitionKey, rowKey, ...(await withJson(partitionKey, rowKey, summary)) }, 'Replace', deadline());
      }),

    readSummary: (runId, eTag) =>
      classified(async () => {
        const row = await getRow(partitionOf(runId), `${versionOf(eTag)}|summary`);
        return row ? jsonOf(row, undefined) : undefined;
      }),
  };
}

/**
 * A text in pieces of at most `size` UTF-16 code units, never between the halves of a surrogate
 * pair (an emoji in a customer's name), so that each piece is a valid string on its own.
 */
export function cutIntoPieces(text: string, size = PIECE_CHARS): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(at + size, text.length);
    if (end < text.length && /[\ud800-\udbff]/.test(text[end - 1]!)) end--;
    pieces.push(text.slice(at, end));
    at = end;
  }
  return pieces;
}

function piecesOf(pieces: readonly string[]): Record<string, string | number> {
  return { pieces: pieces.length, ...Object.fromEntries(pieces.map((piece, i) => [`json${i}`, piece])) };
}

function textOfPieces(entity: TableEntity): string {
  let text = '';
  for (let i = 0; i < Number(entity.pieces ?? 0); i++) text += textProperty(entity[`json${i}`]);
  return text;
}

const textProperty = (value: unknown): string => (typeof value === 'string' ? value : '');
