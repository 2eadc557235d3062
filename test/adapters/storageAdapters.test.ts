/**
 * The queue and ledger adapters against real Azurite: delays held to the queue's limit, poison
 * messages an operator can move back, and error messages that fit a Table property.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { MAX_TABLE_STRING_LENGTH, createLedger } from '../../src/adapters/ledger';
import { poisonQueueName } from '../../src/adapters/pollQueue';
import { MAX_QUEUE_DELAY_SECONDS } from '../../src/core/settings';
import { pollExport } from '../../src/functions/pollExport';
import { reviveStalledRuns } from '../../src/functions/reviveRuns';
import { failRun } from '../../src/steps/runSteps';
import { startExport } from '../../src/functions/startExport';
import { createTestApp } from '../integration/harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});

const runId = '0b7a4c9e-3c55-4a43-9d57-0d0a2b6c1e11';

describe('poll queue', () => {
  it('sends a delay longer than 7 days as the 7-day limit, which the queue accepts, and says so', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();

    const used = await app.deps.queue.send({ v: 1, runId, seq: 3 }, 30 * 86_400);

    expect(used).toBe(MAX_QUEUE_DELAY_SECONDS);
    const queue = app.clients.queueService.getQueueClient(app.deps.queue.name);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
    expect((await queue.receiveMessages()).receivedMessageItems).toHaveLength(0); // still hidden
  });

  it('a message moved to the poison queue stays base64, so moving it back gives the host what it decodes', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    // What the queue trigger hands the handler after decoding base64: a parsed object that is not a poll message.
    const entry = { hello: 'world', runId };

    await pollExport(entry, app.context(), app.deps);

    const poison = app.clients.queueService.getQueueClient(poisonQueueName(app.deps.queue.name));
    const [moved] = (await poison.receiveMessages()).receivedMessageItems;
    expect(moved!.messageText).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(JSON.parse(Buffer.from(moved!.messageText, 'base64').toString('utf8'))).toEqual(entry);
  });

  it('a poison message an operator moves back is read by the worker as the message it was, not as non-base64', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const { run } = await startExport(
      { kind: 'unbilled-usage', currency: 'EUR', billingPeriod: 'last', attributeSet: 'full', trigger: 'cli' },
      app.deps,
      app.context(),
    );
    const queue = app.clients.queueService.getQueueClient(app.deps.queue.name);
    await queue.clearMessages();
    // The run's message went to the poison queue as decoded text (the handler's view)...
    const { seq } = (await app.deps.ledger.getRun(run.runId))!.run;
    await app.deps.queue.sendToPoison(JSON.stringify({ v: 1, runId: run.runId, seq }));
    const poison = app.clients.queueService.getQueueClient(poisonQueueName(app.deps.queue.name));
    const [moved] = (await poison.receiveMessages()).receivedMessageItems;
    // ...and the operator moves it back as it is.
    await queue.sendMessage(moved!.messageText);

    const first = await app.work({ maxMessages: 1 });

    expect(first.messagesPoisoned).toBe(0);
    expect(app.logs.some((line) => line.includes('not base64'))).toBe(false);
    expect((await app.work({ runIds: [run.runId] })).runs[0]).toMatchObject({ state: 'succeeded' });
  });
});

describe('ledger', () => {
  it('cuts an error message too long for a Table property, keeping its head and saying it was cut', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const { run } = await startExport(
      { kind: 'unbilled-usage', currency: 'EUR', billingPeriod: 'current', attributeSet: 'basic', trigger: 'cli' },
      app.deps,
      app.context(),
    );
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const huge = `storage said: ${'x'.repeat(100_000)}`;

    const saved = await failRun(stored, 'Huge', huge, app.deps, app.context());

    const read = (await app.deps.ledger.getRun(run.runId))!.run;
    expect(read.errorMessage!.length).toBeLessThanOrEqual(MAX_TABLE_STRING_LENGTH);
    expect(read.errorMessage!.startsWith('storage said: xxx')).toBe(true);
    expect(read.errorMessage).toMatch(/\[cut: the first \d+ of 100014 characters kept\]$/);
    expect(saved.run.errorMessage).toBe(read.errorMessage);
    await app.work({ runIds: [run.runId] });
  });

  it('lists the other runs when one row is not a run, reporting that row by its key and problem, and the sweeper carries on', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const { run } = await startExport(
      { kind: 'unbilled-usage', currency: 'CHF', billingPeriod: 'current', attributeSet: 'basic', trigger: 'cli' },
      app.deps,
      app.context(),
    );
    const badKey = 'a-row-an-operator-edited';
    await app.clients.ledgerTable.createEntity({ partitionKey: 'run', rowKey: badKey, state: 'done' });
    try {
      const warnings: string[] = [];
      const ledger = createLedger(app.clients.ledgerTable, { warn: (line) => warnings.push(line) });

      const runs = await ledger.listRuns();

      expect(runs.map((listed) => listed.runId)).toContain(run.runId);
      expect(runs.map((listed) => listed.runId)).not.toContain(badKey);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^ledger row skipped while listing runs \{"rowKey":"a-row-an-operator-edited","problem":"ledger row run\/a-row-an-operator-edited is not a run: .*'state' is \\"done\\": expected one of/,
      );
      // The sweeper lists through the same adapter: one bad row no longer stops it.
      await expect(reviveStalledRuns(app.deps, app.context())).resolves.toMatchObject({ revived: expect.any(Array) });
    } finally {
      await app.clients.ledgerTable.deleteEntity('run', badKey);
      await app.work({ runIds: [run.runId] });
    }
  });

  it('leaves a message that fits as it is', async () => {
    const app = createTestApp(cloud);
    await app.deps.ready();
    const { run } = await startExport(
      { kind: 'unbilled-usage', currency: 'USD', billingPeriod: 'current', attributeSet: 'basic', trigger: 'cli' },
      app.deps,
      app.context(),
    );
    const stored = (await app.deps.ledger.getRun(run.runId))!;
    const fits = 'y'.repeat(MAX_TABLE_STRING_LENGTH);

    await failRun(stored, 'Fits', fits, app.deps, app.context());

    expect((await app.deps.ledger.getRun(run.runId))!.run.errorMessage).toBe(fits);
    await app.work({ runIds: [run.runId] });
  });
});
