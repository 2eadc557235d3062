/**
 * Everything the app talks to, on loopback: Azurite (the app's own storage, the partner's
 * destination account and Microsoft's export account), a managed-identity endpoint, and the
 * Graph partner billing emulator; plus the app settings that point the app at them.
 */
import { randomBytes } from 'node:crypto';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from './azurite';
import { startBillingEmulator, type BillingEmulator, type BillingScenario } from './billingEmulator';
import { startFaultProxy, type FaultProxy } from './faultProxy';
import { LOOPBACK_HOST } from './httpServer';
import { startIdentityEndpoint } from './identityEndpoint';
import { createTokenAuthority, type TokenAuthority } from './tokens';

/** The partner's storage account, where the app copies the exported files. */
export const PARTNER_ACCOUNT = 'partnerdest';
/** The "Microsoft side" account the billing emulator exports into. */
export const BILLING_SOURCE_ACCOUNT = 'msbilling';

/** The app settings for running the app against the local cloud. */
export interface LocalCloudSettings extends Record<string, string> {
  GRAPH_BASE_URL: string;
  AzureWebJobsStorage: string;
  PARTNER_STORAGE: string;
  EXPORT_SOURCE_HOSTS: string;
  IDENTITY_ENDPOINT: string;
  IDENTITY_HEADER: string;
}

export interface LocalCloud {
  azurite: Azurite;
  authority: TokenAuthority;
  identity: { endpoint: string; header: string };
  billing: BillingEmulator;
  /** Present when started with `faultProxy`: the app's storage calls go through it. */
  proxy?: FaultProxy;
  settings: LocalCloudSettings;
  /** Stops the billing emulator, the identity endpoint and Azurite. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface LocalCloudOptions {
  scenario?: Partial<BillingScenario>;
  /** The billing emulator's clock (see BillingEmulatorOptions.now). */
  now?: () => Date;
  /**
   * Route the app's storage (AzureWebJobsStorage, PARTNER_STORAGE) through a fault-injecting
   * proxy. The billing emulator keeps writing to Azurite directly, as the "Microsoft side".
   */
  faultProxy?: boolean | { seed?: number };
  /** Seed of the billing emulator's probabilistic fault rules. */
  graphFaultSeed?: number;
}

export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const started: Array<{ stop(): Promise<void> }> = [];
  let stopping: Promise<void> | undefined;
  // One at a time, newest first: the billing emulator may still be uploading into Azurite.
  const stopAll = (): Promise<void> => {
    stopping ??= (async () => {
      const failures: unknown[] = [];
      for (const service of [...started].reverse()) {
        await service.stop().catch((error: unknown) => failures.push(error));
      }
      if (failures.length > 0) throw new AggregateError(failures, 'Some local cloud services did not stop cleanly');
    })();
    return stopping;
  };

  try {
    const azurite = await startAzurite({
      accounts: [
        { name: PARTNER_ACCOUNT, key: randomAccountKey() },
        { name: BILLING_SOURCE_ACCOUNT, key: randomAccountKey() },
      ],
    });
    started.push(azurite);
    const proxy = options.faultProxy
      ? await startFaultProxy({
          azurite,
          ...(typeof options.faultProxy === 'object' && options.faultProxy.seed !== undefined ? { seed: options.faultProxy.seed } : {}),
        })
      : undefined;
    if (proxy) started.push(proxy);
    const storage = proxy ?? azurite;
    const authority = createTokenAuthority();
    const identity = await startIdentityEndpoint(authority);
    started.push(identity);
    const billing = await startBillingEmulator({
      authority,
      source: {
        blobEndpoint: azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT),
        accountName: BILLING_SOURCE_ACCOUNT,
        accountKey: azurite.accountKey(BILLING_SOURCE_ACCOUNT),
      },
      scenario: options.scenario,
      now: options.now,
      faultSeed: options.graphFaultSeed,
    });
    started.push(billing);

    return {
      azurite,
      authority,
      identity: { endpoint: identity.endpoint, header: identity.header },
      billing,
      ...(proxy ? { proxy } : {}),
      settings: {
        GRAPH_BASE_URL: billing.baseUrl,
        AzureWebJobsStorage: storage.connectionString(DEV_STORE_ACCOUNT.name),
        PARTNER_STORAGE: storage.connectionString(PARTNER_ACCOUNT),
        EXPORT_SOURCE_HOSTS: LOOPBACK_HOST,
        IDENTITY_ENDPOINT: identity.endpoint,
        IDENTITY_HEADER: identity.header,
      },
      // A second call waits for the first and never repeats its error.
      stop: () => (stopping ? stopping.catch(() => undefined) : stopAll()),
    };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}

/** A key shaped like a real storage account key: 64 random bytes, base64. */
function randomAccountKey(): string {
  return randomBytes(64).toString('base64');
}
