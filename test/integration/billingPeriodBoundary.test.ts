/**
 * Graph's billingPeriod is relative to the day of the POST (reference 1.2: `current` is the month
 * in progress). A run whose export POST is retried, or restarted, after the month turned must not
 * export the new month into its old month's folder: it ends as BillingPeriodMoved, unPOSTed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { billingMonthFor } from '../../src/core/naming';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, listBlobs, unbilledRequest } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 2, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 0, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});

describe('a month boundary between the start and the export POST', () => {
  it("a 'current' run recorded before the month turned is not POSTed after it: it fails as BillingPeriodMoved, naming the period that covers its month now", async () => {
    const app = createTestApp(cloud);
    const { run } = await startExport(unbilledRequest('PLN', { billingPeriod: 'current' }), app.deps, app.context());
    await app.clients.queueService.getQueueClient(app.deps.queue.name).clearMessages();
    // As the ledger stands for a run started in the last minute of the previous month whose POST
    // did not get through (its retry comes after midnight): starting, the month of its start.
    const previousMonth = billingMonthFor('last', new Date());
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const rewound = { ...stored.run, state: 'starting' as const, seq: 0, operationUrl: undefined, operationId: undefined, billingMonth: previousMonth };
    await app.deps.ledger.saveRun(rewound, stored.etag);
    const exportsBefore = cloud.billing.exports().length;
    await app.deps.queue.send({ v: 1, runId: run.runId, seq: rewound.seq }, 0);

    const [final] = (await app.work({ runIds: [run.runId] })).runs;

    expect(cloud.billing.exports().length - exportsBefore).toBe(0);
    expect(final).toMatchObject({ state: 'failed', errorCode: 'BillingPeriodMoved', billingMonth: previousMonth });
    expect(final!.errorMessage).toContain(`the run exports ${previousMonth} (billing period 'current' when it started)`);
    expect(final!.errorMessage).toContain(`billing period 'last' exports ${previousMonth} now`);
    expect((await listBlobs(app)).filter((name) => name.includes(`/${previousMonth}/PLN/`))).toEqual([]);
  });
});
