import { describe, expect, it } from 'vitest';
import { parquetPathFor } from '../../src/core/dataOutputs';
import { parseSettings } from '../../src/core/settings';
import { minimal, problemsOf } from '../support/settings';

describe('OUTPUT_FORMATS', () => {
  it('is raw and Parquet by default', () => expect(parseSettings(minimal).outputFormats).toEqual(['raw', 'parquet']));

  it.each([
    ['raw', ['raw']],
    ['RAW', ['raw']],
    ['raw,parquet', ['raw', 'parquet']],
    [' parquet , raw ', ['raw', 'parquet']],
    ['raw,raw', ['raw']],
  ])('%j is %j', (value, formats) => expect(parseSettings({ ...minimal, OUTPUT_FORMATS: value }).outputFormats).toEqual(formats));

  it.each(['parquet', 'raw,csv', 'raw;parquet', 'json'])('%j is refused, naming the choices', (value) => {
    expect(problemsOf({ ...minimal, OUTPUT_FORMATS: value })).toEqual([
      `OUTPUT_FORMATS is '${value}': expected raw or raw,parquet (the raw files always land)`,
    ]);
  });

  it('a Parquet copy is named after its whole source file, under parquet/', () => {
    expect(parquetPathFor('part-00000-3f2a.c000.json.gz')).toBe('parquet/part-00000-3f2a.c000.json.gz.parquet');
  });
});
