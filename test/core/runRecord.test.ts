import { describe, expect, it } from 'vitest';
import { LedgerRowError } from '../../src/errors';
import { runFromRecord } from '../../src/core/runRecord';
import { aRun } from '../support/runs';

describe('runFromRecord', () => {
  it('gives back the run that was written, leaving out what is not a run field', () => {
    const run = aRun({ state: 'copying', landingAttempts: 2, destinationContainer: 'c', destinationFolder: 'f/' });
    expect(runFromRecord({ ...run, partitionKey: 'run', rowKey: run.runId, etag: 'W/"1"', timestamp: 'now' }, 'run/x')).toEqual(run);
  });

  it.each([
    ['a missing required field', { seq: undefined }, "'seq' is missing"],
    ['a number stored as text', { pollCount: '3' }, `'pollCount' is "3": expected a number`],
    ['a state this app does not know', { state: 'paused' }, `'state' is "paused": expected one of 'starting', 'polling', 'copying', 'succeeded', 'failed', 'noData', 'noNewData'`],
    ['an optional field of the wrong type', { blobCount: 'many' }, `'blobCount' is "many": expected a number`],
  ])('refuses %s, naming the row and the field', (_name, change, problem) => {
    const record = { ...aRun(), ...change };
    expect(() => runFromRecord(record, 'run/r1')).toThrow(LedgerRowError);
    expect(() => runFromRecord(record, 'run/r1')).toThrow(`ledger row run/r1 is not a run: ${problem}`);
  });

  it('lists every problem of a row at once', () => {
    expect(() => runFromRecord({ ...aRun(), seq: undefined, trigger: 'cron' }, 'run/r2')).toThrow(/'trigger' is "cron".*; 'seq' is missing|'seq' is missing; .*'trigger' is "cron"/);
  });
});
