/**
 * Runs the queue function in process the way the Functions host's queue listener does: it
 * receives messages with a short visibility lease and renews the lease while the handler works
 * (so a worker that dies gives its messages back within one lease, not ten minutes), works a
 * batch concurrently (host.json's batchSize, fetching more once no more than newBatchThreshold
 * are in flight), decodes base64, hands the handler the parsed JSON and a real
 * InvocationContext (with dequeueCount), deletes the message when the handler returns, makes it
 * visible again after host.json's visibilityTimeout when it throws, and moves it to
 * `<queue>-poison` (through the app's poll queue adapter) once it has been dequeued
 * maxDequeueCount times, or at once, without running the handler, when it arrives dequeued more
 * often than that (its earlier deliveries died with their process). Told to stop (an AbortSignal: the CLI's SIGINT/SIGTERM), it takes no
 * more messages and gives back the ones in hand at once, as the host does when it shuts down.
 */
import { InvocationContext } from '@azure/functions';
import type { DequeuedMessageItem, QueueClient, QueueServiceClient } from '@azure/storage-queue';
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
  /** How long a received message stays hidden; renewed every third of it while it is worked on. */
  readonly leaseSeconds: number;
  readonly batchSize: number;
  /** Fetch the next batch once no more than this many are in flight. @default batchSize / 2 */
  readonly newBatchThreshold?: number;
  /** Pause between empty receives; the host backs off up to maxPollingInterval (2 s locally). */
  readonly idlePollMs: number;
}

/** A short lease, renewed while working: a message of a worker that died is back in 30 s. */
export const DEFAULT_LEASE_SECONDS = 30;

/** The queue settings from host.json, so the worker and the host agree. */
export function queueHostOptions(hostJsonPath = resolve(__dirname, '..', 'host.json')): QueueHostOptions {
  const queues = (JSON.parse(readFileSync(hostJsonPath, 'utf8')) as { extensions?: { queues?: Record<string, unknown> } }).extensions?.queues ?? {};
  const batchSize = typeof queues.batchSize === 'number' ? queues.batchSize : 16;
  return {
    maxDequeueCount: typeof queues.maxDequeueCount === 'number' ? queues.maxDequeueCount : 5,
    visibilityTimeoutSeconds: typeof queues.visibilityTimeout === 'string' ? timeSpanSeconds(queues.visibilityTimeout) : 0,
    leaseSeconds: DEFAULT_LEASE_SECONDS,
    batchSize,
    newBatchThreshold: typeof queues.newBatchThreshold === 'number' ? queues.newBatchThreshold : Math.floor(batchSize / 2),
    idlePollMs: 250,
  };
}

export interface WorkerResult {
  readonly messagesProcessed: number;
  readonly messagesPoisoned: number;
  /** Messages whose lease another worker took over (pop receipt changed) while this one worked. */
  readonly leasesLost: number;
  /** The named runs, and the runs it worked on or waited for that had not ended before it began, as they are now. */
  readonly runs: readonly Run[];
  /** The worker was told to stop (WorkerOptions.signal) before its runs had finished. */
  readonly stopped: boolean;
}

export interface WorkerOptions {
  /** Stop once these runs have finished; by default, once no run is in progress. */
  readonly runIds?: readonly string[];
  /** Stop after this many messages (tests use it to simulate a crash). */
  readonly maxMessages?: number;
  readonly host?: QueueHostOptions;
  /** Logs from the handler: what an InvocationContext's logHandler receives. */
  readonly onLog?: (level: string, line: string) => void;
  /** What the worker is waiting for while every message is hidden; called once per change. */
  readonly onWait?: (line: string) => void;
  /**
   * Stop: receive nothing more, stop renewing, and make every message in hand visible again
   * at once (updateMessage with visibilityTimeout 0), so another worker takes it now, not after
   * the lease; the result then has `stopped: true`.
   */
  readonly signal?: AbortSignal;
}

export async function runWorker(deps: Deps, queueService: QueueServiceClient, options: WorkerOptions = {}): Promise<WorkerResult> {
  const host = options.host ?? queueHostOptions();
  const newBatchThreshold = host.newBatchThreshold ?? Math.floor(host.batchSize / 2);
  const queue = queueService.getQueueClient(deps.queue.name);
  // Only for a message that was never base64: the adapter stores decoded text, and there is none.
  const poison = queueService.getQueueClient(poisonQueueName(deps.queue.name));
  const began = deps.now().toISOString();
  await deps.ready();
  const counts = { processed: 0, poisoned: 0, leasesLost: 0 };
  const named = new Set<string>(options.runIds ?? []);
  const seen = new Set<string>(named);
  const inFlight = new Set<Promise<void>>();
  const leases = new Set<Lease>();
  let lastWait = '';
  const limitReached = () => options.maxMessages !== undefined && counts.processed >= options.maxMessages;
  const result = async (): Promise<WorkerResult> => ({
    messagesProcessed: counts.processed,
    messagesPoisoned: counts.poisoned,
    leasesLost: counts.leasesLost,
    // The named runs, however they ended; of the others, those that had not ended before this
    // worker began (a stale message of an old run says nothing about this worker's work).
    runs: (await finalRuns(deps, [...seen])).filter((run) => named.has(run.runId) || !run.finishedAt || run.finishedAt >= began),
    stopped: options.signal?.aborted ?? false,
  });
  const stopped = options.signal
    ? new Promise<void>((resolveStop) =>
        options.signal!.aborted ? resolveStop() : options.signal!.addEventListener('abort', () => resolveStop(), { once: true }),
      )
    : new Promise<void>(() => undefined);

  for (;;) {
    if (options.signal?.aborted) {
      // The handlers still running are abandoned with the process, as in a crash, but their
      // messages are visible again now instead of after the lease.
      await Promise.all([...leases].map((lease) => lease.giveBack()));
      return result();
    }
    if (limitReached() && inFlight.size === 0) return result();
    let received = 0;
    if (!limitReached() && inFlight.size <= newBatchThreshold) {
      const wanted = Math.min(host.batchSize, options.maxMessages === undefined ? host.batchSize : options.maxMessages - counts.processed);
      let messages: DequeuedMessageItem[] = [];
      try {
        messages = (await queue.receiveMessages({ numberOfMessages: wanted, visibilityTimeout: host.leaseSeconds })).receivedMessageItems;
      } catch (thrown) {
        // The queue is unreachable past the SDK's retries: the host's listener keeps polling, so
        // does this; the messages in hand are unaffected.
        options.onLog?.('warning', `receiving from ${deps.queue.name} failed (${thrown instanceof Error ? thrown.message : String(thrown)}); trying again`);
        await sleep(host.idlePollMs);
      }
      received = messages.length;
      for (const message of messages) {
        counts.processed++;
        const work = workOn(message, { deps, host, queue, poison, counts, seen, leases, onLog: options.onLog }).finally(() => inFlight.delete(work));
        inFlight.add(work);
      }
    }
    if (received > 0) {
      lastWait = '';
      continue;
    }
    if (inFlight.size > 0) {
      await Promise.race([...inFlight, sleep(host.idlePollMs), stopped]);
      continue;
    }
    // Nothing visible and nothing in hand: done when every watched run has finished, else wait
    // for delayed polls (or for the lease of a worker that stopped to run out).
    const inProgress = await runsInProgress(deps, options.runIds);
    inProgress.forEach((run) => seen.add(run.runId));
    if (inProgress.length === 0) return result();
    const wait = describeWait(inProgress, deps.now(), host.leaseSeconds);
    if (wait.key !== lastWait) {
      lastWait = wait.key;
      options.onWait?.(wait.line);
    }
    await Promise.race([sleep(host.idlePollMs), stopped]);
  }
}

interface WorkContext {
  readonly deps: Deps;
  readonly host: QueueHostOptions;
  readonly queue: QueueClient;
  readonly poison: QueueClient;
  readonly counts: { processed: number; poisoned: number; leasesLost: number };
  readonly seen: Set<string>;
  /** The leases of the messages in hand, for giving them back when the worker stops. */
  readonly leases: Set<Lease>;
  readonly onLog: WorkerOptions['onLog'];
}

/** One message: hold its lease while the handler works, then settle it, unless the lease was lost. */
async function workOn(message: DequeuedMessageItem, work: WorkContext): Promise<void> {
  const runId = runIdOf(message.messageText);
  if (runId) work.seen.add(runId);
  const lease = holdLease(work.queue, message, work.host.leaseSeconds);
  work.leases.add(lease);
  let outcome: Delivery;
  try {
    outcome = await deliver(message, work.deps, work.host, work.onLog);
  } finally {
    work.leases.delete(lease);
    await lease.release();
  }
  if (lease.givenBack) return;
  const lost = (): void => {
    work.counts.leasesLost++;
    work.onLog?.('warning', `message ${message.messageId}: lease lost (its pop receipt changed; another worker may hold it), so it is left to that worker`);
  };
  if (lease.lost) return lost();
  try {
    if (outcome === 'done') {
      await work.queue.deleteMessage(message.messageId, lease.popReceipt);
    } else if (outcome === 'poison') {
      work.counts.poisoned++;
      // Through the app's adapter, which stores the decoded text base64-encoded again, as the
      // host does, so an operator can move it back. A message that was never base64 has no
      // decoded text: it is copied as received.
      const decoded = decodedText(message.messageText);
      if (decoded === undefined) await work.poison.sendMessage(message.messageText);
      else await work.deps.queue.sendToPoison(decoded);
      await work.queue.deleteMessage(message.messageId, lease.popReceipt);
    } else {
      await work.queue.updateMessage(message.messageId, lease.popReceipt, undefined, work.host.visibilityTimeoutSeconds);
    }
  } catch (thrown) {
    if (isLostLease(thrown)) return lost();
    // Anything else (storage trouble): the message reappears when its lease runs out, as in the host.
    work.onLog?.(
      'warning',
      `message ${message.messageId}: could not settle it (${thrown instanceof Error ? thrown.message : String(thrown)}); it reappears when its lease runs out`,
    );
  }
}

interface Lease {
  readonly popReceipt: string;
  readonly lost: boolean;
  /** The message was made visible again by giveBack(): nothing is left to settle. */
  readonly givenBack: boolean;
  /** Stops renewing; waits for a renewal in flight, so popReceipt is the latest. */
  release(): Promise<void>;
  /** Stops renewing and makes the message visible at once (the worker is stopping). */
  giveBack(): Promise<void>;
}

/**
 * Keeps a message hidden while it is worked on, as the host does: every third of the lease its
 * visibility is extended by a whole lease. A renewal refused with 404/412 (or a pop receipt
 * mismatch) means another worker received the message after the lease ran out.
 */
function holdLease(queue: QueueClient, message: DequeuedMessageItem, leaseSeconds: number): Lease {
  const state = { popReceipt: message.popReceipt, lost: false, givenBack: false };
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = renewing.then(async () => {
        if (state.lost) return;
        try {
          const renewed = await queue.updateMessage(message.messageId, state.popReceipt, undefined, leaseSeconds);
          if (renewed.popReceipt) state.popReceipt = renewed.popReceipt;
        } catch (thrown) {
          if (isLostLease(thrown)) state.lost = true;
          // Other trouble: try again at the next tick, while the lease still holds.
        }
      });
    },
    Math.max(1000, (leaseSeconds * 1000) / 3),
  );
  return {
    get popReceipt() {
      return state.popReceipt;
    },
    get lost() {
      return state.lost;
    },
    get givenBack() {
      return state.givenBack;
    },
    async release() {
      clearInterval(timer);
      await renewing;
    },
    async giveBack() {
      clearInterval(timer);
      await renewing;
      if (state.lost || state.givenBack) return;
      state.givenBack = true;
      try {
        await queue.updateMessage(message.messageId, state.popReceipt, undefined, 0);
      } catch {
        // Lost meanwhile, or storage trouble: the lease runs out as it would have anyway.
      }
    },
  };
}

function isLostLease(thrown: unknown): boolean {
  const status = (thrown as { statusCode?: number } | undefined)?.statusCode;
  const code = (thrown as { code?: string } | undefined)?.code;
  return status === 404 || status === 412 || code === 'PopReceiptMismatch' || code === 'MessageNotFound';
}

/** The run a poll message names, for the worker's report; undefined for anything else. */
function runIdOf(messageText: string): string | undefined {
  const entry = decodeLikeTheHost(messageText);
  const runId = entry && typeof entry === 'object' ? (entry as { runId?: unknown }).runId : undefined;
  return typeof runId === 'string' ? runId : undefined;
}

/** A message a moment past its due time is normal (clocks, the idle pause); later, it is held. */
const OVERDUE_AFTER_MS = 5000;

/** One line on what the worker waits for; the key changes only when the wait does. */
function describeWait(runs: readonly Run[], now: Date, leaseSeconds: number): { key: string; line: string } {
  const due = runs
    .map((run) => ({ run, at: run.nextActionAt ? Date.parse(run.nextActionAt) : undefined }))
    .sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity));
  const next = due[0]!;
  const what = `run ${next.run.runId} (${next.run.state})`;
  const others = runs.length > 1 ? ` and ${runs.length - 1} more run(s) in progress` : '';
  let line: string;
  if (next.at === undefined) {
    line = `waiting for ${what}${others}: its next message is hidden and its ledger row records no due time`;
  } else if (next.at > now.getTime() - OVERDUE_AFTER_MS) {
    line = `waiting for ${what}${others}: its next message is due at ${new Date(next.at).toISOString()}`;
  } else {
    const by = new Date(now.getTime() + leaseSeconds * 1000).toISOString();
    line = `waiting for ${what}${others}: its message was due at ${new Date(next.at).toISOString()} and is still hidden, so a worker holds it, or held it and stopped; the queue gives it back when that lease runs out (with a ${leaseSeconds} s lease, by about ${by})`;
  }
  return {
    key:
      runs
        .map((run) => `${run.runId}:${run.state}:${run.seq}:${run.nextActionAt ?? ''}`)
        .sort()
        .join(',') + (next.at !== undefined && next.at <= now.getTime() - OVERDUE_AFTER_MS ? ':overdue' : ''),
    line,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

type Delivery = 'done' | 'retry' | 'poison';

async function deliver(message: DequeuedMessageItem, deps: Deps, host: QueueHostOptions, onLog: WorkerOptions['onLog']): Promise<Delivery> {
  const context = new InvocationContext({
    functionName: 'pollExport',
    invocationId: randomUUID(),
    triggerMetadata: {
      id: message.messageId,
      dequeueCount: message.dequeueCount,
      insertionTime: message.insertedOn.toISOString(),
      expirationTime: message.expiresOn.toISOString(),
    },
    logHandler: (level, ...args) => onLog?.(level, args.map(String).join(' ')),
  });
  // As the host's QueueProcessor.BeginProcessingMessageAsync (Azure/azure-sdk-for-net,
  // Microsoft.Azure.WebJobs.Extensions.Storage.Queues): `if (message.DequeueCount >
  // MaxDequeueCount)` the message goes to the poison queue and the function is not invoked. Its
  // earlier deliveries died with their process (a failure that returned would have poisoned it at
  // MaxDequeueCount, in CompleteProcessingMessageAsync), so running it again could only die again.
  if (message.dequeueCount > host.maxDequeueCount) {
    context.error(
      `message ${message.messageId} was dequeued ${message.dequeueCount} times, more than maxDequeueCount (${host.maxDequeueCount}); moved to the poison queue without running the function`,
    );
    return 'poison';
  }
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

/** The text a base64 message carries; undefined when it is not base64. */
function decodedText(text: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text.trim()) || text.trim().length % 4 !== 0) return undefined;
  return Buffer.from(text.trim(), 'base64').toString('utf8');
}

/** Base64 text becomes a string, and a JSON string becomes the parsed value, as the host does. */
function decodeLikeTheHost(text: string): unknown {
  const decoded = decodedText(text);
  if (decoded === undefined) return undefined;
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
