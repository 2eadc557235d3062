import { describe, expect, it } from 'vitest';
import { LedgerRowError } from '../../src/errors';
import { runFacts, runFromRecord } from '../../src/core/runRecord';
import { aBilledRun, aRun } from '../support/runs';

describe('runFromRecord', () => {
  it('gives back the run that was written, leaving out what is not a run field', () => {
    const run = aRun({ state: 'copying', landingAttempts: 2, destinationContainer: 'c', destinationFolder: 'f/' });
    expect(runFromRecord({ ...run, partitionKey: 'run', rowKey: run.runId, etag: 'W/"1"', timestamp: 'now' }, 'run/x')).toEqual(run);
  });

  it.each([
    ['a missing required field', { seq: undefined }, "'seq' is missing"],
    ['a number stored as text', { pollCount: '3' }, `'pollCount' is "3": expected a number`],
    [
      'a state this app does not know',
      { state: 'paused' },
      `'state' is "paused": expected one of 'starting', 'polling', 'copying', 'succeeded', 'failed', 'noData', 'noNewData'`,
    ],
    ['an optional field of the wrong type', { blobCount: 'many' }, `'blobCount' is "many": expected a number`],
  ])('refuses %s, naming the row and the field', (_name, change, problem) => {
    const record = { ...aRun(), ...change };
    expect(() => runFromRecord(record, 'run/r1')).toThrow(LedgerRowError);
    expect(() => runFromRecord(record, 'run/r1')).toThrow(`ledger row run/r1 is not a run: ${problem}`);
  });

  it('lists every problem of a row at once', () => {
    expect(() => runFromRecord({ ...aRun(), seq: undefined, trigger: 'cron' }, 'run/r2')).toThrow(
      /'trigger' is "cron".*; 'seq' is missing|'seq' is missing; .*'trigger' is "cron"/,
    );
  });
});

describe('runFromRecord across kinds and versions', () => {
  it('reads a billed run back, leaving out fields of the unbilled kinds', () => {
    const run = aBilledRun({ state: 'noNewData', manifestETag: 'e1', lastLandedETag: 'e1', lastLandedContainer: 'c' });
    expect(runFromRecord({ ...run, billingMonth: '2026-10', currency: 'EUR' }, 'run/b')).toEqual(run);
  });

  it('refuses a billed run without its invoice, and an unbilled one without its month', () => {
    expect(() => runFromRecord({ ...aBilledRun(), invoiceId: undefined }, 'run/b')).toThrow("ledger row run/b is not a run: 'invoiceId' is missing");
    expect(() => runFromRecord({ ...aRun(), billingMonth: undefined }, 'run/u')).toThrow("ledger row run/u is not a run: 'billingMonth' is missing");
    expect(() => runFromRecord({ ...aRun(), kind: 'usage' }, 'run/k')).toThrow(
      `'kind' is "usage": expected one of 'unbilled-usage', 'unbilled-reconciliation', 'billed-usage', 'billed-reconciliation'`,
    );
  });

  it("reads a row written before the destination's parts: container and folder from 'destination'", () => {
    const { destinationContainer: _c, destinationFolder: _f, ...old } = aRun({ state: 'succeeded' });
    const read = runFromRecord({ ...old, destination: 'billing-exports/unbilled-usage/2026-10/EUR/full/WYj/' }, 'run/old');
    expect(read).toMatchObject({ destinationContainer: 'billing-exports', destinationFolder: 'unbilled-usage/2026-10/EUR/full/WYj/' });
    expect(read).not.toHaveProperty('destination');
  });
});

describe('runFacts', () => {
  it('names the kind and invoice of a billed run, and the month and currency of an unbilled one', () => {
    expect(runFacts(aBilledRun({ state: 'noData', errorCode: '5000', errorMessage: 'No data available' }))).toMatchObject({
      kind: 'billed-usage',
      invoiceId: 'G016907411',
      state: 'noData',
      errorCode: '5000',
    });
    expect(runFacts(aBilledRun())).not.toHaveProperty('billingMonth');
    expect(runFacts(aRun({ destinationContainer: 'c', destinationFolder: 'f/' }))).toMatchObject({
      kind: 'unbilled-usage',
      billingMonth: '2026-10',
      currency: 'EUR',
      billingPeriod: 'last',
      destination: 'c/f/',
    });
    expect(runFacts(aRun())).not.toHaveProperty('invoiceId');
  });
});
