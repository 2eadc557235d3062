import { describe, expect, it } from 'vitest';
import { parseSettings } from '../../src/core/settings';
import { minimal, problemsOf } from '../support/settings';

describe('EXPORT_KINDS and BILLED_EXPORT_KINDS', () => {
  it('default to unbilled usage on the timer and both billed kinds per invoice', () => {
    expect(parseSettings(minimal)).toMatchObject({ exportKinds: ['unbilled-usage'], billedExportKinds: ['billed-usage', 'billed-reconciliation'] });
  });

  it('take comma-separated kinds in any casing, each once', () => {
    expect(
      parseSettings({
        ...minimal,
        EXPORT_KINDS: ' Unbilled-Reconciliation, unbilled-usage,unbilled-reconciliation,',
        BILLED_EXPORT_KINDS: 'billed-reconciliation',
      }),
    ).toMatchObject({
      exportKinds: ['unbilled-reconciliation', 'unbilled-usage'],
      billedExportKinds: ['billed-reconciliation'],
    });
  });

  it('refuse a billed kind on the timer, an unbilled one per invoice and an unknown one, naming where each belongs', () => {
    expect(problemsOf({ ...minimal, EXPORT_KINDS: 'unbilled-usage,billed-usage', BILLED_EXPORT_KINDS: 'unbilled-usage,billed-invoice' })).toEqual([
      "EXPORT_KINDS is 'unbilled-usage,billed-usage': expected comma-separated kinds of unbilled-usage, unbilled-reconciliation ('billed-usage' is for BILLED_EXPORT_KINDS)",
      "BILLED_EXPORT_KINDS is 'unbilled-usage,billed-invoice': expected comma-separated kinds of billed-usage, billed-reconciliation ('unbilled-usage' is for EXPORT_KINDS; 'billed-invoice' is not an export kind)",
    ]);
    expect(problemsOf({ ...minimal, EXPORT_KINDS: ',' })).toEqual([
      "EXPORT_KINDS is ',': expected comma-separated kinds of unbilled-usage, unbilled-reconciliation",
    ]);
  });
});
