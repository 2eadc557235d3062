/**
 * Deterministic synthetic invoice reconciliation line items: the rows of the reconciliation
 * exports (billed by invoice, and unbilled for the month in progress or the last one).
 * Attribute names and the full/basic split follow the Graph attributeSet table (reference 4.2).
 *
 * The same customers, Azure plans and subscriptions as the usage rows (./customers): each
 * customer's Azure plan lines are the month's usage rows of the same export aggregated per Azure
 * subscription, meter and effective price (BillableQuantity is the usage's summed Quantity), and
 * its licence lines are a few seat-based new-commerce products billed monthly. Subtotals follow
 * Partner Center's documented rounding (reference 4.2), taxes the customer's country.
 */
import { customersFor, type Customer } from './customers';
import { deterministicAlphanumeric, deterministicUuid, integerBetween, seededRandom, seedFrom } from './deterministic';
import { isoDate, parseBillingMonth, round, usageRows, usdExchangeRate, type AttributeSet, type BillingMonth } from './usageData';

/** Every attribute of a reconciliation row with attributeSet=full, as the Graph docs spell them. */
export const FULL_RECONCILIATION_ATTRIBUTES = [
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
] as const;

export type ReconciliationAttribute = (typeof FULL_RECONCILIATION_ATTRIBUTES)[number];

/** The attributes the Graph table marks Basic = No; every other one is in basic too. */
const FULL_ONLY: ReadonlySet<ReconciliationAttribute> = new Set([
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

export const BASIC_RECONCILIATION_ATTRIBUTES: readonly ReconciliationAttribute[] = FULL_RECONCILIATION_ATTRIBUTES.filter(
  (attribute) => !FULL_ONLY.has(attribute),
);

export interface ReconciliationRowsOptions {
  seed: number;
  /** YYYY-MM */
  billingMonth: string;
  /** ISO 4217 billing currency. */
  currency: string;
  attributeSet: AttributeSet;
  /** How many usage rows the month has: the Azure plan lines aggregate exactly these. */
  usageRowCount: number;
  /** The last day with usage, for a month-to-date export (see usageRows). */
  usageThrough?: string;
  /** The invoice, for billed reconciliation; unbilled line items have none. */
  invoiceNumber?: string;
  /**
   * The invoice's version: its re-issue (2) corrects it with a credit to its first customer for
   * part of that customer's first licence line, a `customerCredit` line. @default 1
   */
  invoiceVersion?: 1 | 2;
  partnerTenantId: string;
}

const PARTNER_MPN_ID = '6034453';
const PRICING_CURRENCY = 'USD';

/** Sales tax or VAT by customer country (a fixed, plausible rate; not tax advice). */
const TAX_RATES: Readonly<Record<string, number>> = { DE: 0.19, FR: 0.2, NL: 0.21, GB: 0.2, US: 0, JP: 0.1, AU: 0.1, CA: 0.05, CH: 0.081, IN: 0.18 };

interface LicenceProduct {
  productId: string;
  skuId: string;
  availabilityId: string;
  productName: string;
  skuName: string;
  /** List price in USD per seat and month. */
  unitPrice: number;
  seats: readonly [number, number];
  term: string;
}

const LICENCE_PRODUCTS: readonly LicenceProduct[] = [
  {
    productId: 'CFQ7TTC0LCHC',
    skuId: '0002',
    availabilityId: 'CFQ7TTC0LCHC0002',
    productName: 'Microsoft 365 Business Premium',
    skuName: 'Microsoft 365 Business Premium',
    unitPrice: 22,
    seats: [5, 120],
    term: 'One-Year commitment for monthly billing',
  },
  {
    productId: 'CFQ7TTC0LFLX',
    skuId: '0002',
    availabilityId: 'CFQ7TTC0LFLX0002',
    productName: 'Microsoft 365 E3',
    skuName: 'Microsoft 365 E3',
    unitPrice: 36,
    seats: [10, 250],
    term: 'One-Year commitment for monthly billing',
  },
  {
    productId: 'CFQ7TTC0LH18',
    skuId: '0001',
    availabilityId: 'CFQ7TTC0LH180001',
    productName: 'Exchange Online (Plan 1)',
    skuName: 'Exchange Online (Plan 1)',
    unitPrice: 4.8,
    seats: [5, 60],
    term: 'One-Month commitment for monthly billing',
  },
  {
    productId: 'CFQ7TTC0LHXM',
    skuId: '0001',
    availabilityId: 'CFQ7TTC0LHXM0001',
    productName: 'Dynamics 365 Sales Professional',
    skuName: 'Dynamics 365 Sales Professional',
    unitPrice: 65,
    seats: [2, 25],
    term: 'One-Year commitment for monthly billing',
  },
];

/** Every reconciliation line item of one month and currency (or one invoice), deterministic. */
export function reconciliationRows(options: ReconciliationRowsOptions): Array<Record<string, unknown>> {
  const { seed, billingMonth, currency, attributeSet, usageRowCount, partnerTenantId } = options;
  const month = parseBillingMonth(billingMonth);
  if (!Number.isInteger(usageRowCount) || usageRowCount < 0) throw new RangeError(`usageRowCount is ${usageRowCount}: expected a whole number ≥ 0`);
  const line: LineContext = {
    month,
    currency,
    exchangeRate: usdExchangeRate(currency),
    invoiceNumber: options.invoiceNumber ?? '',
    partnerTenantId,
    seed,
  };
  const customers = new Map(customersFor(seed, currency).map((customer) => [customer.id, customer]));
  const usage = usageRows({
    seed,
    billingMonth,
    currency,
    attributeSet: 'full',
    count: usageRowCount,
    partnerTenantId,
    ...(options.usageThrough ? { usageThrough: options.usageThrough } : {}),
    ...(options.invoiceNumber ? { invoiceNumber: options.invoiceNumber } : {}),
  });

  const licences = [...customers.values()].map((customer) => licenceLines(customer, line));
  const credits = options.invoiceVersion === 2 ? [reissueCredit(licences[0]![0]!, [...customers.values()][0]!)] : [];
  const rows = [...licences.flat(), ...credits, ...azurePlanLines(usage, customers, line)];
  return attributeSet === 'full' ? rows : rows.map(onlyBasicAttributes);
}

interface LineContext {
  month: BillingMonth;
  currency: string;
  exchangeRate: number;
  invoiceNumber: string;
  partnerTenantId: string;
  seed: number;
}

/** Partner Center's ROUNDDOWN(x, 2), on values that are already rounded to a few decimals. */
function roundDown2(value: number): number {
  return Math.floor(round(value * 100, 6)) / 100;
}

function commonFields(customer: Customer, line: LineContext) {
  const monthEnd = isoDate(line.month, line.month.days);
  return {
    PartnerId: line.partnerTenantId,
    CustomerId: customer.id,
    CustomerName: customer.name,
    CustomerDomainName: customer.domain,
    CustomerCountry: customer.country,
    InvoiceNumber: line.invoiceNumber,
    MpnId: PARTNER_MPN_ID,
    Tier2MpnId: '',
    ChargeStartDate: isoDate(line.month, 1),
    ChargeEndDate: monthEnd,
    Currency: line.currency,
    PricingCurrency: PRICING_CURRENCY,
    PCToBCExchangeRate: line.exchangeRate,
    PCToBCExchangeRateDate: monthEnd,
    ReservationOrderId: '',
    CreditReasonCode: '',
    PromotionId: '',
  };
}

function totals(subtotal: number, customer: Customer): { Subtotal: number; TaxTotal: number; Total: number } {
  const taxTotal = round(subtotal * (TAX_RATES[customer.country] ?? 0), 2);
  return { Subtotal: round(subtotal, 2), TaxTotal: taxTotal, Total: round(subtotal + taxTotal, 2) };
}

/** One to three seat-based products per customer, charged for the whole month. */
function licenceLines(customer: Customer, line: LineContext): Array<Record<ReconciliationAttribute, string | number>> {
  const random = seededRandom(seedFrom(line.seed, 'licences', customer.id));
  const count = integerBetween(random, 1, 3);
  const first = integerBetween(random, 0, LICENCE_PRODUCTS.length - 1);
  return Array.from({ length: count }, (_, offset) => {
    const product = LICENCE_PRODUCTS[(first + offset) % LICENCE_PRODUCTS.length]!;
    const seats = integerBetween(random, product.seats[0], product.seats[1]);
    const subscriptionId = deterministicUuid(line.seed, 'licence-subscription', customer.id, product.productId);
    const startYear = line.month.year - integerBetween(random, 0, 2);
    // Licence-based: ROUNDDOWN(EffectiveUnitPrice * PCToBCExchangeRate, 2) * BillableQuantity.
    const subtotal = roundDown2(product.unitPrice * line.exchangeRate) * seats;
    return {
      ...commonFields(customer, line),
      OrderId: deterministicAlphanumeric(32, 'order', line.seed, customer.id, product.productId),
      OrderDate: isoDate({ ...line.month, year: startYear }, 1),
      ProductId: product.productId,
      SkuId: product.skuId,
      AvailabilityId: product.availabilityId,
      SkuName: product.skuName,
      ProductName: product.productName,
      ChargeType: 'cycleCharge',
      UnitPrice: product.unitPrice,
      Quantity: seats,
      ...totals(subtotal, customer),
      PriceAdjustmentDescription: '[]',
      PublisherName: 'Microsoft Corporation',
      PublisherId: '',
      SubscriptionDescription: product.productName,
      SubscriptionId: subscriptionId,
      TermAndBillingCycle: product.term,
      EffectiveUnitPrice: product.unitPrice,
      UnitType: 'Licenses',
      AlternateId: deterministicAlphanumeric(12, 'alternate', subscriptionId).toLowerCase(),
      BillableQuantity: seats,
      BillingFrequency: 'Monthly',
      MeterDescription: '',
      SubscriptionStartDate: isoDate({ ...line.month, year: startYear }, 1),
      SubscriptionEndDate: isoDate({ ...line.month, year: startYear + 1 }, 1),
      ReferenceId: deterministicUuid(line.seed, 'reference', line.month.year, line.month.month, subscriptionId),
      ProductQualifiers: '[]',
      ProductCategory: 'OnlineServices',
    };
  });
}

/** The re-issue's correction: a fifth of `licence`'s seats credited back, as a negative line. */
function reissueCredit(licence: Record<ReconciliationAttribute, string | number>, customer: Customer): Record<ReconciliationAttribute, string | number> {
  const seats = Math.max(1, Math.floor((licence.BillableQuantity as number) / 5));
  const subtotal = -roundDown2((licence.EffectiveUnitPrice as number) * (licence.PCToBCExchangeRate as number)) * seats;
  return {
    ...licence,
    ChargeType: 'customerCredit',
    Quantity: -seats,
    BillableQuantity: -seats,
    ...totals(subtotal, customer),
    CreditReasonCode: 'Seat count correction',
    ReferenceId: deterministicUuid('reissue-credit', licence.ReferenceId),
  };
}

/** The month's usage per customer, Azure subscription, meter and effective price: one line each. */
function azurePlanLines(
  usage: ReadonlyArray<Record<string, unknown>>,
  customers: ReadonlyMap<string, Customer>,
  line: LineContext,
): Array<Record<ReconciliationAttribute, string | number>> {
  const groups = new Map<string, { first: Record<string, unknown>; quantity: number }>();
  for (const row of usage) {
    const key = [row.CustomerId, row.EntitlementId, row.MeterId, row.EffectiveUnitPrice].join('|');
    const group = groups.get(key);
    if (group) group.quantity += row.Quantity as number;
    else groups.set(key, { first: row, quantity: row.Quantity as number });
  }
  return [...groups.values()].map(({ first, quantity }) => {
    const customer = customers.get(first.CustomerId as string)!;
    const billableQuantity = round(quantity, 6);
    const effectiveUnitPrice = first.EffectiveUnitPrice as number;
    // Usage-based: ROUNDDOWN(ROUNDDOWN(EffectiveUnitPrice * BillableQuantity, 2) * PCToBCExchangeRate, 2).
    const subtotal = roundDown2(roundDown2(effectiveUnitPrice * billableQuantity) * line.exchangeRate);
    const pec = first.PartnerEarnedCreditPercentage as number;
    return {
      ...commonFields(customer, line),
      OrderId: deterministicAlphanumeric(32, 'order', line.seed, customer.azurePlanId),
      OrderDate: isoDate({ ...line.month, year: line.month.year - 1 }, 1),
      ProductId: first.ProductId as string,
      SkuId: first.SkuId as string,
      AvailabilityId: first.AvailabilityId as string,
      SkuName: first.SkuName as string,
      ProductName: first.ProductName as string,
      ChargeType: 'new',
      UnitPrice: first.UnitPrice as number,
      Quantity: 1,
      ...totals(subtotal, customer),
      PriceAdjustmentDescription: pec > 0 ? `["${pec.toFixed(1)}% Partner earned credit for services managed"]` : '[]',
      PublisherName: 'Microsoft',
      PublisherId: '',
      SubscriptionDescription: 'Azure plan',
      SubscriptionId: customer.azurePlanId,
      TermAndBillingCycle: `${first.MeterName as string} (${first.Unit as string})`,
      EffectiveUnitPrice: effectiveUnitPrice,
      UnitType: first.Unit as string,
      AlternateId: deterministicAlphanumeric(12, 'alternate', first.EntitlementId as string).toLowerCase(),
      BillableQuantity: billableQuantity,
      BillingFrequency: '',
      MeterDescription: `${first.ProductName as string} ${first.MeterName as string} (${first.Unit as string})`,
      SubscriptionStartDate: isoDate({ ...line.month, year: line.month.year - 1 }, 1),
      SubscriptionEndDate: '',
      ReferenceId: deterministicUuid(
        line.seed,
        'reference',
        line.month.year,
        line.month.month,
        first.EntitlementId as string,
        first.MeterId as string,
        effectiveUnitPrice,
      ),
      ProductQualifiers: '[]',
      ProductCategory: 'Azure',
    };
  });
}

const BASIC = new Set<string>(BASIC_RECONCILIATION_ATTRIBUTES);

function onlyBasicAttributes(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).filter(([attribute]) => BASIC.has(attribute)));
}
