/**
 * SDK clients for the two storage accounts, built from the same connection settings the
 * Functions host uses: a connection string, or service URIs with a managed identity. With
 * `__credential=managedidentity` the host uses ManagedIdentityCredential, so this does too;
 * otherwise DefaultAzureCredential (a developer's Azure CLI login works locally). Either way a
 * user-assigned identity is named by `__clientId` or `__managedIdentityResourceId`, as the
 * host's ClientFactory passes them on.
 */
import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import type { Settings, StorageConnection } from '../core/settings';

export const LEDGER_TABLE = 'BillingExportRuns';

/**
 * The SDKs' own retries of throttling, 5xx and dropped connections: four tries, backing off from
 * half a second, so they fit well inside a call's deadline (./deadline); longer trouble is
 * retried by the layers above.
 */
const retryOptions = { maxTries: 4, retryDelayInMs: 500, maxRetryDelayInMs: 8000 };
const tableOptions = {
  retryOptions: { maxRetries: retryOptions.maxTries - 1, retryDelayInMs: retryOptions.retryDelayInMs, maxRetryDelayInMs: retryOptions.maxRetryDelayInMs },
};

export interface StorageClients {
  readonly queueService: QueueServiceClient;
  readonly ledgerTable: TableClient;
  readonly destinationContainer: ContainerClient;
}

export function createStorageClients(settings: Settings): StorageClients {
  const app = settings.appStorage;
  return {
    queueService:
      app.kind === 'connectionString'
        ? QueueServiceClient.fromConnectionString(app.connectionString, { retryOptions })
        : new QueueServiceClient(app.queueServiceUri!, credentialFor(app), { retryOptions }),
    ledgerTable:
      app.kind === 'connectionString'
        ? TableClient.fromConnectionString(app.connectionString, LEDGER_TABLE, {
            ...tableOptions,
            allowInsecureConnection: usesPlainHttp(app.connectionString),
          })
        : new TableClient(app.tableServiceUri!, LEDGER_TABLE, credentialFor(app), tableOptions),
    destinationContainer: destinationContainerFor(settings),
  };
}

/** The partner's destination container alone: what a data check thread (../dataCheckWorker.ts) needs. */
export function destinationContainerFor(settings: Pick<Settings, 'partnerStorage' | 'partnerContainer'>): ContainerClient {
  const partner = settings.partnerStorage;
  return (
    partner.kind === 'connectionString'
      ? BlobServiceClient.fromConnectionString(partner.connectionString, { retryOptions })
      : new BlobServiceClient(partner.blobServiceUri!, credentialFor(partner), { retryOptions })
  ).getContainerClient(settings.partnerContainer);
}

export function credentialFor(connection: Extract<StorageConnection, { kind: 'identity' }>): TokenCredential {
  const { clientId, resourceId } = connection;
  if (connection.credential === 'managedidentity') {
    if (resourceId) return new ManagedIdentityCredential({ resourceId });
    return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
  }
  if (resourceId) return new DefaultAzureCredential({ managedIdentityResourceId: resourceId });
  return new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {});
}

/** Azurite and other local emulators speak plain http; the SDK refuses that unless told. */
function usesPlainHttp(connectionString: string): boolean {
  return /UseDevelopmentStorage=true|Endpoint=http:\/\/|DefaultEndpointsProtocol=http;/i.test(connectionString);
}
