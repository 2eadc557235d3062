/**
 * Everything a handler needs, built once per process from the settings. Handlers take this as
 * an argument, so the CLI drives exactly the code the Functions host runs.
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { createDestination, type Destination } from './adapters/destination';
import { createGraphClient, type GraphClient, type GraphClientOptions } from './adapters/graph';
import { createLedger, type Ledger } from './adapters/ledger';
import { createPollQueue, type PollQueue } from './adapters/pollQueue';
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
  /** A landing's claim on its run lasts this long unless renewed (default LANDING_CLAIM_SECONDS in ./core/run). */
  readonly landingClaimSeconds?: number;
  /** Creates the queues, table and container on first use; memoised per process. */
  readonly ready: () => Promise<void>;
}

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
  /** How long one landing waits for copies pending at the service (default COPY_TIMEOUT_MS in ./adapters/deadline). */
  readonly copyTimeoutMs?: number;
  /** See Deps.landingClaimSeconds. */
  readonly landingClaimSeconds?: number;
}

export function createDeps(settings: Settings, overrides: DepsOptions = {}): Deps {
  const clients = createStorageClients(settings);
  const timeouts = overrides.storageCallTimeoutMs === undefined ? {} : { callTimeoutMs: overrides.storageCallTimeoutMs };
  const queue = createPollQueue(clients.queueService, settings.pollQueue, timeouts);
  const ledger = createLedger(clients.ledgerTable, timeouts);
  const destination = createDestination(clients.destinationContainer, { ...timeouts, ...(overrides.copyTimeoutMs === undefined ? {} : { copyTimeoutMs: overrides.copyTimeoutMs }) });
  let readiness: Promise<void> | undefined;
  return {
    settings,
    graph: createGraphClient({ ...overrides.graph, baseUrl: settings.graphBaseUrl, credential: overrides.graphCredential ?? new DefaultAzureCredential() }),
    queue,
    ledger,
    destination,
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
