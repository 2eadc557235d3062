/**
 * Deterministic synthetic unbilled Azure daily-rated usage: the rows inside the export files.
 * Attribute names and the full/basic split follow the Graph attributeSet table (reference 4.1),
 * https://learn.microsoft.com/graph/api/resources/partners-billing-attributeset
 * Row i is a pure function of (seed, billingMonth, currency, i), so files can be produced in any
 * order or in pieces and still be byte-identical between runs.
 */
import { gzipSync } from 'node:zlib';
import { customersFor, type Customer } from './customers';
import { deterministicUuid, integerBetween, pick, seededRandom, seedFrom, type Random } from './deterministic';

/** Every attribute of a usage row with attributeSet=full, as the Graph docs spell them. */
export const FULL_USAGE_ATTRIBUTES = [
  'AdditionalInfo',
  'AvailabilityId',
  'BenefitID',
  'BenefitOrderID',
  'BenefitType',
  'BillingCurrency',
  'BillingPreTaxTotal',
  'ChargeEndDate',
  'ChargeStartDate',
  'ChargeType',
  'ConsumedService',
  'CreditPercentage',
  'CreditType',
  'CustomerCountry',
  'CustomerDomainName',
  'CustomerId',
  'CustomerName',
  'EffectiveUnitPrice',
  'EntitlementDescription',
  'EntitlementId',
  'InvoiceNumber',
  'MeterCategory',
  'MeterId',
  'MeterName',
  'MeterRegion',
  'MeterSubCategory',
  'MeterType',
  'MpnId',
  'PartnerEarnedCreditPercentage',
  'PartnerId',
  'PartnerName',
  'PCToBCExchangeRate',
  'PricingCurrency',
  'PricingPreTaxTotal',
  'ProductId',
  'ProductName',
  'PublisherId',
  'PublisherName',
  'Quantity',
  'ResourceGroup',
  'ResourceLocation',
  'ResourceURI',
  'ServiceInfo1',
  'ServiceInfo2',
  'SkuId',
  'SkuName',
  'SubscriptionDescription',
  'SubscriptionId',
  'Tags',
  'Tier2MpnId',
  'Unit',
  'UnitPrice',
  'UnitType',
  'UsageDate',
  // Not in the Graph table, but in Microsoft's sample model and the Partner Center field list.
  'PCToBCExchangeRateDate',
] as const;

export type UsageAttribute = (typeof FULL_USAGE_ATTRIBUTES)[number];

/** The attributes the Graph table marks Basic = Yes. */
export const BASIC_USAGE_ATTRIBUTES: readonly UsageAttribute[] = [
  'AdditionalInfo',
  'BenefitOrderID',
  'BenefitType',
  'BillingCurrency',
  'BillingPreTaxTotal',
  'ChargeEndDate',
  'ChargeStartDate',
  'ChargeType',
  'CreditPercentage',
  'CreditType',
  'CustomerId',
  'CustomerName',
  'EffectiveUnitPrice',
  'EntitlementId',
  'InvoiceNumber',
  'PartnerId',
  'PartnerName',
  'PCToBCExchangeRate',
  'PricingCurrency',
  'PricingPreTaxTotal',
  'ProductId',
  'PublisherName',
  'Quantity',
  'ResourceURI',
  'SkuId',
  'SkuName',
  'SubscriptionId',
  'UnitPrice',
  'UnitType',
  'UsageDate',
];

export type AttributeSet = 'full' | 'basic';

export interface UsageRowsOptions {
  seed: number;
  /** YYYY-MM */
  billingMonth: string;
  /** ISO 4217 billing currency, e.g. EUR. Prices are in USD and converted. */
  currency: string;
  attributeSet: AttributeSet;
  count: number;
  /** Index of the first row, so a large export can be produced file by file. @default 0 */
  startIndex?: number;
  /**
   * The last day with usage (YYYY-MM-DD), for a month-to-date export: usage appears about a day
   * after it happens, so an export made on day D holds usage up to D-1 (on the 1st, the 1st).
   * @default the whole month
   */
  usageThrough?: string;
  /** The invoice the usage was billed on, for billed usage; unbilled usage has none. */
  invoiceNumber?: string;
  partnerTenantId: string;
}

const PARTNER_NAME = 'Contoso CSP';
const PARTNER_MPN_ID = '6034453';
const PRICING_CURRENCY = 'USD';

/** USD → billing-currency rates; other currencies get a stable made-up rate. */
const USD_EXCHANGE_RATES: Readonly<Record<string, number>> = {
  USD: 1,
  EUR: 0.923614,
  GBP: 0.789127,
  INR: 83.214503,
  JPY: 151.372,
  AUD: 1.521349,
  CAD: 1.367102,
  CHF: 0.882317,
  DKK: 6.891204,
  NOK: 10.634215,
  SEK: 10.441736,
  NZD: 1.659843,
  BRL: 5.051128,
};

/**
 * Azure prices a meter per region, and each region's meter has its own id: the factor on the
 * meter's US East list price, by MeterRegion.
 */
const REGIONAL_PRICE_FACTORS: Readonly<Record<string, number>> = {
  'US East': 1,
  'US West 2': 1,
  'EU West': 1.07,
  'DE West Central': 1.1,
  'FR Central': 1.1,
  'UK South': 1.08,
  'JA East': 1.18,
  'AU East': 1.2,
  'CA Central': 1.08,
  'CH North': 1.25,
  'IN Central': 0.96,
  'Zone 1': 1,
};

interface Meter {
  category: string;
  subCategory: string;
  name: string;
  unit: string;
  /** List price in USD per unit. */
  unitPrice: number;
  /** Daily quantity range. */
  quantity: readonly [number, number];
  productId: string;
  productName: string;
  skuId: string;
  skuName: string;
  availabilityId: string;
  consumedService: string;
  /** Resource provider path and a name prefix, for ResourceURI. */
  resourceType: string;
  resourcePrefix: string;
  /** Bandwidth is priced by zone rather than by the customer's region. */
  region?: string;
  serviceType?: string;
}

const METERS: readonly Meter[] = [
  {
    category: 'Storage',
    subCategory: 'Tables',
    name: 'LRS Data Stored',
    unit: '1 GB/Month',
    unitPrice: 0.045,
    quantity: [0.001, 2.5],
    productId: 'DZH318Z0BNZ5',
    productName: 'Tables',
    skuId: '006G',
    skuName: 'Tables - LRS',
    availabilityId: 'DZH318Z08B80',
    consumedService: 'Microsoft.Storage',
    resourceType: 'Microsoft.Storage/storageAccounts',
    resourcePrefix: 'st',
  },
  {
    category: 'Storage',
    subCategory: 'General Block Blob v2',
    name: 'Hot LRS Data Stored',
    unit: '1 GB/Month',
    unitPrice: 0.0184,
    quantity: [0.5, 120],
    productId: 'DZH318Z0BPS6',
    productName: 'General Block Blob v2',
    skuId: '0001',
    skuName: 'Hot LRS',
    availabilityId: 'DZH318Z0BDZC',
    consumedService: 'Microsoft.Storage',
    resourceType: 'Microsoft.Storage/storageAccounts',
    resourcePrefix: 'st',
  },
  {
    category: 'Virtual Machines',
    subCategory: 'Dsv5 Series',
    name: 'D2s v5',
    unit: '1 Hour',
    unitPrice: 0.096,
    quantity: [1, 24],
    productId: 'DZH318Z0CSHC',
    productName: 'Virtual Machines Dsv5 Series',
    skuId: '000R',
    skuName: 'D2s v5',
    availabilityId: 'DZH318Z0C6M1',
    consumedService: 'Microsoft.Compute',
    resourceType: 'Microsoft.Compute/virtualMachines',
    resourcePrefix: 'vm-',
    serviceType: 'Standard_D2s_v5',
  },
  {
    category: 'Bandwidth',
    subCategory: 'Rtn Preference: MGN',
    name: 'Standard Data Transfer Out',
    unit: '1 GB',
    unitPrice: 0.087,
    quantity: [0.01, 40],
    productId: 'DZH318Z0BNVX',
    productName: 'Rtn Preference: MGN',
    skuId: '0001',
    skuName: 'Standard',
    availabilityId: 'DZH318Z0BNQ4',
    consumedService: 'Microsoft.Network',
    resourceType: 'Microsoft.Network/publicIPAddresses',
    resourcePrefix: 'pip-',
    region: 'Zone 1',
  },
  {
    category: 'SQL Database',
    subCategory: 'General Purpose - Compute Gen5',
    name: 'vCore',
    unit: '1 Hour',
    unitPrice: 0.2522,
    quantity: [2, 48],
    productId: 'DZH318Z0BQ4Q',
    productName: 'SQL Database Single/Elastic Pool General Purpose - Compute Gen5',
    skuId: '000D',
    skuName: 'vCore',
    availabilityId: 'DZH318Z0BPHG',
    consumedService: 'Microsoft.Sql',
    resourceType: 'Microsoft.Sql/servers',
    resourcePrefix: 'sql-',
  },
  {
    category: 'Azure App Service',
    subCategory: 'Premium v3 Plan',
    name: 'P1 v3 App',
    unit: '1 Hour',
    unitPrice: 0.2,
    quantity: [24, 24],
    productId: 'DZH318Z0BQ5T',
    productName: 'Azure App Service Premium v3 Plan',
    skuId: '0014',
    skuName: 'P1 v3',
    availabilityId: 'DZH318Z0BR0P',
    consumedService: 'Microsoft.Web',
    resourceType: 'Microsoft.Web/serverfarms',
    resourcePrefix: 'plan-',
  },
  {
    category: 'Key Vault',
    subCategory: 'Key Vault',
    name: 'Operations',
    unit: '10K',
    unitPrice: 0.03,
    quantity: [0.01, 12],
    productId: 'DZH318Z0BQPS',
    productName: 'Key Vault',
    skuId: '0001',
    skuName: 'Standard',
    availabilityId: 'DZH318Z0BQ3N',
    consumedService: 'Microsoft.KeyVault',
    resourceType: 'Microsoft.KeyVault/vaults',
    resourcePrefix: 'kv-',
  },
];

const RESOURCE_GROUPS = ['rg-app', 'rg-data', 'rg-shared'] as const;

export function usageRows(options: UsageRowsOptions): Array<Record<string, unknown>> {
  const { seed, currency, attributeSet, count, startIndex = 0, partnerTenantId } = options;
  const month = parseBillingMonth(options.billingMonth);
  if (!/^[A-Z]{3}$/.test(currency)) throw new RangeError(`currency is '${currency}': expected a 3-letter upper-case ISO 4217 code such as EUR`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count is ${count}: expected a whole number ≥ 0`);
  if (!Number.isInteger(startIndex) || startIndex < 0) throw new RangeError(`startIndex is ${startIndex}: expected a whole number ≥ 0`);

  const customers = customersFor(seed, currency);
  const exchangeRate = usdExchangeRate(currency);
  const lastUsageDay = lastUsageDayOf(month, options.usageThrough);
  const rows: Array<Record<string, unknown>> = [];
  for (let index = startIndex; index < startIndex + count; index++) {
    const random = seededRandom(seedFrom(seed, options.billingMonth, index));
    const row = fullRow({ random, month, lastUsageDay, customers, currency, exchangeRate, partnerTenantId, invoiceNumber: options.invoiceNumber ?? '' });
    rows.push(attributeSet === 'full' ? row : onlyBasicAttributes(row));
  }
  return rows;
}

/**
 * gzip of one JSON object per line, each line ending in "\n": the export file format (.json.gz).
 * `level` is zlib's compression level (0 stores, 1 is fastest); by default zlib's default.
 */
export function gzipJsonLines(rows: ReadonlyArray<Record<string, unknown>>, level?: number): Buffer {
  const text = rows.map((row) => `${JSON.stringify(row)}\n`).join('');
  return level === undefined ? gzipSync(text) : gzipSync(text, { level });
}

export interface BillingMonth {
  year: number;
  /** 1-12 */
  month: number;
  days: number;
}

export function parseBillingMonth(text: string): BillingMonth {
  const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(text);
  if (!match) throw new RangeError(`billingMonth is '${text}': expected YYYY-MM`);
  const year = Number(match[1]);
  const month = Number(match[2]);
  return { year, month, days: new Date(Date.UTC(year, month, 0)).getUTCDate() };
}

/** The day of `month` up to which there is usage: the month's last day, or `usageThrough`'s day within it. */
function lastUsageDayOf(month: BillingMonth, usageThrough: string | undefined): number {
  if (usageThrough === undefined) return month.days;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(usageThrough);
  const [year, monthNumber, day] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [0, 0, 0];
  if (year !== month.year || monthNumber !== month.month || day < 1 || day > month.days) {
    throw new RangeError(`usageThrough is '${usageThrough}': expected a day of ${month.year}-${String(month.month).padStart(2, '0')} as YYYY-MM-DD`);
  }
  return day;
}

/** The meter's list price in its region: the US East price times the region's factor. */
function regionalUnitPrice(meter: Meter, meterRegion: string): number {
  const factor = REGIONAL_PRICE_FACTORS[meterRegion] ?? 1 + (seedFrom('region-price', meterRegion) % 30) / 100;
  // Four decimals, so the price after a 15 % PEC still has at most six.
  return round(meter.unitPrice * factor, 4);
}

export function usdExchangeRate(currency: string): number {
  return USD_EXCHANGE_RATES[currency] ?? round(0.5 + (seedFrom('exchange-rate', currency) / 2 ** 32) * 9.5, 6);
}

interface RowContext {
  random: Random;
  month: BillingMonth;
  lastUsageDay: number;
  customers: readonly Customer[];
  currency: string;
  exchangeRate: number;
  partnerTenantId: string;
  invoiceNumber: string;
}

function fullRow({
  random,
  month,
  lastUsageDay,
  customers,
  currency,
  exchangeRate,
  partnerTenantId,
  invoiceNumber,
}: RowContext): Record<UsageAttribute, string | number> {
  const customer = pick(random, customers);
  const subscription = pick(random, customer.azureSubscriptions);
  const meter = pick(random, METERS);
  const resourceGroup = pick(random, RESOURCE_GROUPS);
  const resourceName = `${meter.resourcePrefix}${customer.short}${subscription.environment}${integerBetween(random, 1, 3)}`;
  const usageDay = integerBetween(random, 1, lastUsageDay);
  const quantity = round(meter.quantity[0] + random() * (meter.quantity[1] - meter.quantity[0]), 6);
  const meterRegion = meter.region ?? customer.meterRegion;
  const unitPrice = regionalUnitPrice(meter, meterRegion);
  // PEC applies to resources the partner manages; most, not all, usage qualifies.
  const partnerEarnedCreditPercentage = random() < 0.7 ? 15 : 0;
  const effectiveUnitPrice = round(unitPrice * (1 - partnerEarnedCreditPercentage / 100), 6);
  const pricingPreTaxTotal = round(effectiveUnitPrice * quantity, 6);
  const monthEnd = isoDate(month, month.days);

  return {
    PartnerId: partnerTenantId,
    PartnerName: PARTNER_NAME,
    CustomerId: customer.id,
    CustomerName: customer.name,
    CustomerDomainName: customer.domain,
    CustomerCountry: customer.country,
    MpnId: PARTNER_MPN_ID,
    Tier2MpnId: '',
    InvoiceNumber: invoiceNumber,
    ProductId: meter.productId,
    SkuId: meter.skuId,
    AvailabilityId: meter.availabilityId,
    SkuName: meter.skuName,
    ProductName: meter.productName,
    PublisherName: 'Microsoft',
    PublisherId: '',
    SubscriptionDescription: 'Azure plan',
    SubscriptionId: customer.azurePlanId,
    ChargeStartDate: isoDate(month, 1),
    ChargeEndDate: monthEnd,
    UsageDate: isoDate(month, usageDay),
    MeterType: meter.unit,
    MeterCategory: meter.category,
    MeterId: deterministicUuid('meter', meter.category, meter.subCategory, meter.name, meterRegion),
    MeterSubCategory: meter.subCategory,
    MeterName: meter.name,
    MeterRegion: meterRegion,
    Unit: meter.unit,
    ResourceLocation: customer.location,
    ConsumedService: meter.consumedService,
    ResourceGroup: resourceGroup,
    ResourceURI: `/subscriptions/${subscription.id}/resourceGroups/${resourceGroup}/providers/${meter.resourceType}/${resourceName}`,
    ChargeType: 'new',
    UnitPrice: unitPrice,
    Quantity: quantity,
    UnitType: meter.unit,
    BillingPreTaxTotal: round(pricingPreTaxTotal * exchangeRate, 6),
    BillingCurrency: currency,
    PricingPreTaxTotal: pricingPreTaxTotal,
    PricingCurrency: PRICING_CURRENCY,
    ServiceInfo1: '',
    ServiceInfo2: '',
    Tags: JSON.stringify({ env: subscription.environment, owner: `${customer.short}-it` }),
    AdditionalInfo: meter.serviceType ? JSON.stringify({ ServiceType: meter.serviceType }) : '',
    EffectiveUnitPrice: effectiveUnitPrice,
    PCToBCExchangeRate: exchangeRate,
    PCToBCExchangeRateDate: monthEnd,
    EntitlementId: subscription.id,
    EntitlementDescription: subscription.name,
    PartnerEarnedCreditPercentage: partnerEarnedCreditPercentage,
    CreditPercentage: 0,
    CreditType: 'Credit Not Applied',
    BenefitOrderID: '',
    BenefitID: '',
    BenefitType: '',
  };
}

const BASIC = new Set<string>(BASIC_USAGE_ATTRIBUTES);

function onlyBasicAttributes(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).filter(([attribute]) => BASIC.has(attribute)));
}

export function isoDate(month: BillingMonth, day: number): string {
  return new Date(Date.UTC(month.year, month.month - 1, day)).toISOString().replace('.000Z', 'Z');
}

export function round(value: number, decimals: number): number {
  return Number(value.toFixed(decimals));
}
