/**
 * What the rows inside an export's files hold, per row family (usage or reconciliation) and
 * attribute set: the columns and their types (reference §4.1, §4.2), the key fields every row
 * must have, the cost columns summed per customer and currency, and the other spellings a key
 * may have (§4.5: matched case-insensitively, with the camelCase renames of August 2023). Data
 * only: ./dataRow.ts reads a row with it, the Parquet writer types its columns with it.
 */
import type { ExportKind } from './naming';
import type { AttributeSet } from './settings';

export type RowFamily = 'usage' | 'reconciliation';

/**
 * The one place a run's kind names its row family: billed and unbilled exports of a family have
 * the same attributes.
 */
const FAMILY_OF_KIND: Readonly<Record<ExportKind, RowFamily>> = {
  'unbilled-usage': 'usage',
  'billed-usage': 'usage',
  'unbilled-reconciliation': 'reconciliation',
  'billed-reconciliation': 'reconciliation',
};

export function rowFamilyOf(kind: ExportKind): RowFamily {
  return FAMILY_OF_KIND[kind];
}

/** DECIMAL(28,12): 16 integer digits for totals, 12 fractional for prices and rates (0.846202666 has 9). */
export const MONEY = { precision: 28, scale: 12 } as const;
/** DECIMAL(9,4): PartnerEarnedCreditPercentage (0 or 15), CreditPercentage (0 or 100). */
export const PERCENT = { precision: 9, scale: 4 } as const;

export type ColumnType =
  | { readonly kind: 'string' }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number }
  /** A day (Parquet DATE); the source writes it as YYYY-MM-DD or midnight UTC. */
  | { readonly kind: 'date' }
  /** An instant (Parquet TIMESTAMP, milliseconds, UTC). */
  | { readonly kind: 'timestamp' };

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
}

export interface FamilySchema {
  readonly family: RowFamily;
  readonly attributeSet: AttributeSet;
  /** In the files' documented order; the Parquet file's columns. */
  readonly columns: readonly Column[];
  /** Columns every row must have, with a value. */
  readonly keyFields: readonly string[];
  /** The billing currency's column: totals are per customer and this. */
  readonly currencyColumn: string;
  /**
   * Usage only: the pricing currency's column. PricingPreTaxTotal is in it, not in the billing
   * currency (§4.1 lists both), so totals are also per pricing currency.
   */
  readonly pricingCurrencyColumn?: string;
  /** The cost columns summed per customer and currency, with their name in manifest.json. */
  readonly summed: readonly { readonly column: string; readonly as: string }[];
}

const USAGE_FULL = [
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
  // Not in the Graph table, but in Microsoft's sample model and the Partner Center field list (§4.1).
  'PCToBCExchangeRateDate',
];
const USAGE_BASIC = new Set([
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
]);
const RECONCILIATION_FULL = [
  'PartnerId',
  'CustomerId',
  'CustomerName',
  'CustomerDomainName',
  'CustomerCountry',
  'InvoiceNumber',
  'MpnId',
  'Tier2MpnId',
  'OrderId',
  'OrderDate',
  'ProductId',
  'SkuId',
  'AvailabilityId',
  'SkuName',
  'ProductName',
  'ChargeType',
  'UnitPrice',
  'Quantity',
  'Subtotal',
  'TaxTotal',
  'Total',
  'Currency',
  'PriceAdjustmentDescription',
  'PublisherName',
  'PublisherId',
  'SubscriptionDescription',
  'SubscriptionId',
  'ChargeStartDate',
  'ChargeEndDate',
  'TermAndBillingCycle',
  'EffectiveUnitPrice',
  'UnitType',
  'AlternateId',
  'BillableQuantity',
  'BillingFrequency',
  'PricingCurrency',
  'PCToBCExchangeRate',
  'PCToBCExchangeRateDate',
  'MeterDescription',
  'ReservationOrderId',
  'CreditReasonCode',
  'SubscriptionStartDate',
  'SubscriptionEndDate',
  'ReferenceId',
  'ProductQualifiers',
  'PromotionId',
  'ProductCategory',
];
const RECONCILIATION_FULL_ONLY = new Set([
  'CustomerDomainName',
  'CustomerCountry',
  'MpnId',
  'Quantity',
  'PublisherId',
  'SubscriptionDescription',
  'UnitType',
  'AlternateId',
  'BillingFrequency',
  'PCToBCExchangeRateDate',
  'MeterDescription',
  'ProductQualifiers',
]);

const TYPES: Readonly<Record<RowFamily, Readonly<Record<string, ColumnType>>>> = {
  usage: {
    ...each(['UnitPrice', 'Quantity', 'BillingPreTaxTotal', 'PricingPreTaxTotal', 'EffectiveUnitPrice', 'PCToBCExchangeRate'], { kind: 'decimal', ...MONEY }),
    ...each(['PartnerEarnedCreditPercentage', 'CreditPercentage'], { kind: 'decimal', ...PERCENT }),
    UsageDate: { kind: 'date' },
    ...each(['ChargeStartDate', 'ChargeEndDate', 'PCToBCExchangeRateDate'], { kind: 'timestamp' }),
  },
  reconciliation: {
    ...each(['UnitPrice', 'Quantity', 'Subtotal', 'TaxTotal', 'Total', 'EffectiveUnitPrice', 'BillableQuantity', 'PCToBCExchangeRate'], {
      kind: 'decimal',
      ...MONEY,
    }),
    ...each(['OrderDate', 'ChargeStartDate', 'ChargeEndDate', 'PCToBCExchangeRateDate', 'SubscriptionStartDate', 'SubscriptionEndDate'], { kind: 'timestamp' }),
  },
};

/** Key fields of both attribute sets, and those only `full` has. */
const KEY_FIELDS: Readonly<Record<RowFamily, { readonly basic: readonly string[]; readonly fullOnly: readonly string[] }>> = {
  usage: {
    basic: [
      'PartnerId',
      'CustomerId',
      'CustomerName',
      'SubscriptionId',
      'EntitlementId',
      'ProductId',
      'SkuId',
      'ChargeStartDate',
      'ChargeEndDate',
      'UsageDate',
      'UnitPrice',
      'EffectiveUnitPrice',
      'Quantity',
      'BillingPreTaxTotal',
      'BillingCurrency',
      'PricingPreTaxTotal',
      'PricingCurrency',
      'PCToBCExchangeRate',
    ],
    fullOnly: ['MeterId', 'MeterCategory', 'MeterName', 'Unit'],
  },
  reconciliation: {
    basic: [
      'PartnerId',
      'CustomerId',
      'CustomerName',
      'SubscriptionId',
      'ProductId',
      'SkuId',
      'ChargeType',
      'ChargeStartDate',
      'ChargeEndDate',
      'UnitPrice',
      'EffectiveUnitPrice',
      'BillableQuantity',
      'Subtotal',
      'TaxTotal',
      'Total',
      'Currency',
      'PricingCurrency',
      'PCToBCExchangeRate',
    ],
    fullOnly: ['Quantity'],
  },
};

const SUMMED: Readonly<Record<RowFamily, readonly string[]>> = {
  usage: ['BillingPreTaxTotal', 'PricingPreTaxTotal', 'Quantity'],
  reconciliation: ['Subtotal', 'TaxTotal', 'Total'],
};

/**
 * Other names of a column (§4.5), lower case; `percentOfRate` marks a rate (0.15) standing for a
 * percentage column (15).
 */
export const ALIASES: Readonly<Record<string, { readonly column: string; readonly percentOfRate?: true }>> = {
  resellermpnid: { column: 'Tier2MpnId' },
  unitofmeasure: { column: 'Unit' },
  totalforcustomer: { column: 'Total' },
  rateofpartnerearnedcredit: { column: 'PartnerEarnedCreditPercentage', percentOfRate: true },
  rateofcredit: { column: 'CreditPercentage', percentOfRate: true },
};

export function schemaFor(family: RowFamily, attributeSet: AttributeSet): FamilySchema {
  const names =
    family === 'usage'
      ? USAGE_FULL.filter((name) => attributeSet === 'full' || USAGE_BASIC.has(name))
      : RECONCILIATION_FULL.filter((name) => attributeSet === 'full' || !RECONCILIATION_FULL_ONLY.has(name));
  const keys = KEY_FIELDS[family];
  return {
    family,
    attributeSet,
    columns: names.map((name) => ({ name, type: TYPES[family][name] ?? { kind: 'string' } })),
    keyFields: attributeSet === 'full' ? [...keys.basic, ...keys.fullOnly] : keys.basic,
    currencyColumn: family === 'usage' ? 'BillingCurrency' : 'Currency',
    ...(family === 'usage' ? { pricingCurrencyColumn: 'PricingCurrency' } : {}),
    summed: SUMMED[family].map((column) => ({ column, as: camelCase(column) })),
  };
}

/** BillingPreTaxTotal → billingPreTaxTotal; PCToBCExchangeRate → pcToBCExchangeRate. */
export function camelCase(name: string): string {
  const leadingCapitals = /^[A-Z]+(?=[A-Z][a-z])|^[A-Z]+$|^[A-Z]/.exec(name)?.[0] ?? '';
  return leadingCapitals.toLowerCase() + name.slice(leadingCapitals.length);
}

function each(names: readonly string[], type: ColumnType): Record<string, ColumnType> {
  return Object.fromEntries(names.map((name) => [name, type]));
}
