/**
 * The chaos run: many exports at once on the local cloud, with faults injected at random (seeded)
 * into Graph (the billing emulator) and into the app's storage (the fault proxy), duplicate timer
 * firings, and worker processes killed and restarted while they work. Then it counts what must
 * never happen: runs stuck in progress, manifests over files that are missing or differ, two
 * runs for one export key, and secrets (tokens, SAS signatures) anywhere the app writes.
 */
import { InvocationContext } from '@azure/functions';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, TSX_LOADER } from '../bench/child';
import { seededRandom } from '../emulator/deterministic';
import type { FaultRule } from '../emulator/faultProxy';
import type { GraphFaultRule } from '../emulator/graphFaults';
import { startLocalCloud } from '../emulator/localCloud';
import { queueHostOptions, type QueueHostOptions } from '../emulator/queueHost';
import { createStorageClients } from '../src/adapters/storageClients';
import { poisonQueueName } from '../src/adapters/pollQueue';
import { mapWithConcurrency } from '../src/concurrency';
import { MANIFEST_FILE_NAME, billingMonthFor, exportKeyString } from '../src/core/naming';
import { CLAIM_GRACE_SECONDS, isFinished, type Run } from '../src/core/run';
import { parseSettings, type AttributeSet, type BillingPeriod } from '../src/core/settings';
import { createDeps } from '../src/deps';
import { reviveStalledRuns } from '../src/functions/reviveRuns';
import { startExport } from '../src/functions/startExport';

export interface ChaosOptions {
  readonly seed: number;
  /**
   * Exports, each of its own ledger key (currency × period × attribute set); each is started
   * twice, as duplicate timer firings. At most MAX_CHAOS_RUNS.
   */
  readonly runs: number;
  /** Probability of a fault per request, for each kind of fault. */
  readonly faultRate: number;
  readonly workers: number;
  /** A worker is killed every this many milliseconds on average. */
  readonly killEveryMs: number;
  /** Give up after this long; by default 300 s plus 2 s per export. */
  readonly timeoutSeconds?: number;
  readonly log?: (line: string) => void;
}

export const DEFAULT_CHAOS = { seed: 42, runs: 12, faultRate: 0.08, workers: 3, killEveryMs: 4000 } as const satisfies Omit<ChaosOptions, 'log'>;

/** Each worker's message lease (its --lease-seconds): a killed worker's message is back this soon. */
export const WORKER_LEASE_SECONDS = 8;
/** Room for one delivery slowed by the injected faults (Graph delays and timeouts, storage retries). */
const SLOW_DELIVERY_SECONDS = 20;

/**
 * How overdue a run's step must be before the chaos sweeper revives it: the app's own rule
 * (STALL_GRACE_SECONDS outlasts the function timeout), at the chaos run's scale. The grace must
 * outlast what the queue itself makes a step wait: a failed delivery comes back after host.json's
 * visibilityTimeout (30 s), a message held by a worker that was killed after its lease (twice in
 * a row is common at a kill every few seconds), and a delivery slowed by faults. A shorter grace
 * (it was 20 s, below the 30 s redelivery alone) revives runs the queue was about to redeliver,
 * and the revival's write makes a delivery still in flight conflict and throw its step away:
 * three in a row failed healthy runs as Stalled (5 of 500 at rate 0.2).
 */
export function chaosStallGraceSeconds(
  host: Pick<QueueHostOptions, 'visibilityTimeoutSeconds'> = queueHostOptions(),
  leaseSeconds = WORKER_LEASE_SECONDS,
): number {
  return host.visibilityTimeoutSeconds + 2 * leaseSeconds + SLOW_DELIVERY_SECONDS;
}

export function defaultChaosTimeoutSeconds(runs: number): number {
  return 300 + 2 * runs;
}

export interface ChaosReport {
  readonly seed: number;
  readonly runs: number;
  readonly faultRate: number;
  readonly faultsInjected: Record<string, number>;
  readonly workerKills: number;
  readonly timerFailures: number;
  readonly runsSucceeded: number;
  readonly runsFailedWithReason: number;
  readonly failureReasons: Record<string, number>;
  readonly restarts: number;
  readonly revivals: number;
  readonly runsStuck: number;
  readonly incompleteManifests: number;
  readonly duplicateExports: number;
  /** Export keys with no run at the end: every firing for them failed (reported, not a defect by itself). */
  readonly exportsNeverStarted: number;
  /** Graph operations started but never followed (a process died between POST and ledger write). */
  readonly orphanedGraphOperations: number;
  readonly secretsFound: number;
  readonly durationSeconds: number;
}

/** The figures that must be zero. */
export const MUST_BE_ZERO = ['runsStuck', 'incompleteManifests', 'duplicateExports', 'secretsFound'] as const;

/**
 * ISO 4217 codes in use. With the two periods (`last` is last month, `current` this one) and the
 * two attribute sets, each is four distinct ledger keys (see src/core/naming.ts), so every export
 * of a chaos run is a key of its own.
 */
const CURRENCIES = [
  'EUR',
  'USD',
  'GBP',
  'CHF',
  'SEK',
  'NOK',
  'DKK',
  'PLN',
  'CZK',
  'HUF',
  'JPY',
  'AUD',
  'CAD',
  'NZD',
  'SGD',
  'HKD',
  'MXN',
  'BRL',
  'INR',
  'ZAR',
  'ILS',
  'TRY',
  'THB',
  'KRW',
  'AED',
  'AFN',
  'ALL',
  'AMD',
  'AOA',
  'ARS',
  'AWG',
  'AZN',
  'BAM',
  'BBD',
  'BDT',
  'BGN',
  'BHD',
  'BIF',
  'BMD',
  'BND',
  'BOB',
  'BSD',
  'BTN',
  'BWP',
  'BYN',
  'BZD',
  'CDF',
  'CLP',
  'CNY',
  'COP',
  'CRC',
  'CUP',
  'CVE',
  'DJF',
  'DOP',
  'DZD',
  'EGP',
  'ERN',
  'ETB',
  'FJD',
  'FKP',
  'GEL',
  'GHS',
  'GIP',
  'GMD',
  'GNF',
  'GTQ',
  'GYD',
  'HNL',
  'HTG',
  'IDR',
  'IQD',
  'IRR',
  'ISK',
  'JMD',
  'JOD',
  'KES',
  'KGS',
  'KHR',
  'KMF',
  'KWD',
  'KYD',
  'KZT',
  'LAK',
  'LBP',
  'LKR',
  'LRD',
  'LSL',
  'LYD',
  'MAD',
  'MDL',
  'MGA',
  'MKD',
  'MMK',
  'MNT',
  'MOP',
  'MRU',
  'MUR',
  'MVR',
  'MWK',
  'MYR',
  'MZN',
  'NAD',
  'NGN',
  'NIO',
  'NPR',
  'OMR',
  'PAB',
  'PEN',
  'PGK',
  'PHP',
  'PKR',
  'PYG',
  'QAR',
  'RON',
  'RSD',
  'RUB',
  'RWF',
  'SAR',
  'SBD',
  'SCR',
  'SDG',
  'SHP',
  'SLE',
  'SOS',
  'SRD',
  'SSP',
  'STN',
  'SYP',
  'SZL',
  'TJS',
  'TMT',
  'TND',
  'TOP',
  'TTD',
  'TWD',
  'TZS',
  'UAH',
  'UGX',
  'UYU',
  'UZS',
  'VES',
  'VND',
  'VUV',
  'WST',
  'XAF',
  'XCD',
  'XOF',
  'XPF',
  'YER',
  'ZMW',
];
/** The kind every chaos export is of: the timer's. */
const CHAOS_KIND = 'unbilled-usage';
const KEY_SHAPES: ReadonlyArray<{ readonly billingPeriod: BillingPeriod; readonly attributeSet: AttributeSet }> = [
  { billingPeriod: 'last', attributeSet: 'full' },
  { billingPeriod: 'current', attributeSet: 'full' },
  { billingPeriod: 'last', attributeSet: 'basic' },
  { billingPeriod: 'current', attributeSet: 'basic' },
];
export const MAX_CHAOS_RUNS = CURRENCIES.length * KEY_SHAPES.length;
/** Later firings for a key whose earlier firings all failed (the schedule fires on three days). */
const MAX_LATER_FIRINGS = 5;
const LATER_FIRING_INTERVAL_MS = (CLAIM_GRACE_SECONDS / 4) * 1000;
/** Timer firings in flight at once while the exports are started. */
const START_CONCURRENCY = 16;

interface ChaosExport {
  readonly currency: string;
  readonly billingPeriod: BillingPeriod;
  readonly attributeSet: AttributeSet;
}

/** Export i: every currency once in the first shape, then again in the next, and so on. */
function chaosExports(runs: number): ChaosExport[] {
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_CHAOS_RUNS)
    throw new RangeError(`runs is ${runs}: expected a whole number from 1 to ${MAX_CHAOS_RUNS} (distinct export keys)`);
  return Array.from({ length: runs }, (_, index) => ({
    currency: CURRENCIES[index % CURRENCIES.length]!,
    ...KEY_SHAPES[Math.floor(index / CURRENCIES.length)]!,
  }));
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const began = Date.now();
  const random = seededRandom(options.seed);
  const exports = chaosExports(options.runs);
  const currencies = [...new Set(exports.map((e) => e.currency))];
  const timeoutSeconds = options.timeoutSeconds ?? defaultChaosTimeoutSeconds(options.runs);
  const cloud = await startLocalCloud({
    faultProxy: { seed: options.seed },
    graphFaultSeed: options.seed,
    scenario: { fileCount: 3, rowsPerFile: 20, notStartedPolls: 1, runningPolls: 2, retryAfterSeconds: 1 },
  });
  const captured: string[] = [];
  const workers = new Set<ChildProcess>();
  let workerKills = 0;

  try {
    const env: Record<string, string> = {
      ...cloud.settings,
      EXPORT_CURRENCIES: currencies.join(','),
      POLL_QUEUE: 'chaos-polls',
      PARTNER_CONTAINER: 'chaos-exports',
      POLL_INITIAL_DELAY_SECONDS: '1',
      POLL_MAX_DELAY_SECONDS: '2',
      EXPORT_DEADLINE_SECONDS: String(Math.max(60, timeoutSeconds - 60)),
    };
    process.env.IDENTITY_ENDPOINT = env.IDENTITY_ENDPOINT;
    process.env.IDENTITY_HEADER = env.IDENTITY_HEADER;
    const settings = parseSettings(env);
    const deps = createDeps(settings, { graph: { timeoutMs: 3000 } });
    const clients = createStorageClients(settings);
    const context = new InvocationContext({ functionName: 'chaos', logHandler: (_level, ...args) => captured.push(args.map(String).join(' ')) });
    await deps.ready();

    injectFaults(cloud, options.faultRate);

    // Duplicate timer firings: every key is started twice at once (a bounded number of keys at a time).
    let timerFailures = 0;
    const fire = (request: ChaosExport) => startExport({ kind: CHAOS_KIND, ...request, trigger: 'timer' }, deps, context);
    const started = (await mapWithConcurrency(exports, START_CONCURRENCY, (request) => Promise.allSettled([fire(request), fire(request)]))).flat();
    timerFailures = started.filter((outcome) => outcome.status === 'rejected').length;
    const keysOfThisRun = new Set(
      exports.map((request) => exportKeyString({ kind: CHAOS_KIND, billingMonth: billingMonthFor(request.billingPeriod, new Date(began)), ...request })),
    );
    log(`started ${exports.length} exports (${timerFailures} timer firings failed, as they may under faults) in ${Math.round((Date.now() - began) / 1000)} s`);

    const spawnWorker = () => {
      // node with tsx's loader, not the tsx wrapper, which would run the worker in a child
      // process that a SIGKILL of the wrapper leaves running.
      const child = spawn(process.execPath, ['--import', TSX_LOADER, join(ROOT, 'cli', 'main.ts'), 'worker', '--lease-seconds', String(WORKER_LEASE_SECONDS)], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (chunk: Buffer) => captured.push(chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => captured.push(chunk.toString()));
      workers.add(child);
      child.on('exit', () => workers.delete(child));
    };

    const deadline = began + timeoutSeconds * 1000;
    const stallGraceSeconds = chaosStallGraceSeconds();
    // Workers are kept at strength and killed on their own clock, not the ledger loop's, which
    // slows down as the ledger grows.
    let allFinished = false;
    let nextKill = Date.now() + options.killEveryMs * (0.5 + random());
    const supervisor = setInterval(() => {
      if (allFinished) return;
      while (workers.size < options.workers) spawnWorker();
      if (Date.now() >= nextKill) {
        const victim = [...workers][Math.floor(random() * workers.size)]!;
        victim.kill('SIGKILL');
        workers.delete(victim);
        workerKills++;
        nextKill = Date.now() + options.killEveryMs * (0.5 + random());
      }
    }, 100);
    let nextSweep = Date.now() + 5000;
    let nextProgress = Date.now() + 15_000;
    let laterFiringRounds = 0;
    let nextLaterFiring = Date.now() + 5000;
    try {
      for (;;) {
        // The harness reads the ledger through the same faulty storage as the app: a read that
        // fails past the SDK's retries is looked at again, not a reason to stop watching.
        const runs = await chaosRuns(deps, keysOfThisRun).catch((error: unknown) => {
          captured.push(String(error));
          return undefined;
        });
        if (!runs) {
          await new Promise((resolveSleep) => setTimeout(resolveSleep, 1000));
          continue;
        }
        const unstarted = exports.filter(
          (request) =>
            !runs.some(
              (run) =>
                'currency' in run &&
                run.currency === request.currency &&
                run.billingPeriod === request.billingPeriod &&
                run.attributeSet === request.attributeSet,
            ),
        );
        allFinished = unstarted.length === 0 && runs.every(isFinished);
        if (allFinished && workers.size === 0) break;
        if (Date.now() >= nextProgress) {
          log(
            `${Math.round((Date.now() - began) / 1000)} s: ${runs.filter(isFinished).length} of ${exports.length} runs finished, ${workers.size} workers, ${workerKills} killed so far`,
          );
          nextProgress = Date.now() + 15_000;
        }
        if (Date.now() > deadline) break;
        if (Date.now() >= nextSweep) {
          // The sweeper as its timer would run it, with a grace that fits the chaos run's scale.
          await reviveStalledRuns(deps, context, stallGraceSeconds).catch((error: unknown) => captured.push(String(error)));
          nextSweep = Date.now() + 5000;
        }
        // A key whose firings all failed is started by a later firing, as the schedule's later
        // days would; spaced past the grace a crashed start's claim on the key is given.
        if (unstarted.length > 0 && laterFiringRounds < MAX_LATER_FIRINGS && Date.now() >= nextLaterFiring) {
          laterFiringRounds++;
          const again = await mapWithConcurrency(unstarted, START_CONCURRENCY, (request) =>
            fire(request).then(
              () => true,
              () => false,
            ),
          );
          timerFailures += again.filter((ok) => !ok).length;
          nextLaterFiring = Date.now() + LATER_FIRING_INTERVAL_MS;
        }
        // Listing the ledger is the loop's cost: look less often when there are many runs.
        await new Promise((resolveSleep) => setTimeout(resolveSleep, Math.min(1000, 250 + runs.length)));
      }
    } finally {
      clearInterval(supervisor);
    }
    for (const child of workers) child.kill('SIGKILL');

    cloud.billing.faults.clear();
    cloud.proxy!.clearRules();
    const runs = await chaosRuns(deps, keysOfThisRun);
    const keys = new Map<string, Run[]>();
    for (const run of runs) keys.set(exportKeyString(run), [...(keys.get(exportKeyString(run)) ?? []), run]);
    const failed = runs.filter((run) => run.state === 'failed');
    const failureReasons: Record<string, number> = {};
    for (const run of failed) failureReasons[run.errorCode ?? 'unknown'] = (failureReasons[run.errorCode ?? 'unknown'] ?? 0) + 1;

    // One text to search: with hundreds of runs, per-chunk searches would be secrets × chunks.
    const everything = [
      ...captured,
      JSON.stringify(await deps.ledger.listRuns()),
      ...(await queueTexts(clients.queueService, settings.pollQueue)),
      ...(await destinationTexts(clients.destinationContainer)),
    ].join('\n');
    const secrets = new Set([...cloud.authority.issued(), ...cloud.billing.sasSignatures(), ...cloud.billing.sasSignatures().map(encodeURIComponent)]);
    const secretsFound = [...secrets].filter((secret) => everything.includes(secret)).length;

    const graphFaults = cloud.billing.faults.injected();
    const storageFaults = cloud.proxy!.injected();
    const faultsInjected: Record<string, number> = {};
    for (const fault of graphFaults) bump(faultsInjected, `graph ${fault.endpoint} ${fault.kind}${fault.detail ? ` ${fault.detail}` : ''}`);
    for (const fault of storageFaults) bump(faultsInjected, `storage ${fault.service} ${fault.kind}`);
    bump(faultsInjected, 'worker killed', workerKills);

    const expectedOperations = runs.reduce((sum, run) => sum + 1 + (run.restarts ?? 0), 0);
    return {
      seed: options.seed,
      runs: exports.length,
      faultRate: options.faultRate,
      faultsInjected,
      workerKills,
      timerFailures,
      runsSucceeded: runs.filter((run) => run.state === 'succeeded').length,
      runsFailedWithReason: failed.filter((run) => Boolean(run.errorCode && run.errorMessage)).length,
      failureReasons,
      restarts: runs.reduce((sum, run) => sum + (run.restarts ?? 0), 0),
      revivals: runs.reduce((sum, run) => sum + (run.revivals ?? 0), 0),
      runsStuck: runs.filter((run) => !isFinished(run)).length + failed.filter((run) => !run.errorCode || !run.errorMessage).length,
      incompleteManifests: await incompleteManifests(clients.destinationContainer),
      duplicateExports: [...keys.values()].reduce((sum, keyRuns) => sum + Math.max(0, keyRuns.length - 1), 0),
      exportsNeverStarted: exports.length - keys.size,
      orphanedGraphOperations: Math.max(0, cloud.billing.exports().length - expectedOperations),
      secretsFound,
      durationSeconds: Math.round((Date.now() - began) / 100) / 10,
    };
  } finally {
    for (const child of workers) child.kill('SIGKILL');
    await cloud.stop();
  }
}

function injectFaults(cloud: Awaited<ReturnType<typeof startLocalCloud>>, rate: number): void {
  const graph: GraphFaultRule[] = [
    { endpoint: 'export', fault: { kind: 'status', status: 429, retryAfterSeconds: 1 }, probability: rate },
    { endpoint: 'export', fault: { kind: 'reset' }, probability: rate / 2 },
    { endpoint: 'operation', fault: { kind: 'status', status: 503, retryAfterSeconds: 1, retryAfterAsDate: true }, probability: rate },
    { endpoint: 'operation', fault: { kind: 'reset' }, probability: rate / 2 },
    { endpoint: 'operation', fault: { kind: 'delay', ms: 4000 }, probability: rate / 2 },
    { endpoint: 'operation', fault: { kind: 'status', status: 410 }, probability: rate / 4 },
    { endpoint: 'operation', fault: { kind: 'malformedJson' }, probability: rate / 8 },
    { endpoint: 'manifest', fault: { kind: 'expiredSas' }, probability: rate * 2 },
    { endpoint: 'manifest', fault: { kind: 'status', status: 503, retryAfterSeconds: 1 }, probability: rate },
    { endpoint: 'manifest', fault: { kind: 'manifest', defect: 'missingBlob' }, probability: rate / 8 },
  ];
  graph.forEach((rule) => cloud.billing.faults.add(rule));
  const storage: FaultRule[] = [
    { service: 'queue', fault: { kind: 'reset' }, probability: rate / 2 },
    { service: 'queue', fault: { kind: 'status', status: 503, retryAfterSeconds: 1 }, probability: rate / 2 },
    { service: 'table', fault: { kind: 'reset' }, probability: rate / 2 },
    { service: 'table', fault: { kind: 'status', status: 500 }, probability: rate / 2 },
    { service: 'blob', fault: { kind: 'status', status: 503 }, probability: rate / 2 },
    { service: 'blob', fault: { kind: 'delay', ms: 300 }, probability: rate },
  ];
  storage.forEach((rule) => cloud.proxy!.addRule(rule));
}

async function chaosRuns(deps: ReturnType<typeof createDeps>, keys: ReadonlySet<string>): Promise<Run[]> {
  return (await deps.ledger.listRuns()).filter((run) => keys.has(exportKeyString(run)));
}

/** Every manifest.json must list only files that are there with the listed size. */
async function incompleteManifests(container: ReturnType<typeof createStorageClients>['destinationContainer']): Promise<number> {
  const sizes = new Map<string, number>();
  for await (const blob of container.listBlobsFlat()) sizes.set(blob.name, blob.properties.contentLength ?? -1);
  let incomplete = 0;
  for (const name of sizes.keys()) {
    if (!name.endsWith(MANIFEST_FILE_NAME)) continue;
    const folder = name.slice(0, -MANIFEST_FILE_NAME.length);
    const manifest = JSON.parse((await container.getBlobClient(name).downloadToBuffer()).toString('utf8')) as {
      blobCount: number;
      blobs: Array<{ name: string; byteCount: number }>;
    };
    const complete = manifest.blobs.length === manifest.blobCount && manifest.blobs.every((blob) => sizes.get(`${folder}${blob.name}`) === blob.byteCount);
    if (!complete) incomplete++;
  }
  return incomplete;
}

async function queueTexts(service: ReturnType<typeof createStorageClients>['queueService'], queueName: string): Promise<string[]> {
  const texts: string[] = [];
  for (const name of [queueName, poisonQueueName(queueName)]) {
    const queue = service.getQueueClient(name);
    for (let batch = 0; batch < 50; batch++) {
      const { receivedMessageItems: messages } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
      if (messages.length === 0) break;
      for (const message of messages) texts.push(message.messageText, Buffer.from(message.messageText, 'base64').toString('utf8'));
    }
  }
  return texts;
}

async function destinationTexts(container: ReturnType<typeof createStorageClients>['destinationContainer']): Promise<string[]> {
  const texts: string[] = [];
  for await (const blob of container.listBlobsFlat({ includeMetadata: true })) {
    texts.push(blob.name, JSON.stringify(blob.metadata ?? {}));
    if (blob.name.endsWith('.json')) texts.push((await container.getBlobClient(blob.name).downloadToBuffer()).toString('utf8'));
  }
  return texts;
}

function bump(counts: Record<string, number>, key: string, by = 1): void {
  if (by > 0) counts[key] = (counts[key] ?? 0) + by;
}
