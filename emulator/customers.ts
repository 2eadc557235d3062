/**
 * The partner's customers in the emulator, shared by every export kind so that usage and
 * reconciliation of one month name the same customers, Azure plans and subscriptions. A pure
 * function of the seed and the billing currency.
 */
import { deterministicUuid, integerBetween, seededRandom, seedFrom } from './deterministic';

export interface Customer {
  id: string;
  name: string;
  /** Lower-case short name, used in domain and resource names. */
  short: string;
  domain: string;
  country: string;
  location: string;
  meterRegion: string;
  /** The customer's Azure plan: the Partner Center subscription the usage is billed under. */
  azurePlanId: string;
  /** The customer's Azure subscriptions ("entitlements") under that plan. */
  azureSubscriptions: Array<{ id: string; name: string; environment: 'prod' | 'dev' | 'data' }>;
}

interface CustomerProfile {
  readonly name: string;
  readonly short: string;
  readonly country: string;
  readonly location: string;
  readonly meterRegion: string;
}

/**
 * The partner's customers by billing currency. A CSP customer is billed in the one currency of
 * its country, so the exports of two currencies never hold the same customer (summing them does
 * not double count). A currency with no customer here gets two made-up ones of its own.
 */
const CUSTOMERS_BY_CURRENCY: Readonly<Record<string, readonly CustomerProfile[]>> = {
  EUR: [
    { name: 'Fabrikam GmbH', short: 'fabrikam', country: 'DE', location: 'germanywestcentral', meterRegion: 'DE West Central' },
    { name: 'Tailspin Toys SAS', short: 'tailspin', country: 'FR', location: 'francecentral', meterRegion: 'FR Central' },
    { name: 'Wingtip Toys B.V.', short: 'wingtip', country: 'NL', location: 'westeurope', meterRegion: 'EU West' },
  ],
  GBP: [{ name: 'Contoso Pharmaceuticals Ltd', short: 'contosopharma', country: 'GB', location: 'uksouth', meterRegion: 'UK South' }],
  USD: [
    { name: 'Northwind Traders Inc.', short: 'northwind', country: 'US', location: 'eastus', meterRegion: 'US East' },
    { name: 'Litware Inc.', short: 'litware', country: 'US', location: 'westus2', meterRegion: 'US West 2' },
  ],
  JPY: [{ name: 'Adatum KK', short: 'adatum', country: 'JP', location: 'japaneast', meterRegion: 'JA East' }],
  AUD: [{ name: 'Alpine Ski House Pty Ltd', short: 'alpineski', country: 'AU', location: 'australiaeast', meterRegion: 'AU East' }],
  CAD: [{ name: 'Coho Winery Ltd', short: 'cohowinery', country: 'CA', location: 'canadacentral', meterRegion: 'CA Central' }],
  CHF: [{ name: 'Relecloud AG', short: 'relecloud', country: 'CH', location: 'switzerlandnorth', meterRegion: 'CH North' }],
  INR: [{ name: 'Trey Research Pvt Ltd', short: 'treyresearch', country: 'IN', location: 'centralindia', meterRegion: 'IN Central' }],
};

/** Two made-up customers for a currency without customers of its own. */
function placeholderCustomers(currency: string): CustomerProfile[] {
  const lower = currency.toLowerCase();
  return [
    { name: `Woodgrove ${currency} Ltd`, short: `woodgrove${lower}`, country: 'US', location: 'eastus', meterRegion: 'US East' },
    { name: `Proseware ${currency} Ltd`, short: `proseware${lower}`, country: 'US', location: 'eastus', meterRegion: 'US East' },
  ];
}

const SUBSCRIPTION_ENVIRONMENTS = [
  { environment: 'prod', label: 'Production' },
  { environment: 'dev', label: 'Development' },
  { environment: 'data', label: 'Data Platform' },
] as const;

/** The customers billed in `currency`, each with its Azure plan and one to three Azure subscriptions. */
export function customersFor(seed: number, currency: string): Customer[] {
  const random = seededRandom(seedFrom(seed, 'customers', currency));
  return (CUSTOMERS_BY_CURRENCY[currency] ?? placeholderCustomers(currency)).map((profile) => ({
    id: deterministicUuid(seed, 'customer', profile.short),
    name: profile.name,
    short: profile.short,
    domain: `${profile.short}.onmicrosoft.com`,
    country: profile.country,
    location: profile.location,
    meterRegion: profile.meterRegion,
    azurePlanId: deterministicUuid(seed, 'azure-plan', profile.short),
    azureSubscriptions: SUBSCRIPTION_ENVIRONMENTS.slice(0, integerBetween(random, 1, SUBSCRIPTION_ENVIRONMENTS.length)).map(({ environment, label }) => ({
      id: deterministicUuid(seed, 'azure-subscription', profile.short, environment),
      name: `${profile.name.split(' ')[0]} ${label}`,
      environment,
    })),
  }));
}
