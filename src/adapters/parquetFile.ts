/**
 * Typed rows into a Parquet file uploaded as it is written: each row's cells go into one array
 * per column, hyparquet-writer's ParquetWriter (pure JS) encodes every full group of them as a
 * row group, and its bytes go through a PassThrough into the blob's uploadStream, so memory is
 * bounded by a row group, not by the file. (Its row-object API, parquetWriteRows, built an object
 * per row only to take it apart again: a quarter slower, and 80 MiB more at the peak.) Loaded on
 * first use (its own bundle chunk, scripts/chunks.mjs): most invocations never write Parquet.
 *
 * Types (../core/dataSchema.ts): DECIMAL(p,s) from the exact scaled integer (the library would
 * scale a JS number itself, through a double), DATE as days, TIMESTAMP(ms, UTC), UTF-8 strings.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import type { ByteWriter, ParquetWriter } from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import type { CellValue } from '../core/dataRow';
import type { Column, FamilySchema } from '../core/dataSchema';
import { toScaledInteger } from '../core/decimal';
import { StorageRequestError, asError } from '../errors';
import { classified } from './storageError';

/**
 * Rows per row group: 100,000 rows of 55 columns took 2 GB of memory while a group was built;
 * 5,000-10,000 keep it near 100 MB and still read fast.
 */
export const PARQUET_ROW_GROUP_ROWS = 8_000;
/**
 * Bytes handed to the upload at a time, and the upload's block size: 4 MiB blocks held about
 * 20 MiB more at the peak; 50,000 blocks of 1 MiB still make a 48 GiB blob.
 */
const CHUNK_BYTES = 1 << 20;
const UPLOAD_BLOCK_BYTES = 1 << 20;
const UPLOAD_CONCURRENCY = 2;

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

export function parquetSchemaOf(schema: FamilySchema): SchemaElement[] {
  return [
    { name: 'root', num_children: schema.columns.length },
    ...schema.columns.map((column): SchemaElement => ({ name: column.name, repetition_type: 'OPTIONAL', ...elementOf(column) })),
  ];
}

function elementOf(column: Column): Omit<SchemaElement, 'name'> {
  const type = column.type;
  switch (type.kind) {
    case 'decimal': {
      const decimal = {
        converted_type: 'DECIMAL',
        precision: type.precision,
        scale: type.scale,
        logical_type: { type: 'DECIMAL', precision: type.precision, scale: type.scale },
      } as const;
      return type.precision <= 9 ? { type: 'INT32', ...decimal } : { type: 'FIXED_LEN_BYTE_ARRAY', type_length: bytesFor(type.precision), ...decimal };
    }
    case 'date':
      return { type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'timestamp':
      return { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } };
    case 'string':
      return { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/** The fewest bytes whose two's complement holds ±(10^precision − 1). */
function bytesFor(precision: number): number {
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) <= 10n ** BigInt(precision)) bytes++;
  return bytes;
}

/** A typed cell as the writer takes it. The values were checked to fit (../core/dataRow.ts). */
function writerValue(column: Column, value: CellValue | undefined): unknown {
  if (value === undefined || value === null || typeof value === 'string') return value ?? null;
  if ('digits' in value) {
    const scaled = column.type.kind === 'decimal' ? toScaledInteger(value, column.type.precision, column.type.scale) : undefined;
    if (typeof scaled !== 'bigint') throw new Error(`${column.name}: a decimal that does not fit reached the Parquet writer`);
    return scaled;
  }
  if ('day' in value) return value.day;
  return BigInt(value.instant);
}

/**
 * hyparquet-writer's ByteWriter emptied into `sink` a chunk at a time (a copy: the writer reuses
 * its buffer); after each row group, `flush` waits for the upload to take what it was given.
 */
function streamingWriter(ByteWriterClass: typeof ByteWriter, sink: PassThrough, counted: { bytes: number }): ByteWriter {
  const writer = new ByteWriterClass(CHUNK_BYTES * 2);
  const push = () => {
    // The upload failed and destroyed the sink: stop writing (the caller reports the upload's error).
    if (sink.destroyed) throw sink.errored ?? new Error('the Parquet upload stopped');
    if (writer.index === 0) return;
    sink.write(new Uint8Array(writer.buffer.slice(0, writer.index)));
    counted.bytes += writer.index;
    writer.index = 0;
  };
  const ensure = writer.ensure.bind(writer);
  writer.ensure = (size: number) => {
    if (writer.index > CHUNK_BYTES) push();
    ensure(size);
  };
  Object.assign(writer, {
    flush: async () => {
      push();
      if (sink.writableNeedDrain) await once(sink, 'drain');
    },
    finish: () => {
      push();
      sink.end();
    },
  });
  return writer;
}

export async function writeParquet(
  rows: AsyncIterable<readonly CellValue[]>,
  schema: FamilySchema,
  target: BlockBlobClient,
  abortSignal: AbortSignal,
): Promise<{ rowCount: number; byteCount: number }> {
  // An ES module: imported, not required, from this CommonJS code.
  const hyparquet = await import('hyparquet-writer');
  const sink = new PassThrough();
  const upload = target.uploadStream(sink, UPLOAD_BLOCK_BYTES, UPLOAD_CONCURRENCY, {
    blobHTTPHeaders: { blobContentType: 'application/vnd.apache.parquet' },
    abortSignal,
  });
  // An upload that fails stops taking bytes: the writer, waiting for the sink to drain, must
  // hear of it (the sink's error rejects its wait) instead of waiting for ever.
  let uploadFailed: Error | undefined;
  upload.catch((error: unknown) => {
    uploadFailed ??= asError(error);
    sink.destroy(uploadFailed);
  });
  const counted = { bytes: 0 };
  let rowCount = 0;
  try {
    // Rows go straight into one array per column: a row group holds its cells, not a row object per row.
    const parquet = new hyparquet.ParquetWriter({
      writer: streamingWriter(hyparquet.ByteWriter, sink, counted),
      schema: parquetSchemaOf(schema),
      codec: 'SNAPPY',
      createdBy: 'partner-billing-export',
    });
    const { columns } = schema;
    let group: unknown[][] = columns.map(() => []);
    // Called with at least one row in the group.
    const writeGroup = async () => {
      await parquet.write({ columnData: columns.map(({ name }, index) => ({ name, data: group[index]! })), rowGroupSize: group[0]!.length });
      group = columns.map(() => []);
    };
    for await (const values of rows) {
      rowCount++;
      for (let index = 0; index < columns.length; index++) group[index]!.push(writerValue(columns[index]!, values[index]));
      if (group[0]!.length >= PARQUET_ROW_GROUP_ROWS) await writeGroup();
    }
    // An export file with no rows still gets a Parquet file with its columns and no row group.
    if (group[0]!.length > 0) await writeGroup();
    await parquet.finish();
  } catch (thrown) {
    // The upload ends without committing its blocks: no partial Parquet file lands. A failure
    // of the upload itself is the storage error it was, not the writer's echo of it.
    if (thrown !== uploadFailed) {
      uploadFailed = asError(thrown);
      sink.destroy(uploadFailed);
      throw thrown;
    }
  }
  try {
    await classified(() => upload, { about: `'${target.name}'` });
  } catch (thrown) {
    // Another check of the same file (a duplicate delivery) committed its block list first, and
    // Put Block List deletes every uncommitted block it does not name: this one's. Not a fault of
    // the file: checked again, that delivery finds it done.
    if (thrown instanceof StorageRequestError && thrown.code === INVALID_BLOCK_LIST)
      throw new StorageRequestError(
        `${thrown.message} (another check of this file committed its Parquet copy first; checking it again)`,
        { ...thrown.details, transient: true },
        { cause: thrown },
      );
    throw thrown;
  }
  return { rowCount, byteCount: counted.bytes };
}

const INVALID_BLOCK_LIST = 'InvalidBlockList';
