/**
 * The billing emulator's billed usage, billed reconciliation and unbilled reconciliation exports,
 * read as a Graph client reads them: plain fetch for the API, the manifest's SAS for the files,
 * zlib + JSON.parse for their rows. Attribute names are written out from the reference (4.1, 4.2),
 * not taken from the emulator's own lists.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../emulator/azurite';
import { startBillingEmulator, type BillingEmulator } from '../../emulator/billingEmulator';
import { invoiceCatalogue, REISSUED_INVOICE_ID } from '../../emulator/invoices';
import { createTokenAuthority, EMULATED_PARTNER_TENANT_ID } from '../../emulator/tokens';
import { jsonLines } from '../support/jsonLines';
import { RECONCILIATION_BASIC, RECONCILIATION_FULL, USAGE_BASIC, USAGE_FULL } from '../support/referenceAttributes';
import { download, fileUrl, getJson, pollUntilFinished, postExport, type ManifestBody } from './graphRequests';

const SOURCE = 'msbilling';
const GRAPH_AUDIENCE = 'https://graph.microsoft.com';
const authority = createTokenAuthority();
const SCENARIO = { notStartedPolls: 0, runningPolls: 1, fileCount: 2, rowsPerFile: 30 } as const;

const PATHS = {
  'billed-usage': '/reports/partners/billing/usage/billed',
  'billed-reconciliation': '/reports/partners/billing/reconciliation/billed',
  'unbilled-reconciliation': '/reports/partners/billing/reconciliation/unbilled',
} as const;
type Kind = keyof typeof PATHS;

let azurite: Azurite;
let billing: BillingEmulator;
let token: string;

beforeAll(async () => {
  azurite = await startAzurite({ accounts: [{ name: SOURCE, key: randomBytes(64).toString('base64') }] });
  billing = await startBillingEmulator({
    authority,
    source: { blobEndpoint: azurite.blobEndpoint(SOURCE), accountName: SOURCE, accountKey: azurite.accountKey(SOURCE) },
    scenario: SCENARIO,
  });
  token = authority.issue({ resource: GRAPH_AUDIENCE }).token;
});

afterAll(async () => {
  await billing?.stop();
  await azurite?.stop();
});

beforeEach(() => billing.setScenario(SCENARIO));

/** POSTs the export and returns its final operation answer. */
async function runExport(kind: Kind, body: unknown, action = 'export'): Promise<Record<string, unknown>> {
  const response = await postExport(billing, token, body, `${PATHS[kind]}/${action}`);
  const location = response.headers.get('location');
  if (response.status !== 202 || !location) throw new Error(`expected 202 with Location, got ${response.status}: ${await response.text()}`);
  expect(await response.text()).toBe('');
  return (await pollUntilFinished(location, token)).at(-1)!.body;
}

async function manifestOf(kind: Kind, body: unknown, action?: string): Promise<ManifestBody> {
  const final = await runExport(kind, body, action);
  expect(final).toMatchObject({ '@odata.type': '#microsoft.graph.partners.billing.exportSuccessOperation', status: 'succeeded' });
  return (await getJson(final['resourceLocation@odata.navigationLink'] as string, token)).body as ManifestBody;
}

/** Every row of every file, downloaded with the manifest's SAS and read with zlib and JSON.parse. */
async function rowsOf(manifest: ManifestBody): Promise<Array<Record<string, unknown>>> {
  const files = await Promise.all(manifest.blobs.map(({ name }) => download(fileUrl(manifest, name))));
  return files.flatMap(jsonLines);
}

const newest = (currency: string): { id: string; billingMonth: string } => invoiceCatalogue(new Date()).find((invoice) => invoice.currency === currency)!;
const sorted = (names: readonly string[]): string[] => [...names].sort();

describe('billed usage and billed reconciliation', () => {
  it.each([
    ['billed-usage', 'full', USAGE_FULL, 'export'],
    ['billed-usage', 'basic', USAGE_BASIC, 'microsoft.graph.partners.billing.export'],
    ['billed-reconciliation', 'full', RECONCILIATION_FULL, 'microsoft.graph.partners.billing.export'],
    ['billed-reconciliation', 'basic', RECONCILIATION_BASIC, 'export'],
  ] as const)('%s (%s, .../%s) exports the invoice: its month, currency and number on every row', async (kind, attributeSet, attributes, action) => {
    const invoice = newest('EUR');
    const manifest = await manifestOf(kind, { invoiceId: invoice.id, attributeSet }, action);
    const rows = await rowsOf(manifest);
    const container = kind === 'billed-usage' ? 'billedusagefastpath' : 'billedreconfastpath';

    expect(invoice.id).toBe('G000000001');
    expect(manifest.rootDirectory).toMatch(
      new RegExp(
        `^${azurite.blobEndpoint(SOURCE)}/${container}/v1/PartnerTenantId=${EMULATED_PARTNER_TENANT_ID}/BillingMonth=${invoice.billingMonth.replace('-', '')}` +
          `/InvoiceId=G000000001/InvoiceVersion=\\d{12}/Fragment=${attributeSet}/PartitionType=default$`,
      ),
    );
    expect(manifest.blobCount).toBe(manifest.blobs.length);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(sorted(Object.keys(row))).toEqual(sorted(attributes));
      expect(row).toMatchObject({
        PartnerId: EMULATED_PARTNER_TENANT_ID,
        InvoiceNumber: 'G000000001',
        ChargeStartDate: `${invoice.billingMonth}-01T00:00:00Z`,
      });
      expect(row[kind === 'billed-usage' ? 'BillingCurrency' : 'Currency']).toBe('EUR');
    }
    expect(billing.exports().at(-1)).toMatchObject({
      kind,
      invoiceId: 'G000000001',
      body: { invoiceId: 'G000000001', attributeSet },
      billingMonth: invoice.billingMonth,
      currency: 'EUR',
      outcome: 'succeeded',
      eTag: manifest.eTag,
      blobNames: manifest.blobs.map((blob) => blob.name),
    });
    expect(
      billing
        .requests()
        .filter((request) => request.method === 'POST')
        .at(-1),
    ).toEqual({
      method: 'POST',
      path: `/v1.0${PATHS[kind]}/${action}`,
      authorized: true,
      exportKind: kind,
      invoiceId: 'G000000001',
    });
  });

  it("of one invoice: the usage holds the scenario's rows, and the reconciliation's Azure plan lines bill exactly that usage", async () => {
    const invoice = newest('EUR');
    const usage = await rowsOf(await manifestOf('billed-usage', { invoiceId: invoice.id }));
    const reconciliation = await rowsOf(await manifestOf('billed-reconciliation', { invoiceId: invoice.id }));
    const azurePlan = reconciliation.filter((row) => row.ProductCategory === 'Azure');
    const customers = (rows: ReadonlyArray<Record<string, unknown>>) => new Set(rows.map((row) => row.CustomerId));
    const sum = (rows: ReadonlyArray<Record<string, unknown>>, column: string) => rows.reduce((total, row) => total + (row[column] as number), 0);

    expect(usage).toHaveLength(SCENARIO.fileCount * SCENARIO.rowsPerFile);
    expect(azurePlan.length).toBeGreaterThan(0);
    expect(customers(azurePlan)).toEqual(customers(usage));
    expect(sum(azurePlan, 'BillableQuantity')).toBeCloseTo(sum(usage, 'Quantity'), 4);
  });

  it.each([
    ['billed-usage', 0],
    ['billed-reconciliation', 1],
  ] as const)(
    '%s: the same invoice twice gives the same eTag; the re-issued invoice a second eTag once re-issued (customerCredit lines: %i)',
    async (kind, creditLines) => {
      const first = await manifestOf(kind, { invoiceId: 'G000000004' });
      const again = await manifestOf(kind, { invoiceId: 'G000000004', attributeSet: 'full' });
      const beforeReissue = await manifestOf(kind, { invoiceId: REISSUED_INVOICE_ID });
      billing.setScenario({ ...SCENARIO, invoiceReissued: true });
      const reissued = await manifestOf(kind, { invoiceId: REISSUED_INVOICE_ID });
      const reissuedAgain = await manifestOf(kind, { invoiceId: REISSUED_INVOICE_ID });

      expect(again.id).not.toBe(first.id);
      expect(again.eTag).toBe(first.eTag);
      expect(again.rootDirectory).toBe(first.rootDirectory);
      expect(again.blobs).toEqual(first.blobs);
      expect(reissued.eTag).not.toBe(beforeReissue.eTag);
      expect(reissued.rootDirectory).not.toBe(beforeReissue.rootDirectory);
      expect(reissued.rootDirectory.replace(/InvoiceVersion=\d+/, '')).toBe(beforeReissue.rootDirectory.replace(/InvoiceVersion=\d+/, ''));
      expect(reissuedAgain.eTag).toBe(reissued.eTag);
      const [rowsBefore, rowsAfter] = [await rowsOf(beforeReissue), await rowsOf(reissued)];
      expect(rowsAfter.every((row) => row.InvoiceNumber === REISSUED_INVOICE_ID)).toBe(true);
      // The re-issue corrects the invoice with a credit line; the month's usage stays as it was.
      const credits = rowsAfter.filter((row) => row.ChargeType === 'customerCredit');
      expect(credits).toHaveLength(creditLines);
      expect(rowsAfter.filter((row) => row.ChargeType !== 'customerCredit')).toEqual(rowsBefore);
    },
  );

  describe('an invoice Graph cannot export', () => {
    const tooOldId = `G${String(invoiceCatalogue(new Date()).length + 1).padStart(9, '0')}`;

    it.each([
      ['billed-usage', 'G999999999', 'InvoiceNotFound', "Invoice 'G999999999' was not found"],
      ['billed-reconciliation', 'G999999999', 'InvoiceNotFound', "Invoice 'G999999999' was not found"],
      ['billed-usage', 'not-an-invoice', 'InvoiceNotFound', "Invoice 'not-an-invoice' was not found"],
      ['billed-reconciliation', tooOldId, 'InvoiceNotAvailable', `Invoice '${tooOldId}' bills `],
    ] as const)('%s of %s: by default 202, then a failedOperation %s naming it, and no files', async (kind, invoiceId, code, message) => {
      const final = await runExport(kind, { invoiceId });

      expect(final).toEqual({
        '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
        id: expect.any(String),
        status: 'failed',
        createdDateTime: expect.any(String),
        lastActionDateTime: expect.any(String),
        error: { code, message: expect.stringContaining(message), target: 'invoiceId' },
      });
      expect(billing.exports().at(-1)).toMatchObject({ kind, invoiceId, outcome: 'failed', error: { code }, blobNames: [], eTag: '', rootDirectory: '' });
    });

    it('names the first billing month that can be exported when the invoice is too old', async () => {
      const catalogue = invoiceCatalogue(new Date());

      const final = await runExport('billed-usage', { invoiceId: tooOldId });

      expect((final.error as { message: string }).message).toContain(`before ${catalogue.at(-1)!.billingMonth}`);
    });

    it.each([
      ['billed-usage', 'G999999999'],
      ['billed-reconciliation', tooOldId],
    ] as const)('%s of %s: with invoiceErrors badRequest, a synchronous 400 BadRequest naming it, and no operation', async (kind, invoiceId) => {
      billing.setScenario({ ...SCENARIO, invoiceErrors: 'badRequest' });
      const exportsBefore = billing.exports().length;

      const response = await postExport(billing, token, { invoiceId }, `${PATHS[kind]}/export`);

      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.json()).toMatchObject({ error: { code: 'BadRequest', message: expect.stringContaining(`Invoice '${invoiceId}'`) } });
      expect(billing.exports()).toHaveLength(exportsBefore);
    });

    it('still exports a known invoice with invoiceErrors badRequest', async () => {
      billing.setScenario({ ...SCENARIO, invoiceErrors: 'badRequest' });

      expect((await manifestOf('billed-usage', { invoiceId: 'G000000003' })).blobCount).toBe(SCENARIO.fileCount);
    });
  });

  it.each(['billed-usage', 'billed-reconciliation'] as const)('%s: the documented 5000 No data available when the scenario has no data', async (kind) => {
    billing.setScenario({ ...SCENARIO, outcome: 'failed' });

    const final = await runExport(kind, { invoiceId: 'G000000001' });

    expect(final).toMatchObject({ status: 'failed', error: { code: '5000', message: 'No data available' } });
    expect(billing.exports().at(-1)).toMatchObject({ kind, invoiceId: 'G000000001', outcome: 'failed', currency: 'EUR' });
  });
});

describe('unbilled reconciliation', () => {
  it.each([
    ['full', RECONCILIATION_FULL, 'export'],
    ['basic', RECONCILIATION_BASIC, 'microsoft.graph.partners.billing.export'],
  ] as const)('exports the open line items of the month and currency (%s, .../%s)', async (attributeSet, attributes, action) => {
    const month = new Date().toISOString().slice(0, 7);
    const manifest = await manifestOf('unbilled-reconciliation', { currencyCode: 'gbp', billingPeriod: 'current', attributeSet }, action);
    const rows = await rowsOf(manifest);

    expect(manifest.rootDirectory).toMatch(
      new RegExp(
        `^${azurite.blobEndpoint(SOURCE)}/unbilledreconfastpath/v1/\\d{12}/PartnerTenantId=${EMULATED_PARTNER_TENANT_ID}` +
          `/BillingMonth=${month.replace('-', '')}/Currency=GBP/Fragment=${attributeSet}/PartitionType=default$`,
      ),
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(sorted(Object.keys(row))).toEqual(sorted(attributes));
      expect(row).toMatchObject({ Currency: 'GBP', InvoiceNumber: '', ChargeStartDate: `${month}-01T00:00:00Z` });
    }
    // Licences and Azure plan usage both.
    expect(new Set(rows.map((row) => row.ProductCategory))).toEqual(new Set(['OnlineServices', 'Azure']));
    expect(billing.exports().at(-1)).toMatchObject({
      kind: 'unbilled-reconciliation',
      body: { currencyCode: 'GBP', billingPeriod: 'current', attributeSet },
      billingMonth: month,
      currency: 'GBP',
      eTag: manifest.eTag,
    });
    expect(billing.exports().at(-1)!.invoiceId).toBeUndefined();
  });

  it('answers the documented 5000 No data available for a currency the partner has no customers in, and exports the others', async () => {
    billing.setScenario({ ...SCENARIO, noDataCurrencies: ['NOK'] });

    const nok = await runExport('unbilled-reconciliation', { currencyCode: 'NOK', billingPeriod: 'last' });
    const eur = await manifestOf('unbilled-reconciliation', { currencyCode: 'EUR', billingPeriod: 'last' });

    expect(nok).toMatchObject({
      '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
      status: 'failed',
      error: { code: '5000', message: 'No data available' },
    });
    expect(eur.blobCount).toBeGreaterThan(0);
  });

  it('gives the same eTag for the same month exported twice', async () => {
    const first = await manifestOf('unbilled-reconciliation', { currencyCode: 'USD', billingPeriod: 'last' });
    const second = await manifestOf('unbilled-reconciliation', { currencyCode: 'USD', billingPeriod: 'last' });

    expect(second.eTag).toBe(first.eTag);
    expect(second.blobs).toEqual(first.blobs);
  });
});

describe('body validation, as Graph checks action parameters', () => {
  it.each([
    ['billed-usage', {}, 'invoiceId is missing: expected a Partner Center invoice number such as "G016907411"'],
    ['billed-reconciliation', { attributeSet: 'basic' }, 'invoiceId is missing'],
    ['billed-usage', { invoiceId: 16907411 }, 'invoiceId is 16907411'],
    ['billed-reconciliation', { invoiceId: '  ' }, 'invoiceId is "  "'],
    [
      'billed-usage',
      { invoiceId: 'G000000001', currencyCode: 'EUR' },
      "The parameter 'currencyCode' in the request payload is not a valid parameter for the operation 'export' (expected invoiceId, attributeSet)",
    ],
    ['billed-reconciliation', { invoiceId: 'G000000001', billingPeriod: 'last' }, "The parameter 'billingPeriod'"],
    ['billed-usage', { invoiceId: 'G000000001', attributeSet: 'Full' }, 'attributeSet is "Full": expected one of "full", "basic"'],
    ['billed-reconciliation', ['G000000001'], 'must be a JSON object with invoiceId, attributeSet'],
    ['unbilled-reconciliation', { billingPeriod: 'last' }, 'currencyCode is missing'],
    ['unbilled-reconciliation', { currencyCode: 'EUR' }, 'billingPeriod is missing: expected one of "current", "last"'],
    ['unbilled-reconciliation', { currencyCode: 'EUR', billingPeriod: 'last', invoiceId: 'G000000001' }, "The parameter 'invoiceId'"],
    ['unbilled-reconciliation', { currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'unknownFutureValue' }, 'attributeSet is "unknownFutureValue"'],
  ] as const)('%s with %j: 400 BadRequest naming the problem, no export', async (kind, body, message) => {
    const exportsBefore = billing.exports().length;

    const response = await postExport(billing, token, body, `${PATHS[kind]}/export`);

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: 'BadRequest', message: expect.stringContaining(message), innerError: { 'request-id': expect.any(String) } },
    });
    expect(billing.exports()).toHaveLength(exportsBefore);
  });

  it.each([
    ['no Content-Type', {}, 400, 'BadRequest', 'must contain the Content-Type header declaration'],
    ['a Content-Type other than JSON', { 'Content-Type': 'text/plain' }, 415, 'UnsupportedMediaType', "The Content-Type 'text/plain' is not supported"],
  ])('answers a body with %s like Graph, and starts no export', async (_case, headers, status, code, message) => {
    const exportsBefore = billing.exports().length;

    const response = await fetch(`${billing.baseUrl}${PATHS['billed-usage']}/export`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, ...headers },
      body: new TextEncoder().encode(JSON.stringify({ invoiceId: 'G000000001' })),
    });

    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ error: { code, message: expect.stringContaining(message) } });
    expect(billing.exports()).toHaveLength(exportsBefore);
  });

  it('accepts application/json with parameters, as Graph does', async () => {
    const response = await fetch(`${billing.baseUrl}${PATHS['billed-usage']}/export`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ invoiceId: 'G000000001' }),
    });

    expect(response.status).toBe(202);
  });

  it.each(Object.values(PATHS))('requires a Graph token on %s/export', async (path) => {
    const response = await postExport(billing, authority.issue({ resource: 'https://storage.azure.com' }).token, { invoiceId: 'G000000001' }, `${path}/export`);

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
  });
});
