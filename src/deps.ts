/**
 * Everything a handler needs, built once per process from the settings. Handlers take this as
 * an argument, so the CLI drives exactly the code the Functions host runs.
 *
 * The Azure SDK clients (./clients.ts) and the Application Insights exporter (./azureMonitor.ts)
 * are imported on first use: the SDKs are most of the code, and a cold start that only
 * registers the functions should not have to load them. Every call on the clients waits for
 * that import; only `destination.url` is synchronous (see below).
 */
import type { InvocationContext } from '@azure/functions';
import type { TokenCredential } from '@azure/identity';
import type { DataFiles } from './adapters/dataFile';
import type { Destination } from './adapters/destination';
import type { FileChecks } from './adapters/fileChecks';
import type { GraphClient, GraphClientOptions } from './adapters/graph';
import type { Ledger } from './adapters/ledger';
import { createSignatureVerifier, type SignatureVerifier } from './adapters/partnerCenterSignature';
import type { PollQueue } from './adapters/pollQueue';
import type { SeenEvents } from './adapters/seenEvents';
import type { Clients } from './clients';
import { createSlots, type Slots } from './concurrency';
import { FILE_CHECKS_PER_PROCESS, FILE_CHECK_SLOT_WAIT_SECONDS } from './core/policy';
import { startInvoiceExports } from './functions/startExport';
import { rootCertificates } from 'node:tls';
import type { Settings } from './core/settings';
import { consoleTelemetry, deferredTelemetry, type Telemetry } from './telemetry';

export interface Deps {
  readonly settings: Settings;
  readonly graph: GraphClient;
  readonly queue: PollQueue;
  readonly ledger: Ledger;
  readonly destination: Destination;
  /** Landed files read back for the data check (and their Parquet copies). */
  readonly dataFiles: DataFiles;
  /** The data check's per-file rows and merged figures, in the ledger's table. */
  readonly fileChecks: FileChecks;
  /** This process's file checks at once (FILE_CHECKS_PER_PROCESS), and how long one waits for its turn. */
  readonly fileCheckSlots: { readonly slots: Slots; readonly waitMs: number };
  readonly telemetry: Telemetry;
  readonly now: () => Date;
  readonly random: () => number;
  /** A landing's claim on its run lasts this long unless renewed (default LANDING_CLAIM_SECONDS in ./core/run). */
  readonly landingClaimSeconds?: number;
  /** Creates the queues, table and container on first use; memoised per process. */
  readonly ready: () => Promise<void>;
  /** Partner Center webhook intake (./functions/invoiceEvents). */
  readonly webhookSignature: SignatureVerifier;
  readonly seenEvents: SeenEvents;
  readonly startBilledExports: StartBilledExports;
}

/** Starts the billed exports of one invoice (each kind of BILLED_EXPORT_KINDS). */
export type StartBilledExports = (invoiceId: string, context: InvocationContext) => Promise<void>;

/**
 * The Graph token comes from the managed identity: DefaultAzureCredential picks it up in Azure
 * (IDENTITY_ENDPOINT, honouring AZURE_CLIENT_ID for a user-assigned identity), locally from the
 * emulated identity endpoint, or from a developer's Azure CLI login.
 */
export interface DepsOptions {
  readonly graphCredential?: TokenCredential;
  /** Timeouts and in-process retries of Graph calls (defaults in createGraphClient). */
  readonly graph?: Pick<GraphClientOptions, 'timeoutMs' | 'attempts' | 'maxInProcessWaitSeconds'>;
  readonly telemetry?: Telemetry;
  /** Deadline of each storage call (default in ./adapters/deadline). */
  readonly storageCallTimeoutMs?: number;
  /** How long one landing waits for copies pending at the service (default COPY_TIMEOUT_MS in ./core/policy). */
  readonly copyTimeoutMs?: number;
  /** See Deps.landingClaimSeconds. */
  readonly landingClaimSeconds?: number;
  /** How long a file check waits for its turn in this process (default FILE_CHECK_SLOT_WAIT_SECONDS in ./core/policy). */
  readonly fileCheckSlotWaitMs?: number;
  /** Trust anchors (PEM) for Partner Center's signing certificate; default Node's root store. */
  readonly webhookTrustedRoots?: readonly string[];
  readonly startBilledExports?: StartBilledExports;
}

export function createDeps(settings: Settings, overrides: DepsOptions = {}): Deps {
  let clients: Clients | undefined;
  let loading: Promise<Clients> | undefined;
  const loaded = (): Promise<Clients> =>
    (loading ??= import('./clients.js')
      .then((module) => (clients = module.createClients(settings, overrides)))
      .catch((error: unknown) => {
        loading = undefined; // try again on the next call
        throw error;
      }));
  const queue: PollQueue = { name: settings.pollQueue, ...onFirstUse(() => loaded().then((c) => c.queue), ['ensure', 'send', 'sendToPoison']) };
  const ledger: Ledger = onFirstUse(() => loaded().then((c) => c.ledger), ['ensure', 'getRun', 'latestForKey', 'createRun', 'saveRun', 'listRuns']);
  const destination: Destination = {
    containerName: settings.partnerContainer,
    ...onFirstUse(() => loaded().then((c) => c.destination), ['ensure', 'sourceFacts', 'listFolder', 'startCopy', 'settleFolder', 'createJson', 'replaceJson']),
    // A blob's URL needs the storage client, so it is there once any storage call has been made,
    // as it has for every run read from the ledger.
    url(blobPath) {
      if (!clients) throw new Error(`The URL of '${blobPath}' was asked for before the storage clients were loaded: await deps.ready() first`);
      return clients.destination.url(blobPath);
    },
  };
  const webhookSignature = createSignatureVerifier({
    certificateHosts: settings.webhookCertificateHosts,
    trustedRoots: overrides.webhookTrustedRoots ?? rootCertificates,
  });
  let readiness: Promise<void> | undefined;
  const deps: Deps = {
    settings,
    graph: onFirstUse(() => loaded().then((c) => c.graph), ['startExport', 'get']),
    queue,
    ledger,
    destination,
    dataFiles: onFirstUse(() => loaded().then((c) => c.dataFiles), ['checkFile']),
    fileChecks: onFirstUse(
      () => loaded().then((c) => c.fileChecks),
      ['readPlan', 'savePlan', 'listFiles', 'getFile', 'planFiles', 'markDone', 'noteAttempt', 'lastProgressAt', 'anyPending', 'saveSummary', 'readSummary'],
    ),
    fileCheckSlots: { slots: createSlots(FILE_CHECKS_PER_PROCESS), waitMs: overrides.fileCheckSlotWaitMs ?? FILE_CHECK_SLOT_WAIT_SECONDS * 1000 },
    telemetry: overrides.telemetry ?? telemetryFor(settings),
    ...(overrides.landingClaimSeconds === undefined ? {} : { landingClaimSeconds: overrides.landingClaimSeconds }),
    now: () => new Date(),
    random: Math.random,
    ready: () => {
      readiness ??= Promise.all([queue.ensure(), ledger.ensure(), destination.ensure()]).then(
        () => undefined,
        (error: unknown) => {
          readiness = undefined; // try again on the next invocation
          throw error;
        },
      );
      return readiness;
    },
    webhookSignature,
    seenEvents: onFirstUse(() => loaded().then((c) => c.seenEvents), ['claim', 'markStarted', 'release']),
    // An invoice-ready event starts each kind of BILLED_EXPORT_KINDS; the ledger key makes a replay start nothing.
    startBilledExports:
      overrides.startBilledExports ??
      (async (invoiceId, context) => {
        await startInvoiceExports(invoiceId, deps, context, { trigger: 'event' });
      }),
  };
  return deps;
}

/** The asynchronous methods of T. */
type AsyncMethod<T> = { [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof T];

/** The methods `names` of what `load` resolves to, each calling it once loaded. */
function onFirstUse<T, K extends AsyncMethod<T>>(load: () => Promise<T>, names: readonly K[]): Pick<T, K> {
  const methods: Partial<Record<K, (...args: unknown[]) => Promise<unknown>>> = {};
  for (const name of names) {
    methods[name] = async (...args) => {
      const target = await load();
      return (target[name] as (...args: unknown[]) => Promise<unknown>).apply(target, args);
    };
  }
  return methods as unknown as Pick<T, K>;
}

function telemetryFor(settings: Settings): Telemetry {
  const insights = settings.applicationInsights;
  if (!insights) return consoleTelemetry;
  return deferredTelemetry(() => import('./azureMonitor.js').then((module) => module.azureMonitorTelemetryFor(insights)));
}
