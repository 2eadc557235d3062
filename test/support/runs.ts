/** Ledger runs for tests: an October 2026 EUR export started by the timer, in progress; or an invoice's. */
import type { BilledRun, UnbilledRun } from '../../src/core/run';

export function aRun(overrides: Partial<UnbilledRun> = {}): UnbilledRun {
  return {
    runId: '6fe687d7-1e0f-4bd6-9091-4672691f64bc',
    kind: 'unbilled-usage',
    billingMonth: '2026-10',
    currency: 'EUR',
    attributeSet: 'full',
    billingPeriod: 'last',
    trigger: 'timer',
    state: 'polling',
    seq: 1,
    pollCount: 0,
    bytesCopied: 0,
    startedAt: '2026-11-04T05:00:00.000Z',
    updatedAt: '2026-11-04T05:00:00.000Z',
    ...overrides,
  };
}

/** A billed-usage run of invoice G016907411, started by its invoice-ready event, in progress. */
export function aBilledRun(overrides: Partial<BilledRun> = {}): BilledRun {
  return {
    runId: '7ae687d7-1e0f-4bd6-9091-4672691f64bd',
    kind: 'billed-usage',
    invoiceId: 'G016907411',
    attributeSet: 'full',
    trigger: 'event',
    state: 'polling',
    seq: 1,
    pollCount: 0,
    bytesCopied: 0,
    startedAt: '2026-12-07T05:00:00.000Z',
    updatedAt: '2026-12-07T05:00:00.000Z',
    ...overrides,
  };
}
