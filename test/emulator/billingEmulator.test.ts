import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { BlobServiceClient, type BlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../emulator/azurite';
import { DEFAULT_SCENARIO, startBillingEmulator, type BillingEmulator, type BillingEmulatorOptions } from '../../emulator/billingEmulator';
import { EXPORT_CONTAINER } from '../../emulator/exportFiles';
import { closeServer, listenOnLoopback } from '../../emulator/httpServer';
import { createTokenAuthority, EMULATED_PARTNER_TENANT_ID } from '../../emulator/tokens';
import { download, EXPORT_PATH, exportManifest, fileUrl, getJson, pollUntilFinished, postExport, startExport, type ManifestBody } from './graphRequests';
import { jsonLines } from '../support/jsonLines';
import { USAGE_BASIC, USAGE_FULL } from '../support/referenceAttributes';

const SOURCE = 'msbilling';
const DESTINATION = 'partnerdest';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const authority = createTokenAuthority();
const GRAPH_AUDIENCE = 'https://graph.microsoft.com';

let azurite: Azurite;
let billing: BillingEmulator;
let token: string;
/** A second emulator on a clock the tests move by hand. */
let clock: Date;
let clocked: BillingEmulator;
let clockedToken: string;

function sourceOf(running: Azurite): BillingEmulatorOptions['source'] {
  return { blobEndpoint: running.blobEndpoint(SOURCE), accountName: SOURCE, accountKey: running.accountKey(SOURCE) };
}

beforeAll(async () => {
  azurite = await startAzurite({
    accounts: [
      { name: SOURCE, key: randomBytes(64).toString('base64') },
      { name: DESTINATION, key: randomBytes(64).toString('base64') },
    ],
  });
  billing = await startBillingEmulator({ authority, source: sourceOf(azurite) });
  token = authority.issue({ resource: GRAPH_AUDIENCE }).token;
  clocked = await startBillingEmulator({ authority, source: sourceOf(azurite), now: () => clock });
  clockedToken = authority.issue({ resource: GRAPH_AUDIENCE }).token;
});

afterAll(async () => {
  await billing?.stop();
  await clocked?.stop();
  await azurite?.stop();
});

beforeEach(() => {
  billing.setScenario({});
  clocked.setScenario({});
  clock = new Date();
});

describe('authentication', () => {
  it('answers 401 InvalidAuthenticationToken without a bearer token, and records the request as unauthorized', async () => {
    const response = await postExport(billing, undefined, { currencyCode: 'EUR', billingPeriod: 'current' });

    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(await response.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty.' } });
    expect(billing.requests().at(-1)).toEqual({ method: 'POST', path: `/v1.0${EXPORT_PATH}`, authorized: false, exportKind: 'unbilled-usage' });
  });

  it.each([
    // Graph checks the audience against its own, never against the host the request reached.
    ["issued for the emulator's own URL", () => authority.issue({ resource: billing.origin }).token, "audience is 'http://127.0.0.1:"],
    [
      'issued for another resource',
      () => authority.issue({ resource: 'https://storage.azure.com' }).token,
      "expected 'https://graph.microsoft.com' or '00000003-0000-0000-c000-000000000000'",
    ],
    ['signed by another authority', () => createTokenAuthority().issue({ resource: GRAPH_AUDIENCE }).token, 'signature is invalid'],
  ])('answers 401 for a token %s', async (_case, makeToken, reason) => {
    const response = await postExport(billing, makeToken(), { currencyCode: 'EUR', billingPeriod: 'current' });

    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken', message: expect.stringContaining(reason) } });
  });

  it("accepts a token whose audience is Graph's application id", async () => {
    const response = await postExport(billing, authority.issue({ resource: '00000003-0000-0000-c000-000000000000' }).token, {
      currencyCode: 'EUR',
      billingPeriod: 'current',
    });

    expect(response.status).toBe(202);
  });

  it('requires the bearer token on operation and manifest GETs too', async () => {
    const manifest = await exportManifest(billing, token);
    const operationUrl = await startExport(billing, token);

    for (const url of [operationUrl, `${billing.baseUrl}/reports/partners/billing/manifests/${manifest.id}`]) {
      const response = await fetch(url);
      expect(response.status).toBe(401);
    }
    expect(
      billing
        .requests()
        .slice(-2)
        .map((request) => request.authorized),
    ).toEqual([false, false]);
  });
});

describe('POST .../usage/unbilled/export', () => {
  it.each([EXPORT_PATH, '/reports/partners/billing/usage/unbilled/microsoft.graph.partners.billing.export'])(
    'answers 202 Accepted with no body and an absolute operation Location (%s)',
    async (path) => {
      const response = await postExport(billing, token, { currencyCode: 'USD', attributeSet: 'full', billingPeriod: 'current' }, path);

      expect(response.status).toBe(202);
      expect(await response.text()).toBe('');
      const location = response.headers.get('location')!;
      expect(location.startsWith(`${billing.origin}/v1.0/reports/partners/billing/operations/`)).toBe(true);
      expect(location.split('/').at(-1)).toMatch(GUID);
    },
  );

  it.each([
    ['no currencyCode', { billingPeriod: 'current' }, 'currencyCode is missing'],
    ['a currencyCode that is not 3 letters', { currencyCode: 'EURO', billingPeriod: 'current' }, 'currencyCode is "EURO"'],
    ['no billingPeriod', { currencyCode: 'EUR' }, 'billingPeriod is missing: expected one of "current", "last"'],
    ['an unknown billingPeriod', { currencyCode: 'EUR', billingPeriod: 'previous' }, 'billingPeriod is "previous"'],
    ['an unknown attributeSet', { currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'all' }, 'attributeSet is "all"'],
    ['an unknown parameter', { currencyCode: 'EUR', billingPeriod: 'last', invoiceId: 'G016907411' }, "The parameter 'invoiceId'"],
    ['a body that is not an object', ['EUR'], 'must be a JSON object'],
    ['a body that is not JSON', '{"currencyCode":', 'not valid JSON'],
  ])('answers 400 BadRequest naming the problem for %s', async (_case, body, message) => {
    const response = await postExport(billing, token, body);

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'BadRequest', message: expect.stringContaining(message) } });
  });

  it('answers 404 naming every emulated route for a route it does not emulate, and 405 for the wrong method', async () => {
    const unknown = await postExport(billing, token, { invoiceId: 'G016907411' }, '/reports/partners/billing/usage/export');
    const getExport = await fetch(`${billing.baseUrl}${EXPORT_PATH}`, { headers: { Authorization: `Bearer ${token}` } });

    expect(unknown.status).toBe(404);
    const { error } = (await unknown.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('ResourceNotFound');
    for (const entity of ['usage/unbilled', 'usage/billed', 'reconciliation/unbilled', 'reconciliation/billed']) {
      expect(error.message).toContain(`POST /v1.0/reports/partners/billing/${entity}/export`);
    }
    expect(getExport.status).toBe(405);
    expect(getExport.headers.get('allow')).toBe('POST');
  });
});

describe('GET .../operations/{id}', () => {
  it('reports notStarted, then running with Retry-After, then succeeded with a manifest link', async () => {
    const operationUrl = await startExport(billing, token);
    const answers = await pollUntilFinished(operationUrl, token);
    const pending = answers.slice(0, -1);
    const final = answers.at(-1)!;

    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(pending.map((answer) => answer.body.status).slice(0, 2)).toEqual(['notStarted', 'running']);
    expect(pending.slice(1).every((answer) => answer.body.status === 'running')).toBe(true);
    expect(pending.map((answer) => answer.headers.get('retry-after'))).toEqual(pending.map(() => '1'));
    expect(pending[0]!.body).toEqual({
      '@odata.type': '#microsoft.graph.partners.billing.runningOperation',
      id: operationUrl.split('/').at(-1),
      status: 'notStarted',
      createdDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/),
      lastActionDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/),
    });
    expect(final.headers.get('retry-after')).toBeNull();
    expect(final.body).toEqual({
      '@odata.type': '#microsoft.graph.partners.billing.exportSuccessOperation',
      id: pending[0]!.body.id,
      status: 'succeeded',
      createdDateTime: pending[0]!.body.createdDateTime,
      lastActionDateTime: expect.stringMatching(/Z$/),
      'resourceLocation@odata.navigationLink': expect.stringMatching(new RegExp(`^${billing.origin}/v1\\.0/reports/partners/billing/manifests/[0-9a-f-]{36}$`)),
    });
  });

  it('omits Retry-After when the scenario says so', async () => {
    billing.setScenario({ retryAfterSeconds: null });

    const answers = await pollUntilFinished(await startExport(billing, token), token);

    expect(answers.length).toBeGreaterThan(1);
    expect(answers.map((answer) => answer.headers.get('retry-after'))).toEqual(answers.map(() => null));
  });

  it('stays running until readyAfterSeconds have passed on the emulator clock', async () => {
    clocked.setScenario({ readyAfterSeconds: 60, notStartedPolls: 0, runningPolls: 0 });
    const operationUrl = await startExport(clocked, clockedToken);
    await waitForUploadedFiles(clocked);

    expect((await getJson(operationUrl, clockedToken)).body.status).toBe('running');
    clock = new Date(clock.getTime() + 59_000);
    expect((await getJson(operationUrl, clockedToken)).body.status).toBe('running');
    clock = new Date(clock.getTime() + 1_000);
    // Polled rather than read once: the upload's completion may trail the blobs' appearance by a moment.
    expect((await pollUntilFinished(operationUrl, clockedToken)).at(-1)!.body.status).toBe('succeeded');
  });

  it('keeps reporting running while the files are still uploading', async () => {
    // Storage that accepts connections and never answers: the upload can never finish.
    const stalledStorage = createServer(() => undefined);
    const port = await listenOnLoopback(stalledStorage);
    const emulator = await startBillingEmulator({
      authority,
      source: { blobEndpoint: `http://127.0.0.1:${port}/${SOURCE}`, accountName: SOURCE, accountKey: azurite.accountKey(SOURCE) },
      scenario: { notStartedPolls: 0, runningPolls: 0 },
    });
    try {
      const emulatorToken = authority.issue({ resource: GRAPH_AUDIENCE }).token;
      const operationUrl = await startExport(emulator, emulatorToken);

      for (let poll = 0; poll < 5; poll++) expect((await getJson(operationUrl, emulatorToken)).body.status).toBe('running');
    } finally {
      await emulator.stop();
      await closeServer(stalledStorage);
    }
  });

  it('reports a failedOperation when the files cannot be written', async () => {
    const emulator = await startBillingEmulator({
      authority,
      source: { ...sourceOf(azurite), accountKey: randomBytes(64).toString('base64') },
      scenario: { notStartedPolls: 0, runningPolls: 0 },
    });
    try {
      const emulatorToken = authority.issue({ resource: GRAPH_AUDIENCE }).token;

      const answers = await pollUntilFinished(await startExport(emulator, emulatorToken), emulatorToken);

      expect(answers.at(-1)!.body).toMatchObject({
        '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
        status: 'failed',
        error: { code: 'EmulatorUploadFailed', message: expect.stringContaining('could not upload the export files') },
      });
    } finally {
      await emulator.stop();
    }
  });

  it('reports the documented failedOperation, and produces no files, when the outcome is failed', async () => {
    billing.setScenario({ outcome: 'failed' });

    const answers = await pollUntilFinished(await startExport(billing, token), token);

    expect(answers.map((answer) => answer.body.status)).toEqual(['notStarted', 'running', 'failed']);
    expect(answers.at(-1)!.body).toEqual({
      '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
      id: expect.stringMatching(GUID),
      status: 'failed',
      createdDateTime: expect.any(String),
      lastActionDateTime: expect.any(String),
      error: { code: '5000', message: 'No data available' },
    });
    expect(billing.exports().at(-1)).toMatchObject({ outcome: 'failed', blobNames: [], eTag: '', totalBytes: 0 });
  });

  it.each(['completed', 'Succeeded'])('reports success with status %s when the scenario asks for it', async (successStatus) => {
    billing.setScenario({ successStatus });

    const answers = await pollUntilFinished(await startExport(billing, token), token);

    expect(answers.at(-1)!.body).toMatchObject({ '@odata.type': '#microsoft.graph.partners.billing.exportSuccessOperation', status: successStatus });
  });

  it('keeps the scenario that was in force when the export was POSTed', async () => {
    billing.setScenario({ notStartedPolls: 0, runningPolls: 0 });
    const operationUrl = await startExport(billing, token);
    billing.setScenario({ outcome: 'failed', runningPolls: 5 });

    const answers = await pollUntilFinished(operationUrl, token);

    expect(answers.every((answer) => answer.body.status === 'running' || answer.body.status === 'succeeded')).toBe(true);
    expect(answers.at(-1)!.body.status).toBe('succeeded');
  });

  it('answers 404 for an unknown operation id', async () => {
    const answer = await getJson(`${billing.baseUrl}/reports/partners/billing/operations/9ab9cb54-d07f-4f52-9ea6-a09d7de52c14`, token);

    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({
      error: { code: 'ResourceNotFound', message: expect.stringContaining('9ab9cb54-d07f-4f52-9ea6-a09d7de52c14') },
    });
  });
});

describe('the manifest', () => {
  it('has the documented shape, with files under the unbilled snapshot layout', async () => {
    const manifest = await exportManifest(billing, token, { currencyCode: 'eur', billingPeriod: 'current', attributeSet: 'basic' });
    const month = new Date().toISOString().slice(0, 7).replace('-', '');

    expect(manifest).toEqual({
      id: expect.stringMatching(GUID),
      schemaVersion: '2',
      dataFormat: 'compressedJSON',
      createdDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      eTag: expect.stringMatching(/^[A-Za-z0-9]{17}$/),
      partnerTenantId: EMULATED_PARTNER_TENANT_ID,
      rootDirectory: expect.stringMatching(
        new RegExp(
          `^${azurite.blobEndpoint(SOURCE)}/unbilledusagefastpath/v1/\\d{12}/PartnerTenantId=${EMULATED_PARTNER_TENANT_ID}` +
            `/BillingMonth=${month}/Currency=EUR/Fragment=basic/PartitionType=default$`,
        ),
      ),
      sasToken: expect.stringMatching(/^sv=.*&sr=c&sp=rl&sig=/),
      partitionType: 'default',
      blobCount: DEFAULT_SCENARIO.fileCount,
      blobs: Array.from({ length: DEFAULT_SCENARIO.fileCount }, (_, index) => ({
        name: expect.stringMatching(new RegExp(`^part-0000${index}-[0-9a-f-]{36}\\.c000\\.json\\.gz$`)),
        partitionValue: 'default',
      })),
    });
  });

  it('comes inline as resourceLocation when the scenario delivers it inline', async () => {
    billing.setScenario({ manifestDelivery: 'inline' });

    const answers = await pollUntilFinished(await startExport(billing, token), token);
    const final = answers.at(-1)!.body;
    const manifest = final.resourceLocation as ManifestBody;

    expect(final).not.toHaveProperty('resourceLocation@odata.navigationLink');
    expect(manifest).toMatchObject({ schemaVersion: '2', dataFormat: 'compressedJSON', blobCount: 3 });
    expect(jsonLines(await download(fileUrl(manifest, manifest.blobs[0]!.name)))).toHaveLength(DEFAULT_SCENARIO.rowsPerFile);
  });

  it('carries a SAS minted for each response, expiring sasLifetimeSeconds after the emulator clock', async () => {
    clocked.setScenario({ sasLifetimeSeconds: 600 });
    const first = await exportManifest(clocked, clockedToken);
    const manifestUrl = `${clocked.baseUrl}/reports/partners/billing/manifests/${first.id}`;

    clock = new Date(clock.getTime() + 120_000);
    const second = (await getJson(manifestUrl, clockedToken)).body as ManifestBody;

    const expiry = (manifest: ManifestBody): number => Date.parse(new URLSearchParams(manifest.sasToken).get('se')!);
    expect(expiry(second) - expiry(first)).toBeGreaterThanOrEqual(119_000);
    expect(Math.abs(expiry(second) - (clock.getTime() + 600_000))).toBeLessThan(1_000);
  });

  it('answers 404 for an unknown manifest id', async () => {
    const answer = await getJson(`${billing.baseUrl}/reports/partners/billing/manifests/8fe347d7-1e0f-4bd6-9091-4672691f32db`, token);

    expect(answer.status).toBe(404);
  });
});

describe('the exported files', () => {
  it('download with the SAS as gzip JSON Lines rows with the full attributes', async () => {
    billing.setScenario({ fileCount: 2, rowsPerFile: 25 });
    const manifest = await exportManifest(billing, token, { currencyCode: 'GBP', billingPeriod: 'current' });

    for (const { name } of manifest.blobs) {
      const response = await fetch(fileUrl(manifest, name));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/gzip');
      const rows = jsonLines(Buffer.from(await response.arrayBuffer()));
      expect(rows).toHaveLength(25);
      for (const row of rows) {
        expect(Object.keys(row).sort()).toEqual([...USAGE_FULL].sort());
        expect(row).toMatchObject({ BillingCurrency: 'GBP', PartnerId: EMULATED_PARTNER_TENANT_ID, InvoiceNumber: '' });
      }
    }
  });

  it('hold only the basic attributes for attributeSet basic', async () => {
    const manifest = await exportManifest(billing, token, { currencyCode: 'USD', billingPeriod: 'current', attributeSet: 'basic' });

    const rows = jsonLines(await download(fileUrl(manifest, manifest.blobs[0]!.name)));

    expect(Object.keys(rows[0]!).sort()).toEqual([...USAGE_BASIC].sort());
  });

  it('are identical across runs with the same seed: same eTag, names and bytes', async () => {
    const run = async (at: string): Promise<{ manifest: ManifestBody; files: Buffer[] }> => {
      const scenario = { seed: 42, fileCount: 2 };
      const emulator = await startBillingEmulator({ authority, source: sourceOf(azurite), now: () => new Date(at), scenario });
      try {
        const manifest = await exportManifest(emulator, authority.issue({ resource: GRAPH_AUDIENCE }).token);
        // Read with the account key: the SAS minted on this 2024 clock expired long ago.
        return { manifest, files: await Promise.all(manifest.blobs.map(({ name }) => sourceFile(manifest.rootDirectory, name).downloadToBuffer())) };
      } finally {
        await emulator.stop();
      }
    };

    // A few minutes apart: a new snapshot folder, so the second run cannot just read the first run's blobs.
    const first = await run('2024-10-08T00:35:00Z');
    const second = await run('2024-10-08T00:41:00Z');

    expect(first.manifest.rootDirectory).toContain('/v1/202410080035/');
    expect(second.manifest.rootDirectory).toContain('/v1/202410080041/');
    expect(second.manifest.eTag).toBe(first.manifest.eTag);
    expect(second.manifest.blobs).toEqual(first.manifest.blobs);
    expect(second.files).toEqual(first.files);
  });

  it('cover the previous month, across a year boundary, for billingPeriod last', async () => {
    clock = new Date('2024-01-15T10:00:00Z');

    const manifest = await exportManifest(clocked, clockedToken, { currencyCode: 'EUR', billingPeriod: 'last' });
    const rows = jsonLines(await sourceFile(manifest.rootDirectory, manifest.blobs[0]!.name).downloadToBuffer());

    expect(manifest.rootDirectory).toContain('/BillingMonth=202312/');
    expect(clocked.exports().at(-1)!.billingMonth).toBe('2023-12');
    expect(rows.every((row) => String(row.UsageDate).startsWith('2023-12-'))).toBe(true);
  });

  it('are listed by exports() as the manifest describes them', async () => {
    const manifest = await exportManifest(billing, token, { currencyCode: 'sek', billingPeriod: 'current' });
    const files = await Promise.all(manifest.blobs.map(({ name }) => download(fileUrl(manifest, name))));

    expect(billing.exports().at(-1)).toEqual({
      operationId: expect.stringMatching(GUID),
      kind: 'unbilled-usage',
      body: { currencyCode: 'SEK', billingPeriod: 'current', attributeSet: 'full' },
      billingMonth: new Date().toISOString().slice(0, 7),
      currency: 'SEK',
      outcome: 'succeeded',
      rootDirectory: manifest.rootDirectory,
      blobNames: manifest.blobs.map((blob) => blob.name),
      eTag: manifest.eTag,
      totalBytes: files.reduce((sum, file) => sum + file.length, 0),
    });
  });

  it('can no longer be read once the SAS has expired; a fresh manifest GET gives a working SAS', async () => {
    clocked.setScenario({ sasLifetimeSeconds: 60 });
    const manifest = await exportManifest(clocked, clockedToken);
    const manifestUrl = `${clocked.baseUrl}/reports/partners/billing/manifests/${manifest.id}`;
    const name = manifest.blobs[0]!.name;

    clock = new Date(Date.now() - 120_000);
    const stale = (await getJson(manifestUrl, clockedToken)).body as ManifestBody;
    const expired = await fetch(fileUrl(stale, name));
    clock = new Date();
    const fresh = (await getJson(manifestUrl, clockedToken)).body as ManifestBody;

    expect(expired.status).toBe(403);
    expect(expired.headers.get('x-ms-error-code')).toBe('AuthorizationFailure');
    expect((await fetch(fileUrl(fresh, name))).status).toBe(200);
  });
});

describe('copying into the partner account (what the app does)', () => {
  const destination = (): ReturnType<BlobServiceClient['getContainerClient']> =>
    BlobServiceClient.fromConnectionString(azurite.connectionString(DESTINATION)).getContainerClient('billing-exports');

  it('copies a file across accounts with beginCopyFromURL and the manifest SAS, keeping length and MD5', async () => {
    const manifest = await exportManifest(billing, token);
    const name = manifest.blobs[0]!.name;
    const source = sourceFile(manifest.rootDirectory, name);
    await destination().createIfNotExists();
    const target = destination().getBlobClient(`unbilled/${manifest.eTag}/${name}`);

    const poller = await target.beginCopyFromURL(fileUrl(manifest, name));
    const result = await poller.pollUntilDone();
    const [copied, original] = await Promise.all([target.getProperties(), source.getProperties()]);

    expect(result.copyStatus).toBe('success');
    expect(copied.contentLength).toBe(original.contentLength);
    expect(Buffer.from(copied.contentMD5!).toString('base64')).toBe(Buffer.from(original.contentMD5!).toString('base64'));
    expect(await target.downloadToBuffer()).toEqual(await download(fileUrl(manifest, name)));
  });

  it('refuses the copy with 403 CannotVerifyCopySource when the SAS has expired', async () => {
    clocked.setScenario({ sasLifetimeSeconds: 60 });
    const manifest = await exportManifest(clocked, clockedToken);
    clock = new Date(Date.now() - 120_000);
    const stale = (await getJson(`${clocked.baseUrl}/reports/partners/billing/manifests/${manifest.id}`, clockedToken)).body as ManifestBody;
    await destination().createIfNotExists();

    const copy = destination().getBlobClient('expired-copy').beginCopyFromURL(fileUrl(stale, stale.blobs[0]!.name));

    await expect(copy).rejects.toMatchObject({ statusCode: 403, code: 'CannotVerifyCopySource' });
  });
});

/** A file of an export, read with the source account's key rather than the manifest SAS. */
function sourceFile(rootDirectory: string, name: string): BlobClient {
  const [, directory] = rootDirectory.split(`/${EXPORT_CONTAINER}/`);
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString(SOURCE)).getContainerClient(EXPORT_CONTAINER);
  return container.getBlobClient(`${directory!}/${name}`);
}

/** Waits until the files of the emulator's latest export are all in the source account. */
async function waitForUploadedFiles(emulator: BillingEmulator): Promise<void> {
  const latest = emulator.exports().at(-1)!;
  for (let attempt = 0; attempt < 200; attempt++) {
    const present = await Promise.all(latest.blobNames.map((name) => sourceFile(latest.rootDirectory, name).exists()));
    if (present.every(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the export files never appeared in the source account');
}
