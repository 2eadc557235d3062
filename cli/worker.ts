/**
 * Runs the queue function in process the way the Functions host's queue listener does: it
 * receives messages with a visibility lease, decodes base64, hands the handler the parsed JSON
 * and a real InvocationContext (with dequeueCount), deletes the message when the handler
 * returns, makes it visible again after host.json's visibilityTimeout when it throws, and moves
 * it to `<queue>-poison` once it has been dequeued maxDequeueCount times.
 */
import { InvocationContext } from '@azure/functions';
import type { QueueServiceClient } from '@azure/storage-queue';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { poisonQueueName } from '../src/adapters/pollQueue';
import { isFinished, type Run } from '../src/core/run';
import type { Deps } from '../src/deps';
import { pollExport } from '../src/functions/pollExport';

export interface QueueHostOptions {
  readonly maxDequeueCount: number;
  readonly visibilityTimeoutSeconds: number;
  /** How long the listener holds a message it is working on. */
  readonly leaseSeconds: number;
  readonly batchSize: number;
  /** Pause between empty receives; the host backs off up to maxPollingInterval (2 s locally). */
  readonly idlePollMs: number;
}

/** The queue settings from host.json, so the worker and the host agree. */
export function queueHostOptions(hostJsonPath = resolve(__dirname, '..', 'host.json')): QueueHostOptions {
  const queues = (JSON.parse(readFileSync(hostJsonPath, 'utf8')) as { extensions?: { queues?: Record<string, unknown> } }).extensions?.queues ?? {};
  return {
    maxDequeueCount: typeof queues.maxDequeueCount === 'number' ? queues.maxDequeueCount : 5,
    visibilityTimeoutSeconds: typeof queues.visibilityTimeout === 'string' ? timeSpanSeconds(queues.visibilityTimeout) : 0,
    leaseSeconds: 600,
    batchSize: typeof queues.batchSize === 'number' ? queues.batchSize : 16,
    idlePollMs: 250,
  };
}

export interface WorkerResult {
  readonly messagesProcessed: number;
  readonly messagesPoisoned: number;
  /** The runs the worker waited for, as they are now. */
  readonly runs: readonly Run[];
}

export interface WorkerOptions {
  /** Stop once these runs have finished; by default, once no run is in progress. */
  readonly runIds?: readonly string[];
  /** Stop after this many messages (tests use it to simulate a crash). */
  readonly maxMessages?: number;
  readonly host?: QueueHostOptions;
  /** Logs from the handler: what an InvocationContext's logHandler receives. */
  readonly onLog?: (level: string, line: string) => void;
}

export async function runWorker(deps: Deps, queueService: QueueServiceClient, options: WorkerOptions = {}): Promise<WorkerResult> {
  const host = options.host ?? queueHostOptions();
  const queue = queueService.getQueueClient(deps.queue.name);
  const poison = queueService.getQueueClient(poisonQueueName(deps.queue.name));
  await deps.ready();
  let processed = 0;
  let poisoned = 0;
  const seen = new Set<string>(options.runIds ?? []);
  const result = async (): Promise<WorkerResult> => ({ messagesProcessed: processed, messagesPoisoned: poisoned, runs: await finalRuns(deps, [...seen]) });

  for (;;) {
    if (options.maxMessages !== undefined && processed >= options.maxMessages) return result();
    const { receivedMessageItems: messages } = await queue.receiveMessages({
      numberOfMessages: Math.min(host.batchSize, options.maxMessages === undefined ? host.batchSize : options.maxMessages - processed),
      visibilityTimeout: host.leaseSeconds,
    });
    if (messages.length === 0) {
      // Nothing visible: done when every watched run has finished, else wait for delayed polls.
      const inProgress = await runsInProgress(deps, options.runIds);
      inProgress.forEach((run) => seen.add(run.runId));
      if (inProgress.length === 0) return result();
      await new Promise((resolveSleep) => setTimeout(resolveSleep, host.idlePollMs));
      continue;
    }
    for (const message of messages) {
      processed++;
      const outcome = await deliver(message, deps, host, options.onLog);
      if (outcome === 'done') {
        await queue.deleteMessage(message.messageId, message.popReceipt);
      } else if (outcome === 'poison') {
        poisoned++;
        await poison.sendMessage(message.messageText);
        await queue.deleteMessage(message.messageId, message.popReceipt);
      } else {
        await queue.updateMessage(message.messageId, message.popReceipt, undefined, host.visibilityTimeoutSeconds);
      }
    }
  }
}

type Delivery = 'done' | 'retry' | 'poison';

async function deliver(
  message: { messageId: string; messageText: string; dequeueCount: number; insertedOn: Date; expiresOn: Date },
  deps: Deps,
  host: QueueHostOptions,
  onLog: WorkerOptions['onLog'],
): Promise<Delivery> {
  const context = new InvocationContext({
    functionName: 'pollExport',
    invocationId: randomUUID(),
    triggerMetadata: { id: message.messageId, dequeueCount: message.dequeueCount, insertionTime: message.insertedOn.toISOString(), expirationTime: message.expiresOn.toISOString() },
    logHandler: (level, ...args) => onLog?.(level, args.map(String).join(' ')),
  });
  const entry = decodeLikeTheHost(message.messageText);
  if (entry === undefined) {
    // The host moves a message it cannot base64-decode to the poison queue at once.
    context.error(`message ${message.messageId} is not base64; moved to the poison queue`);
    return 'poison';
  }
  try {
    await pollExport(entry, context, deps);
    return 'done';
  } catch (thrown) {
    const reason = thrown instanceof Error ? thrown.message : String(thrown);
    if (message.dequeueCount >= host.maxDequeueCount) {
      context.error(`message ${message.messageId} failed ${message.dequeueCount} times; moved to the poison queue: ${reason}`);
      return 'poison';
    }
    context.warn(`message ${message.messageId} failed (attempt ${message.dequeueCount} of ${host.maxDequeueCount}); will retry: ${reason}`);
    return 'retry';
  }
}

/** Base64 text becomes a string, and a JSON string becomes the parsed value, as the host does. */
function decodeLikeTheHost(text: string): unknown {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text.trim()) || text.trim().length % 4 !== 0) return undefined;
  const decoded = Buffer.from(text.trim(), 'base64').toString('utf8');
  try {
    return JSON.parse(decoded) as unknown;
  } catch {
    return decoded;
  }
}

/**
 * The runs the worker waits for: the named ones, or every run in progress except those past
 * their deadline with nothing left to deliver (the next start supersedes those).
 */
async function runsInProgress(deps: Deps, runIds: readonly string[] | undefined): Promise<Run[]> {
  if (runIds) return (await finalRuns(deps, runIds)).filter((run) => !isFinished(run));
  const now = deps.now().getTime();
  const graceMs = (deps.settings.exportDeadlineSeconds + deps.settings.pollMaxDelaySeconds) * 1000;
  return (await deps.ledger.listRuns()).filter((run) => !isFinished(run) && now - Date.parse(run.startedAt) < graceMs);
}

async function finalRuns(deps: Deps, runIds: readonly string[]): Promise<Run[]> {
  const stored = await Promise.all(runIds.map((runId) => deps.ledger.getRun(runId)));
  return stored.flatMap((entry) => (entry ? [entry.run] : []));
}

function timeSpanSeconds(value: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(value);
  if (!match) return 0;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  return ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds);
}

