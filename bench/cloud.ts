/**
 * A local cloud for a figure or a repetition (a fresh Azurite frees its in-memory store, and
 * Azurite slows down with every blob it holds), the app settings that point the measured process
 * at it, and direct access to the export's files.
 */
import { randomUUID } from 'node:crypto';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { ExportRecord } from '../emulator/billingEmulator';
import type { BillingScenario } from '../emulator/billingScenario';
import { EXPORT_CONTAINERS, readListSas } from '../emulator/exportFiles';
import { BILLING_SOURCE_ACCOUNT, PARTNER_ACCOUNT, startLocalCloud, type LocalCloud } from '../emulator/localCloud';
import { mapWithConcurrency } from '../src/concurrency';

/** Currencies for runs that must not share a ledger key (concurrent runs of one figure). */
export const CURRENCIES = [
  'EUR',
  'USD',
  'GBP',
  'JPY',
  'AUD',
  'CAD',
  'CHF',
  'DKK',
  'NOK',
  'SEK',
  'NZD',
  'BRL',
  'INR',
  'PLN',
  'CZK',
  'HUF',
  'ZAR',
  'SGD',
  'HKD',
  'MXN',
] as const;

export async function withCloud<T>(scenario: Partial<BillingScenario>, body: (cloud: LocalCloud) => Promise<T>): Promise<T> {
  const cloud = await startLocalCloud({ scenario });
  try {
    return await body(cloud);
  } finally {
    await cloud.stop();
  }
}

/** App settings for one measured app: its own queue and destination container, short poll delays. */
export function appEnv(cloud: LocalCloud, currency: string, overrides: Record<string, string> = {}): Record<string, string> {
  const suffix = randomUUID().slice(0, 8);
  return {
    ...cloud.settings,
    EXPORT_CURRENCIES: currency,
    POLL_QUEUE: `bench-${suffix}`,
    PARTNER_CONTAINER: `bench-${suffix}`,
    // The settings' minimum; polling is figure 4's subject, here it should not hide the landing.
    POLL_INITIAL_DELAY_SECONDS: '1',
    POLL_MAX_DELAY_SECONDS: '1',
    ...overrides,
  };
}

/** The export the emulator made for operation `operationId` (by default its latest export). */
export function exportRecord(cloud: LocalCloud, operationId?: string): ExportRecord {
  const records = cloud.billing.exports();
  const record = operationId ? records.find((candidate) => candidate.operationId === operationId) : records[records.length - 1];
  if (!record) throw new Error(`the billing emulator has no export${operationId ? ` ${operationId}` : ''}`);
  return record;
}

/** The source account's container of the export's kind (the emulator keeps one per kind, as Graph does). */
function sourceContainer(cloud: LocalCloud, record: ExportRecord): ContainerClient {
  const credential = new StorageSharedKeyCredential(BILLING_SOURCE_ACCOUNT, cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT));
  return new ContainerClient(`${cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT)}/${EXPORT_CONTAINERS[record.kind]}`, credential);
}

/** Each file's URL with a read SAS, as the app builds them from the manifest. */
export function sourceUrls(cloud: LocalCloud, record: ExportRecord): string[] {
  const credential = new StorageSharedKeyCredential(BILLING_SOURCE_ACCOUNT, cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT));
  const sas = readListSas(credential, EXPORT_CONTAINERS[record.kind], new Date(Date.now() + 6 * 3600_000));
  return record.blobNames.map((name) => `${record.rootDirectory}/${name}?${sas}`);
}

export function partnerConnectionString(cloud: LocalCloud): string {
  return cloud.azurite.connectionString(PARTNER_ACCOUNT);
}

/** Deletes an export's files and a destination container, so Azurite can free their memory. */
export async function freeExport(cloud: LocalCloud, record: ExportRecord, destinationContainers: readonly string[]): Promise<void> {
  const source = sourceContainer(cloud, record);
  const prefix = `${new URL(record.rootDirectory).pathname.split(`/${EXPORT_CONTAINERS[record.kind]}/`)[1]}/`;
  const names: string[] = [];
  for await (const blob of source.listBlobsFlat({ prefix })) names.push(blob.name);
  await mapWithConcurrency(names, 16, (name) => source.deleteBlob(name).then(() => undefined));
  const partner = new StorageSharedKeyCredential(PARTNER_ACCOUNT, cloud.azurite.accountKey(PARTNER_ACCOUNT));
  for (const name of destinationContainers) await new ContainerClient(`${cloud.azurite.blobEndpoint(PARTNER_ACCOUNT)}/${name}`, partner).deleteIfExists();
}
