/**
 * The app wired to a local cloud (real Azurite, identity endpoint and billing emulator), with
 * every log line captured. Each app gets its own queue and container, so tests in one file
 * share the cloud without seeing each other's messages.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { createStorageClients, type StorageClients } from '../../src/adapters/storageClients';
import type { UnbilledStartRequest } from '../../src/core/run';
import { parseSettings } from '../../src/core/settings';
import { createDeps, type Deps, type DepsOptions } from '../../src/deps';
import { runWorker, type WorkerOptions, type WorkerResult } from '../../emulator/queueHost';
import type { LocalCloud } from '../../emulator/localCloud';

export interface TestApp {
  readonly deps: Deps;
  readonly clients: StorageClients;
  readonly logs: string[];
  context(functionName?: string): InvocationContext;
  work(options?: WorkerOptions): Promise<WorkerResult>;
}

/** Worker settings like host.json's, with no waiting between failed deliveries. */
export const fastHost = { maxDequeueCount: 5, visibilityTimeoutSeconds: 0, leaseSeconds: 60, batchSize: 8, idlePollMs: 50 };

/** The timer trigger's argument, as the host passes it on schedule. */
export const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

/** A CLI start of the last month's unbilled usage in `currency`, full attributes, with `overrides`. */
export function unbilledRequest(currency: string, overrides: Partial<UnbilledStartRequest> = {}): UnbilledStartRequest {
  return { kind: 'unbilled-usage', currency, billingPeriod: 'last', attributeSet: 'full', trigger: 'cli', ...overrides };
}

export function createTestApp(cloud: LocalCloud, overrides: Record<string, string> = {}, options: DepsOptions = {}): TestApp {
  process.env.IDENTITY_ENDPOINT = cloud.settings.IDENTITY_ENDPOINT;
  process.env.IDENTITY_HEADER = cloud.settings.IDENTITY_HEADER;
  const suffix = randomUUID().slice(0, 8);
  const settings = parseSettings({
    ...cloud.settings,
    EXPORT_CURRENCIES: 'EUR',
    POLL_QUEUE: `polls-${suffix}`,
    PARTNER_CONTAINER: `exports-${suffix}`,
    POLL_INITIAL_DELAY_SECONDS: '1',
    POLL_MAX_DELAY_SECONDS: '1',
    ...overrides,
  });
  const deps = createDeps(settings, options);
  const clients = createStorageClients(settings);
  const logs: string[] = [];
  const context = (functionName = 'test') =>
    new InvocationContext({ functionName, logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(' ')}`) });
  return {
    deps,
    clients,
    logs,
    context,
    work: (options = {}) => runWorker(deps, clients.queueService, { host: fastHost, onLog: (level, line) => logs.push(`${level}: ${line}`), ...options }),
  };
}

export async function readBlob(app: TestApp, path: string): Promise<Buffer> {
  return app.clients.destinationContainer.getBlobClient(path).downloadToBuffer();
}

export async function listBlobs(app: TestApp): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of app.clients.destinationContainer.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}
