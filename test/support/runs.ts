/** A ledger run for tests: an October 2026 EUR export started by the timer, in progress. */
import type { Run } from '../../src/core/run';

export function aRun(overrides: Partial<Run> = {}): Run {
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
