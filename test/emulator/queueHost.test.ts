/**
 * The local queue host against real Azurite, where it must do what the Functions host's
 * QueueProcessor does: a message already dequeued more than maxDequeueCount times (its earlier
 * deliveries died with their process, so none of them could poison it) goes to the poison queue
 * without the handler running again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { poisonQueueName } from '../../src/adapters/pollQueue';
import { encodePollMessage } from '../../src/core/pollMessage';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, fastHost, unbilledRequest, type TestApp } from '../integration/harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 5, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});

/** A polling run whose only message has been received `deliveries` times already, as by workers that died holding it. */
async function runWithMessageDelivered(app: TestApp, currency: string, deliveries: number) {
  const { run } = await startExport(unbilledRequest(currency), app.deps, app.context());
  const queue = app.clients.queueService.getQueueClient(app.deps.queue.name);
  await queue.clearMessages();
  const text = encodePollMessage({ v: 1, runId: run.runId, seq: run.seq });
  await queue.sendMessage(text);
  for (let delivery = 1; delivery <= deliveries; delivery++) {
    const [received] = (await queue.receiveMessages({ visibilityTimeout: 30 })).receivedMessageItems;
    expect(received?.dequeueCount).toBe(delivery);
    // The worker holding it died; its lease is over (made visible at once instead of waiting it out).
    await queue.updateMessage(received!.messageId, received!.popReceipt, undefined, 0);
  }
  return { run, text, before: (await app.deps.ledger.getRun(run.runId))! };
}

describe('a message dequeued more often than maxDequeueCount', () => {
  it('is moved to the poison queue, base64 as received, without running the handler', async () => {
    const app = createTestApp(cloud);
    const { run, text, before } = await runWithMessageDelivered(app, 'EUR', fastHost.maxDequeueCount);
    const graphRequests = cloud.billing.requests().length;

    const result = await app.work({ maxMessages: 1 });

    expect(result).toMatchObject({ messagesProcessed: 1, messagesPoisoned: 1 });
    // The handler did not run: no request to Graph, the run's row untouched.
    expect(cloud.billing.requests().length).toBe(graphRequests);
    expect((await app.deps.ledger.getRun(run.runId))!.etag).toBe(before.etag);
    const poison = app.clients.queueService.getQueueClient(poisonQueueName(app.deps.queue.name));
    expect((await poison.receiveMessages()).receivedMessageItems.map((message) => message.messageText)).toEqual([text]);
    expect((await app.clients.queueService.getQueueClient(app.deps.queue.name).getProperties()).approximateMessagesCount).toBe(0);
    expect(
      app.logs.some((line) => line.includes(`dequeued ${fastHost.maxDequeueCount + 1} times, more than maxDequeueCount (${fastHost.maxDequeueCount})`)),
    ).toBe(true);
  });

  it('one dequeued exactly maxDequeueCount times is still handled', async () => {
    const app = createTestApp(cloud);
    const { run, before } = await runWithMessageDelivered(app, 'USD', fastHost.maxDequeueCount - 1);

    const result = await app.work({ maxMessages: 1 });

    expect(result).toMatchObject({ messagesProcessed: 1, messagesPoisoned: 0 });
    expect((await app.deps.ledger.getRun(run.runId))!.run.pollCount).toBe(before.run.pollCount + 1);
  });
});
