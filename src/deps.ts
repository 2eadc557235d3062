/**
 * Everything a handler needs, built once per process from the settings. Handlers take this as
 * an argument, so the CLI drives exactly the code the Functions host runs.
 */
import type { InvocationContext } from '@azure/functions';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { rootCertificates } from 'node:tls';
import { createDestination, type Destination } from './adapters/destination';
import { createGraphClient, type GraphClient, type GraphClientOptions } from './adapters/graph';
import { createLedger, type Ledger } from './adapters/ledger';
import { createSignatureVerifier, type SignatureVerifier } from './adapters/partnerCenterSignature';
import { createPollQueue, type PollQueue } from './adapters/pollQueue';
import { createSeenEvents, type SeenEvents } from './adapters/seenEvents';
import { createStorageClients } from './adapters/storageClients';
import type { Settings } from './core/settings';
import { consoleTelemetry, createAzureMonitorTelemetry, type Telemetry } from './telemetry';

export interface Deps {
  readonly settings: Settings;
  readonly graph: GraphClient;
  readonly queue: PollQueue;
  readonly ledger: Ledger;
  readonly destination: Destination;
  readonly telemetry: Telemetry;
  readonly now: () => Date;
  readonly random: () => number;
  /** Creates the queues, table and container on first use; memoised per process. */
  readonly ready: () => Promise<void>;
  /** Partner Center webhook intake (./functions/invoiceEvents). */
  readonly webhookSignature: SignatureVerifier;
  readonly seenEvents: SeenEvents;
  readonly startBilledExports: StartBilledExports;
}

/** Starts the billed exports (billed usage, billed reconciliation) of one invoice. */
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
  /** Trust anchors (PEM) for Partner Center's signing certificate; default Node's root store. */
  readonly webhookTrustedRoots?: readonly string[];
  readonly startBilledExports?: StartBilledExports;
}

export function createDeps(settings: Settings, overrides: DepsOptions = {}): Deps {
  const clients = createStorageClients(settings);
  const timeouts = overrides.storageCallTimeoutMs === undefined ? {} : { callTimeoutMs: overrides.storageCallTimeoutMs };
  const queue = createPollQueue(clients.queueService, settings.pollQueue, timeouts);
  const ledger = createLedger(clients.ledgerTable, timeouts);
  const destination = createDestination(clients.destinationContainer, timeouts);
  const webhookSignature = createSignatureVerifier({ certificateHosts: settings.webhookCertificateHosts, trustedRoots: overrides.webhookTrustedRoots ?? rootCertificates });
  let readiness: Promise<void> | undefined;
  return {
    settings,
    graph: createGraphClient({ ...overrides.graph, baseUrl: settings.graphBaseUrl, credential: overrides.graphCredential ?? new DefaultAzureCredential() }),
    queue,
    ledger,
    destination,
    telemetry: overrides.telemetry ?? telemetryFor(settings),
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
    seenEvents: createSeenEvents(clients.ledgerTable, timeouts),
    // Until the billed export engine is wired here, an event is verified, deduplicated and logged.
    startBilledExports:
      overrides.startBilledExports ??
      ((invoiceId, context) => {
        context.log(`invoice ready: would start billed exports for ${invoiceId}`);
        return Promise.resolve();
      }),
  };
}

function telemetryFor(settings: Settings): Telemetry {
  const insights = settings.applicationInsights;
  if (!insights) return consoleTelemetry;
  const clientId = insights.entraId?.clientId;
  return createAzureMonitorTelemetry({
    connectionString: insights.connectionString,
    ...(insights.entraId ? { credential: clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential() } : {}),
  });
}
