/**
 * The measured process. The benchmark forks it (bundled, like the deployed app) with one task:
 *   app       what the timer does (startExport) and then the queue function run the way the host
 *             runs it (runWorker), until the run ends; reports the run's timeline, every request
 *             it made, and its peak RSS
 *   idle      load the app and create its clients and queues, nothing else (memory baseline)
 *   floor     the same server-side copies issued directly with @azure/storage-blob, one request
 *             per file, at each of several concurrencies
 * The emulators run in other processes, so nothing here but the app counts against its memory.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { InvocationContext } from '@azure/functions';
import { createStorageClients } from '../src/adapters/storageClients';
import { isBilledKind, type ExportKind } from '../src/core/naming';
import type { StartRequest } from '../src/core/run';
import { parseSettings } from '../src/core/settings';
import { createDeps, type Deps } from '../src/deps';
import { startExport } from '../src/functions/startExport';
import { runWorker, type QueueHostOptions } from '../emulator/queueHost';
import { mapWithConcurrency } from '../src/concurrency';
import { portsFromSettings, RequestLog } from './requestLog';

export type ChildTask =
  | {
      readonly kind: 'app';
      /** The app settings, also set as the process environment (the identity endpoint is read from there). */
      readonly env: Record<string, string>;
      readonly currency: string;
      /** What is exported (default unbilled-usage); a billed kind exports `invoiceId`. */
      readonly exportKind?: ExportKind;
      readonly invoiceId?: string;
      readonly host: QueueHostOptions;
      readonly sourceAccount: string;
      /** Load, create the clients and queues, say 'ready', and start only on 'go' (so start-up work overlaps nothing measured). */
      readonly waitForGo?: boolean;
      /**
       * Stop the worker once every copy is done (the landing's 'files landed' event), leaving
       * the data check undone: for measuring the landing alone (its run ends still copying).
       */
      readonly untilCopied?: boolean;
    }
  | { readonly kind: 'idle'; readonly env: Record<string, string> }
  | {
      readonly kind: 'floor';
      readonly destinationConnectionString: string;
      readonly container: string;
      /** Source blob URLs with their SAS. */
      readonly sources: readonly string[];
      readonly concurrencies: readonly number[];
    };

export interface Timeline {
  /** performance.now() when the task began. */
  readonly began: number;
  /** POST export answered (202). */
  exportStarted?: number;
  /** The operation GET that answered success came back; what the app logs as "export succeeded at Graph". */
  succeededAtGraph?: number;
  /**
   * Every file copied (answered done, or settled and verified by a listing): the moment the
   * landing planned the data check, as the plan in the ledger records it (`copiedAt`, the app's wall clock, put on this
   * timeline through performance.timeOrigin). The raw files are there from then on.
   */
  dataCopied?: number;
  /** The PUT of manifest.json came back: every file's data checked, the data announced for downstream jobs. */
  manifestWritten?: number;
  /** The run is recorded as finished in the ledger. */
  runFinished?: number;
  /** This process's CPU time (user + system, ms) at succeededAtGraph, dataCopied and manifestWritten. */
  cpuAtSuccess?: number;
  cpuAtCopied?: number;
  cpuAtManifest?: number;
}

export interface AppOutcome {
  readonly kind: 'app';
  readonly runId: string;
  readonly state: string;
  readonly blobCount: number;
  readonly bytesCopied: number;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  readonly pollCount: number;
  readonly messagesProcessed: number;
  readonly timeline: Timeline;
  /**
   * Requests by kind over the whole run, within the landing (success seen → every copy
   * verified, dataCopied), and within the data check that follows (→ manifest.json written).
   */
  readonly requests: Record<string, number>;
  readonly landingRequests: Record<string, number>;
  readonly checkRequests: Record<string, number>;
  /** Median time from request start to the end of its answer, by kind, within the landing. */
  readonly landingLatencyMs: Record<string, number>;
  /** CPU time this process spent in the landing (user + system), and in the data check after it. */
  readonly landingCpuMs: number;
  readonly checkCpuMs: number;
  /** By kind, the landing's first request start and last answer, in ms after success was seen: its phases. */
  readonly landingSpansMs: Record<string, { readonly firstStartMs: number; readonly lastEndMs: number }>;
  /** Connections the landing opened (requests that did not reuse a kept-alive socket). */
  readonly landingNewConnections: Record<string, number>;
  /** Requests answered with 4xx/5xx or not at all, by kind and status (SDK retries show up here). */
  readonly failedRequests: Record<string, number>;
  /** The jitter draws the handlers made through deps.random, in order. */
  readonly randomDraws: readonly number[];
  /** Operation GETs: when each came back (ms after the POST came back) and what it said. */
  readonly operationPolls: ReadonlyArray<{ readonly at: number; readonly status: string }>;
  readonly maxRssBytes: number;
}

export interface IdleOutcome {
  readonly kind: 'idle';
  readonly maxRssBytes: number;
}

export interface FloorOutcome {
  readonly kind: 'floor';
  /** Seconds to issue every copy and have every answer, per concurrency. */
  readonly seconds: Record<string, number>;
  readonly requestsPerFile: number;
  /** This process's CPU time per copy, over every concurrency. */
  readonly cpuMsPerFile: number;
  readonly maxRssBytes: number;
}

export type ChildOutcome = AppOutcome | IdleOutcome | FloorOutcome;

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'started'; readonly runId: string }
  | { readonly type: 'done'; readonly outcome: ChildOutcome }
  | { readonly type: 'failed'; readonly error: string };

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function maxRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

async function runApp(task: Extract<ChildTask, { kind: 'app' }>, send: (message: ChildMessage) => void): Promise<AppOutcome> {
  Object.assign(process.env, task.env);
  const requests = new RequestLog({ ports: portsFromSettings(task.env), sourceAccount: task.sourceAccount });
  requests.wrapFetch();
  const timeline: { -readonly [K in keyof Timeline]: Timeline[K] } = { began: performance.now() };
  requests.onEnd = (entry) => {
    if (entry.kind === 'graph POST export' && entry.status === 202) timeline.exportStarted ??= entry.endedAt;
    if (entry.service === 'blob' && entry.kind.startsWith('blob PUT') && entry.path.endsWith('/manifest.json') && (entry.status ?? 0) < 300) {
      timeline.manifestWritten = entry.endedAt;
      timeline.cpuAtManifest = cpuMs();
    }
  };

  const settings = parseSettings(process.env);
  // The same dependencies, with the jitter draws recorded, so the policy can be replayed exactly.
  const randomDraws: number[] = [];
  const deps: Deps = {
    ...createDeps(settings),
    random: () => {
      const draw = Math.random();
      randomDraws.push(draw);
      return draw;
    },
  };
  const clients = createStorageClients(settings);
  const stop = new AbortController();
  const onLog = (_level: string, line: string): void => {
    if (task.untilCopied && line.startsWith('files landed; checking their data')) stop.abort();
    if (line.startsWith('export succeeded at Graph')) {
      timeline.succeededAtGraph = performance.now();
      timeline.cpuAtSuccess = cpuMs();
    }
    if (line.startsWith('run succeeded') || line.startsWith('run failed')) timeline.runFinished = performance.now();
  };
  const context = new InvocationContext({ functionName: 'startExports', logHandler: (level, ...args) => onLog(level, args.map(String).join(' ')) });
  if (task.waitForGo) {
    await deps.ready();
    const go = new Promise<void>((resolveGo) => process.once('message', () => resolveGo()));
    send({ type: 'ready' });
    await go;
  }

  const started = await startExport(startRequestFor(task, settings), deps, context);
  if (started.kind !== 'started') throw new Error(`the export did not start: ${started.reason}`);
  send({ type: 'started', runId: started.run.runId });

  const worked = await runWorker(deps, clients.queueService, {
    runIds: [started.run.runId],
    host: task.host,
    onLog,
    ...(task.untilCopied ? { signal: stop.signal } : {}),
  });
  const run = worked.runs[0] ?? started.run;
  // Read after the run (outside every window measured): when the landing had every copy done.
  const copiedAt = run.manifestETag ? copiedAtOf(await deps.fileChecks.readPlan(run.runId, run.manifestETag)) : undefined;
  if (copiedAt !== undefined) {
    timeline.dataCopied = copiedAt - performance.timeOrigin;
    // The CPU clock as the first ledger request after that moment (the plan's own write) started.
    timeline.cpuAtCopied = requests.entries.find((entry) => entry.startedAt >= timeline.dataCopied! && entry.cpuAtStart !== undefined)?.cpuAtStart;
  }
  const landingFrom = timeline.succeededAtGraph ?? Infinity;
  const landingTo = timeline.dataCopied ?? -Infinity;
  const checkTo = timeline.manifestWritten ?? -Infinity;
  const postedAt = timeline.exportStarted ?? timeline.began;
  return {
    kind: 'app',
    runId: run.runId,
    state: run.state,
    blobCount: run.blobCount ?? 0,
    bytesCopied: run.bytesCopied,
    ...(run.errorCode ? { errorCode: run.errorCode, errorMessage: run.errorMessage ?? '' } : {}),
    pollCount: run.pollCount,
    messagesProcessed: worked.messagesProcessed,
    timeline,
    requests: requests.countByKind(),
    landingRequests: requests.countByKind(landingFrom, landingTo),
    checkRequests: requests.countByKind(landingTo, checkTo),
    landingLatencyMs: requests.medianLatencyByKind(landingFrom, landingTo),
    landingSpansMs: requests.spansByKind(landingFrom, landingTo),
    landingCpuMs: (timeline.cpuAtCopied ?? Number.NaN) - (timeline.cpuAtSuccess ?? Number.NaN),
    checkCpuMs: (timeline.cpuAtManifest ?? Number.NaN) - (timeline.cpuAtCopied ?? Number.NaN),
    landingNewConnections: requests.countByKind(landingFrom, landingTo, (entry) => entry.newConnection === true),
    failedRequests: countBy(
      requests.entries
        .filter((entry) => (entry.status ?? 0) >= 400 || entry.endedAt === undefined)
        .map((entry) => `${entry.kind} ${entry.status ?? 'no answer'}`),
    ),
    randomDraws,
    operationPolls: requests.entries
      .filter((entry) => entry.kind === 'graph GET operation' && entry.endedAt !== undefined)
      .map((entry) => ({ at: entry.endedAt! - postedAt, status: entry.operationStatus ?? `http ${entry.status ?? '?'}` })),
    maxRssBytes: maxRssBytes(),
  };
}

/** The data check plan's `copiedAt` (../src/steps/checkFiles.ts) as epoch milliseconds. */
function copiedAtOf(plan: unknown): number | undefined {
  const copiedAt = (plan as { copiedAt?: unknown } | undefined)?.copiedAt;
  const at = typeof copiedAt === 'string' ? Date.parse(copiedAt) : Number.NaN;
  return Number.isFinite(at) ? at : undefined;
}

/** The export the timer (unbilled kinds) or an invoice-ready event (billed kinds) would start. */
function startRequestFor(task: Extract<ChildTask, { kind: 'app' }>, settings: ReturnType<typeof parseSettings>): StartRequest {
  const kind = task.exportKind ?? 'unbilled-usage';
  const common = { attributeSet: settings.attributeSet, trigger: 'cli', force: true } as const;
  if (!isBilledKind(kind)) return { kind, currency: task.currency, billingPeriod: settings.billingPeriod, ...common };
  if (!task.invoiceId) throw new Error(`the benchmark's ${kind} export needs an invoice id`);
  return { kind, invoiceId: task.invoiceId, ...common };
}

async function runIdle(task: Extract<ChildTask, { kind: 'idle' }>): Promise<IdleOutcome> {
  Object.assign(process.env, task.env);
  const deps = createDeps(parseSettings(process.env));
  await deps.ready();
  return { kind: 'idle', maxRssBytes: maxRssBytes() };
}

async function runFloor(task: Extract<ChildTask, { kind: 'floor' }>): Promise<FloorOutcome> {
  const requests = new RequestLog({ ports: portsFromSettings({ PARTNER_STORAGE: task.destinationConnectionString }), sourceAccount: '' });
  const container = BlobServiceClient.fromConnectionString(task.destinationConnectionString).getContainerClient(task.container);
  await container.createIfNotExists();
  // One request first, so every concurrency starts with the client set up alike.
  await (await container.getBlobClient(`warm-up/${Date.now()}`).beginCopyFromURL(task.sources[0]!)).pollUntilDone();
  const seconds: Record<string, number> = {};
  const from = performance.now();
  let copyCpuMs = 0;
  for (const concurrency of task.concurrencies) {
    const started = performance.now();
    const cpuFrom = cpuMs();
    await mapWithConcurrency(task.sources, concurrency, async (source) => {
      const name = new URL(source).pathname.split('/').pop()!;
      // beginCopyFromURL sends one Copy Blob; Azurite answers it done, so the poller never polls.
      const poller = await container.getBlobClient(`c${concurrency}/${name}`).beginCopyFromURL(source);
      if (!poller.isDone()) throw new Error(`copy of ${name} is pending; the floor expects Azurite's synchronous copies`);
    });
    seconds[String(concurrency)] = (performance.now() - started) / 1000;
    copyCpuMs += cpuMs() - cpuFrom;
  }
  const issued = requests.count((entry) => entry.kind === 'blob PUT copy', from);
  const copies = task.sources.length * task.concurrencies.length;
  return { kind: 'floor', seconds, requestsPerFile: issued / copies, cpuMsPerFile: copyCpuMs / copies, maxRssBytes: maxRssBytes() };
}

function run(task: ChildTask, send: (message: ChildMessage) => void): Promise<ChildOutcome> {
  switch (task.kind) {
    case 'app':
      return runApp(task, send);
    case 'idle':
      return runIdle(task);
    case 'floor':
      return runFloor(task);
  }
}

if (process.send) {
  const send = (message: ChildMessage): void => void process.send!(message);
  process.once('message', (task: ChildTask) => {
    run(task, send).then(
      (outcome) => process.send!({ type: 'done', outcome } satisfies ChildMessage, () => process.exit(0)),
      (error: unknown) =>
        process.send!({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies ChildMessage, () =>
          process.exit(1),
        ),
    );
  });
}
