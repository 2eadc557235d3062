/**
 * What lands beside the raw files (OUTPUT_FORMATS): the raw gzip JSON-lines files always, and a
 * Parquet copy of each (`parquet/<source name>.parquet` in the run's folder) unless turned off.
 */

export type OutputFormat = 'raw' | 'parquet';

/** The forms OUTPUT_FORMATS takes; the raw files always land, so `raw` is in each. */
export const OUTPUT_FORMAT_CHOICES = ['raw', 'raw,parquet'] as const;

/** The formats a value names (any order, any casing, spaces around commas), or undefined if it is not one of the choices. */
export function parseOutputFormats(value: string): readonly OutputFormat[] | undefined {
  const names = [...new Set(value.split(',').map((name) => name.trim().toLowerCase()))].sort();
  const joined = names.join(',');
  if (joined === 'raw') return ['raw'];
  if (joined === 'parquet,raw') return ['raw', 'parquet'];
  return undefined;
}

/** Folder, relative to the run's, of the Parquet copies. */
export const PARQUET_FOLDER = 'parquet/';

/** Where a source file's Parquet copy lands, relative to the run's folder: the whole source name, so two never collide. */
export function parquetPathFor(sourceName: string): string {
  return `${PARQUET_FOLDER}${sourceName}.parquet`;
}
