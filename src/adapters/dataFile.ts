/**
 * Reading a landed export file back from the destination as a stream (never whole in memory):
 * its bytes counted and hashed against its source's length and MD5, gunzipped, split into
 * lines, each line checked (../core/dataCheck.ts) and, when Parquet is wanted, its typed row
 * handed to the Parquet writer (./parquetFile.ts, loaded on first use: it holds the Parquet
 * library), which uploads `parquet/<name>.parquet` beside the file as it goes. A file whose
 * bytes are not its source's, that does not decompress, or a line that is not JSON fails with
 * DataFileError naming the file (and line); a failed Parquet upload commits nothing. A value its
 * column cannot type is a problem of its row, as without Parquet: the raw file keeps it, the
 * Parquet cell is null and the check names file, line and column.
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { DataFileError, StorageRequestError } from '../errors';
import { startFileCheck, type FileCheckResult } from '../core/dataCheck';
import type { CellValue } from '../core/dataRow';
import type { FamilySchema } from '../core/dataSchema';
import { parquetPathFor } from '../core/dataOutputs';
import { STORAGE_CALL_TIMEOUT_MS, callDeadline } from './deadline';
import { classified, storageErrorFrom } from './storageError';

/** A file is read and converted within one invocation, well inside the 30-minute function timeout. */
export const DATA_FILE_TIMEOUT_MS = 25 * 60_000;
/** A line longer than this is not a billing row: refused instead of buffered without end. */
export const MAX_LINE_CHARS = 4 * 1024 * 1024;

export interface ParquetWritten {
  /** Relative to the run's folder: `parquet/<name>.parquet`. */
  readonly name: string;
  readonly rowCount: number;
  readonly byteCount: number;
}

export interface DataFileOutcome {
  readonly check: FileCheckResult;
  readonly parquet?: ParquetWritten;
}

/** What the landed file's bytes must be: its source's length and, when the source has one, MD5 (base64). */
export interface SourceBytes {
  readonly byteCount: number;
  readonly contentMD5?: string;
}

export interface DataFiles {
  /**
   * Checks `folder` + `name` (and writes its Parquet copy when `parquet`): its bytes against
   * `source`, its lines as data; throws DataFileError or StorageRequestError.
   */
  checkFile(request: {
    readonly folder: string;
    readonly name: string;
    readonly schema: FamilySchema;
    readonly parquet: boolean;
    readonly source: SourceBytes;
  }): Promise<DataFileOutcome>;
}

/**
 * `timeoutMs`: the whole file's deadline; `idleTimeoutMs`: how long the download may send nothing
 * before it counts as stalled (a connection that hangs mid-body), default STORAGE_CALL_TIMEOUT_MS.
 */
export function createDataFiles(container: ContainerClient, options: { readonly timeoutMs?: number; readonly idleTimeoutMs?: number } = {}): DataFiles {
  return {
    async checkFile(request) {
      const timeoutMs = options.timeoutMs ?? DATA_FILE_TIMEOUT_MS;
      const { abortSignal } = callDeadline(timeoutMs);
      try {
        return await checkWithin(request, abortSignal);
      } catch (thrown) {
        // The whole file's deadline, not a hung call: the same file would take as long again.
        if (abortSignal.aborted && thrown instanceof StorageRequestError) {
          throw new StorageRequestError(
            `'${request.name}': its check did not finish within ${timeoutMs >= 60_000 ? `${Math.round(timeoutMs / 60_000)} minutes` : `${timeoutMs / 1000} s`}; a file this large is beyond one invocation (OUTPUT_FORMATS=raw halves the work)`,
            { code: 'DataCheckTimedOut', transient: false, sourceRefused: false },
            { cause: thrown },
          );
        }
        throw thrown;
      }
    },
  };

  async function checkWithin(
    { folder, name, schema, parquet, source }: Parameters<DataFiles['checkFile']>[0],
    abortSignal: AbortSignal,
  ): Promise<DataFileOutcome> {
    const downloaded = await classified(() => container.getBlobClient(`${folder}${name}`).download(0, undefined, { abortSignal }), { about: `'${name}'` });
    const body = downloaded.readableStreamBody as Readable;
    const bytes = bytesAgainst(source, name);
    const check = startFileCheck(schema, name);
    const lines = numberedLines(body, name, { idleTimeoutMs: options.idleTimeoutMs, onBytes: bytes.add });
    async function* typedRows(): AsyncGenerator<readonly CellValue[]> {
      for await (const { text, line } of lines) {
        const row = check.addLine(text, line);
        if (row) yield row.values;
      }
      // Every byte is in (the lines end with the body): before the Parquet copy commits.
      bytes.verify();
    }
    if (!parquet) {
      for await (const _row of typedRows());
      return { check: check.result() };
    }
    const { writeParquet } = await import('./parquetFile.js');
    const parquetName = parquetPathFor(name);
    const written = await writeParquet(typedRows(), schema, container.getBlockBlobClient(`${folder}${parquetName}`), abortSignal);
    return { check: check.result(), parquet: { name: parquetName, ...written } };
  }
}

/**
 * Counts and hashes a file's bytes as they arrive (`add`); `verify`, once the last is in, fails
 * naming the file when they are not its source's length and MD5. The copy's own MD5 (in a
 * listing) is the property it took from its source, not a hash of what landed: this is.
 */
function bytesAgainst(source: SourceBytes, name: string): { readonly add: (chunk: Buffer) => void; readonly verify: () => void } {
  const md5 = source.contentMD5 ? createHash('md5') : undefined;
  let byteCount = 0;
  return {
    add: (chunk) => {
      byteCount += chunk.length;
      md5?.update(chunk);
    },
    verify: () => {
      if (byteCount !== source.byteCount)
        throw new DataFileError(name, undefined, `does not match its source: ${byteCount} bytes, expected ${source.byteCount}`);
      const digest = md5?.digest('base64');
      if (digest !== source.contentMD5) throw new DataFileError(name, undefined, `does not match its source: MD5 ${digest}, expected ${source.contentMD5}`);
    },
  };
}

/**
 * The lines of a gzip JSON-lines stream, numbered from 1, decoded as UTF-8 across chunk
 * boundaries, a byte order mark at the start dropped (the reference: assume UTF-8, tolerate a
 * BOM); `onBytes` sees every gzipped chunk as it arrives. A file of no bytes at all has no
 * lines. A stream that does not decompress fails naming the file and the line it stopped in.
 */
export async function* numberedLines(
  gzipped: Readable,
  file: string,
  { idleTimeoutMs = STORAGE_CALL_TIMEOUT_MS, onBytes }: { readonly idleTimeoutMs?: number; readonly onBytes?: (chunk: Buffer) => void } = {},
): AsyncGenerator<{ readonly text: string; readonly line: number }> {
  const gunzip = createGunzip();
  // A body that stops arriving (a connection hung mid-file) fails like a call past its deadline.
  let idle: NodeJS.Timeout | undefined;
  const stillArriving = () => {
    clearTimeout(idle);
    idle = setTimeout(() => gzipped.destroy(Object.assign(new Error(`no bytes for ${idleTimeoutMs} ms`), { name: 'TimeoutError' })), idleTimeoutMs);
    idle.unref();
  };
  stillArriving();
  // Listened to here, as the pipe below starts the flow: a listener added earlier would start it before anything reads.
  let gzippedBytes = 0;
  gzipped.on('data', (chunk: Buffer) => {
    stillArriving();
    gzippedBytes += chunk.length;
    onBytes?.(chunk);
  });
  // The download failing (a reset, the deadline) is the storage's trouble, not the file's.
  let downloadFailed: Error | undefined;
  gzipped.on('error', (error) => {
    downloadFailed = error;
    gunzip.destroy(error);
  });
  gzipped.pipe(gunzip);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let line = 0;
  let atStart = true;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let text = rest + decoder.write(chunk);
      if (atStart && text.length > 0) {
        atStart = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      let start = 0;
      for (let newline = text.indexOf('\n', start); newline !== -1; newline = text.indexOf('\n', start)) {
        line++;
        yield { text: text.charCodeAt(newline - 1) === 13 ? text.slice(start, newline - 1) : text.slice(start, newline), line };
        start = newline + 1;
      }
      rest = text.slice(start);
      if (rest.length > MAX_LINE_CHARS)
        throw new DataFileError(file, line + 1, `is longer than ${MAX_LINE_CHARS} characters: expected one JSON object per line`);
    }
  } catch (thrown) {
    if (thrown instanceof DataFileError) throw thrown;
    const error = storageErrorFrom(thrown, { about: `'${file}'` });
    if (error instanceof StorageRequestError) throw error;
    if (downloadFailed) {
      throw new StorageRequestError(
        `'${file}': reading it from the destination stopped after line ${line}: ${error.message}`,
        { code: 'DownloadInterrupted', transient: true, sourceRefused: false },
        { cause: error },
      );
    }
    // No bytes at all: an empty file, not a cut one (gunzip calls both "unexpected end of file").
    if (gzippedBytes === 0 && (thrown as { code?: string }).code === 'Z_BUF_ERROR') return;
    // zlib's errors (Z_BUF_ERROR "unexpected end of file" for a cut file, Z_DATA_ERROR for bytes that are not gzip).
    throw new DataFileError(file, line + 1, `does not decompress (${(thrown as { code?: string }).code ?? 'gzip'}: ${error.message})`, { cause: error });
  } finally {
    clearTimeout(idle);
    gzipped.unpipe(gunzip);
    gzipped.destroy();
  }
  rest += decoder.end();
  if (rest.length > 0) yield { text: rest, line: line + 1 };
}
