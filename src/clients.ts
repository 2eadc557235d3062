/**
 * The SDK side of the composition root: the Azure SDK clients and the adapters over them,
 * built from the settings. ./deps.ts imports this module on first use, so a cold start
 * registers the functions without loading the Azure SDKs (scripts/bundle.mjs ships it as its
 * own file, dist/clients.js).
 */
import { DefaultAzureCredential } from '@azure/identity';
import type { DataFiles } from './adapters/dataFile';
import { createDestination, type Destination } from './adapters/destination';
import { createFileChecks, type FileChecks } from './adapters/fileChecks';
import { createGraphClient, type GraphClient } from './adapters/graph';
import { createLedger, type Ledger } from './adapters/ledger';
import { createSeenEvents, type SeenEvents } from './adapters/seenEvents';
import { createPollQueue, type PollQueue } from './adapters/pollQueue';
import { createStorageClients } from './adapters/storageClients';
import { createDataCheckThreads } from './dataCheckThreads';
import type { Settings } from './core/settings';
import type { DepsOptions } from './deps';

export interface Clients {
  readonly graph: GraphClient;
  readonly queue: PollQueue;
  readonly ledger: Ledger;
  readonly destination: Destination;
  readonly dataFiles: DataFiles;
  readonly fileChecks: FileChecks;
  readonly seenEvents: SeenEvents;
}

export function createClients(settings: Settings, overrides: DepsOptions = {}): Clients {
  const clients = createStorageClients(settings);
  const timeouts = overrides.storageCallTimeoutMs === undefined ? {} : { callTimeoutMs: overrides.storageCallTimeoutMs };
  return {
    graph: createGraphClient({
      ...overrides.graph,
      baseUrl: settings.graphBaseUrl,
      tokenScope: settings.graphTokenScope,
      credential: overrides.graphCredential ?? new DefaultAzureCredential(),
    }),
    queue: createPollQueue(clients.queueService, settings.pollQueue, timeouts),
    ledger: createLedger(clients.ledgerTable, timeouts),
    destination: createDestination(clients.destinationContainer, {
      ...timeouts,
      ...(overrides.copyTimeoutMs === undefined ? {} : { copyTimeoutMs: overrides.copyTimeoutMs }),
    }),
    dataFiles: createDataCheckThreads(settings, overrides.storageCallTimeoutMs === undefined ? {} : { idleTimeoutMs: overrides.storageCallTimeoutMs }),
    fileChecks: createFileChecks(clients.ledgerTable, timeouts),
    seenEvents: createSeenEvents(clients.ledgerTable, timeouts),
  };
}
