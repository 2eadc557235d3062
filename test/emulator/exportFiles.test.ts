import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite } from '../../emulator/azurite';
import { resolveScenario } from '../../emulator/billingScenario';
import { EXPORT_CONTAINER, EXPORT_CONTAINERS, planExport, uploadExport, type ExportPlanOptions, type ExportSubject } from '../../emulator/exportFiles';
import type { BilledExportKind } from '../../emulator/exportRequest';
import { currentVersion, findInvoice, REISSUED_INVOICE_ID } from '../../emulator/invoices';
import { reconciliationRows } from '../../emulator/reconciliationData';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';

const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
const OPTIONS: ExportPlanOptions = {
  request: { kind: 'unbilled-usage', currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'full' },
  scenario: { seed: 3, fileCount: 3, rowsPerFile: 20 },
  partnerTenantId: TENANT,
  requestedAt: new Date('2024-03-04T06:00:00Z'),
};

function jsonLines(content: Buffer): Array<Record<string, unknown>> {
  const text = gunzipSync(content).toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('planExport', () => {
  it('without fileSizeBytes, makes each file the gzip of its own rows, as before', () => {
    const plan = planExport(OPTIONS);

    expect(plan.files).toHaveLength(3);
    plan.files.forEach((file, index) => {
      const rows = usageRows({
        seed: 3,
        billingMonth: '2024-02',
        currency: 'EUR',
        attributeSet: 'full',
        count: 20,
        startIndex: index * 20,
        partnerTenantId: TENANT,
      });
      expect(file.content.equals(gzipJsonLines(rows))).toBe(true);
      expect(file.parts).toHaveLength(1);
      expect(file.size).toBe(file.content.length);
    });
    expect(plan.totalBytes).toBe(plan.files.reduce((sum, file) => sum + file.content.length, 0));
    expect(planExport({ ...OPTIONS, scenario: { ...OPTIONS.scenario, fileSizeBytes: null } }).eTag).toBe(plan.eTag);
  });

  it.each([64 * 1024, 512 * 1024, 3 * 1024 * 1024])('with fileSizeBytes %i, fills every file to about that size with valid JSON lines', (fileSizeBytes) => {
    const plan = planExport({ ...OPTIONS, scenario: { ...OPTIONS.scenario, fileSizeBytes } });

    for (const [index, file] of plan.files.entries()) {
      expect(file.size).toBe(file.content.length);
      expect(Math.abs(file.size - fileSizeBytes) / fileSizeBytes).toBeLessThan(0.02);
      const rows = jsonLines(file.content);
      // The file's own rows come first, then the filler.
      const own = usageRows({
        seed: 3,
        billingMonth: '2024-02',
        currency: 'EUR',
        attributeSet: 'full',
        count: 20,
        startIndex: index * 20,
        partnerTenantId: TENANT,
      });
      expect(rows.slice(0, 20)).toEqual(own);
      expect(rows.length).toBeGreaterThan(20);
      expect(rows.every((row) => row.PartnerId === TENANT && row.BillingCurrency === 'EUR')).toBe(true);
    }
    expect(plan.totalBytes).toBe(plan.files.reduce((sum, file) => sum + file.size, 0));
  });

  it('leaves a file whose own rows already reach fileSizeBytes as it is', () => {
    const natural = planExport(OPTIONS);
    const filled = planExport({ ...OPTIONS, scenario: { ...OPTIONS.scenario, fileSizeBytes: 100 } });

    filled.files.forEach((file, index) => expect(file.content.equals(natural.files[index]!.content)).toBe(true));
  });

  it('is deterministic with fileSizeBytes: same seed, same bytes, MD5 and eTag; the size is part of the eTag', () => {
    const options = { ...OPTIONS, scenario: { ...OPTIONS.scenario, fileSizeBytes: 256 * 1024 } };
    const first = planExport(options);
    const second = planExport(options);

    expect(second.eTag).toBe(first.eTag);
    first.files.forEach((file, index) => {
      expect(second.files[index]!.content.equals(file.content)).toBe(true);
      expect(second.files[index]!.contentMD5.equals(file.contentMD5)).toBe(true);
    });
    expect(planExport(OPTIONS).eTag).not.toBe(first.eTag);
    expect(planExport({ ...options, scenario: { ...options.scenario, seed: 4 } }).files[0]!.content.equals(first.files[0]!.content)).toBe(false);
  });

  it('produces a large export without holding every file in memory', () => {
    const plan = planExport({ ...OPTIONS, scenario: { seed: 3, fileCount: 64, rowsPerFile: 5, fileSizeBytes: 16 * 1024 * 1024 } });

    expect(plan.totalBytes).toBeGreaterThan(1000 * 1024 * 1024);
    // The files share the filler block: the parts are far fewer distinct buffers than files × parts,
    // and the bytes actually held are a small fraction of the bytes the export describes.
    const distinct = new Set(plan.files.flatMap((file) => file.parts));
    expect(distinct.size).toBeLessThan(plan.files.length * 3);
    const held = [...distinct].reduce((sum, part) => sum + part.length, 0);
    expect(held).toBeLessThan(plan.totalBytes / 16);
  });
});

describe('planExport per kind', () => {
  const unbilled = (kind: 'unbilled-usage' | 'unbilled-reconciliation', billingPeriod: 'current' | 'last', at: string): ReturnType<typeof planExport> =>
    planExport({ ...OPTIONS, request: { kind, currencyCode: 'EUR', billingPeriod, attributeSet: 'full' }, requestedAt: new Date(at) });
  const invoiceAt = new Date('2024-03-10T06:00:00Z');
  const billed = (
    kind: BilledExportKind,
    id: string,
    options: { reissued?: boolean; at?: string; attributeSet?: 'full' | 'basic' } = {},
  ): ReturnType<typeof planExport> => {
    const invoice = currentVersion(findInvoice(id, invoiceAt)!, options.reissued ?? false);
    const request: ExportSubject = { kind, invoice, attributeSet: options.attributeSet ?? 'full' };
    return planExport({ ...OPTIONS, request, requestedAt: new Date(options.at ?? '2024-03-10T06:00:00Z') });
  };

  it('unbilled usage: a month-to-date export has a new eTag once a new day of usage is in, and the same one within a day', () => {
    const morning = unbilled('unbilled-usage', 'current', '2024-03-04T06:00:00Z');
    const evening = unbilled('unbilled-usage', 'current', '2024-03-04T23:00:00Z');
    const nextDay = unbilled('unbilled-usage', 'current', '2024-03-05T06:00:00Z');

    expect(evening.eTag).toBe(morning.eTag);
    // The next day's files hold usage of one more day: new data, so a new data version.
    expect(nextDay.files.map((file) => file.contentMD5.toString('hex'))).not.toEqual(morning.files.map((file) => file.contentMD5.toString('hex')));
    expect(nextDay.eTag).not.toBe(morning.eTag);
    // Last month's data is complete: its eTag does not move with the day.
    expect(unbilled('unbilled-usage', 'last', '2024-03-05T06:00:00Z').eTag).toBe(unbilled('unbilled-usage', 'last', '2024-03-04T06:00:00Z').eTag);
  });

  it('unbilled reconciliation: line items that stay the same from one day to the next keep their eTag', () => {
    // Reconciliation sums the month's usage per subscription and meter, whatever days it fell on.
    const day4 = unbilled('unbilled-reconciliation', 'current', '2024-03-04T06:00:00Z');
    const day5 = unbilled('unbilled-reconciliation', 'current', '2024-03-05T06:00:00Z');

    day5.files.forEach((file, index) => expect(file.content.equals(day4.files[index]!.content)).toBe(true));
    expect(day5.eTag).toBe(day4.eTag);
    expect(unbilled('unbilled-reconciliation', 'last', '2024-03-05T06:00:00Z').eTag).not.toBe(day4.eTag);
  });

  it.each(['billed-usage', 'billed-reconciliation'] as const)(
    '%s: the same invoice exported at different times gives the same eTag, names and bytes; the re-issue a new eTag and folder',
    (kind) => {
      const first = billed(kind, 'G000000004');
      const later = billed(kind, 'G000000004', { at: '2024-03-20T18:00:00Z' });
      const reissuedBefore = billed(kind, REISSUED_INVOICE_ID);
      const reissuedAfter = billed(kind, REISSUED_INVOICE_ID, { reissued: true });

      expect(later.eTag).toBe(first.eTag);
      expect(later.directory).toBe(first.directory);
      expect(later.files.map((file) => file.name)).toEqual(first.files.map((file) => file.name));
      later.files.forEach((file, index) => expect(file.content.equals(first.files[index]!.content)).toBe(true));
      // Only the re-issued invoice has a second version; for any other the knob changes nothing.
      expect(billed(kind, 'G000000004', { reissued: true }).eTag).toBe(first.eTag);
      expect(reissuedAfter.eTag).not.toBe(reissuedBefore.eTag);
      expect(reissuedBefore.directory).toMatch(/\/InvoiceId=G000000002\/InvoiceVersion=202403060400\//);
      expect(reissuedAfter.directory).toMatch(/\/InvoiceId=G000000002\/InvoiceVersion=202403070400\//);
      expect(new Set([first.eTag, billed(kind, 'G000000004', { attributeSet: 'basic' }).eTag, billed(kind, 'G000000001').eTag]).size).toBe(3);
    },
  );

  it("billed usage holds the invoice's month of usage rows in its currency, each carrying the invoice number", () => {
    // G000000005 is the USD invoice of 2024-01 on 2024-03-10.
    const plan = billed('billed-usage', 'G000000005');
    const rows = plan.files.flatMap((file) => jsonLines(file.content));

    expect(plan).toMatchObject({ kind: 'billed-usage', container: EXPORT_CONTAINERS['billed-usage'], billingMonth: '2024-01', currency: 'USD' });
    expect(plan.directory).toMatch(
      /^v1\/PartnerTenantId=[0-9a-f-]{36}\/BillingMonth=202401\/InvoiceId=G000000005\/InvoiceVersion=\d{12}\/Fragment=full\/PartitionType=default$/,
    );
    const unbilledRows = usageRows({ seed: 3, billingMonth: '2024-01', currency: 'USD', attributeSet: 'full', count: 60, partnerTenantId: TENANT });
    expect(rows).toEqual(unbilledRows.map((row) => ({ ...row, InvoiceNumber: 'G000000005' })));
  });

  it.each([
    ['billed-reconciliation', () => billed('billed-reconciliation', 'G000000004'), { billingMonth: '2024-01', currency: 'EUR', invoiceNumber: 'G000000004' }],
    ['unbilled-reconciliation', () => unbilled('unbilled-reconciliation', 'last', '2024-03-04T06:00:00Z'), { billingMonth: '2024-02', currency: 'EUR' }],
  ] as const)('%s holds the line items that reconcile the usage of its files, spread over them in order', (kind, plan, scope) => {
    const { files, container } = plan();
    const expected = reconciliationRows({ seed: 3, attributeSet: 'full', usageRowCount: 60, partnerTenantId: TENANT, ...scope });

    expect(container).toBe(EXPORT_CONTAINERS[kind]);
    expect(files).toHaveLength(3);
    const perFile = files.map((file) => jsonLines(file.content));
    expect(perFile.flat()).toEqual(expected);
    for (const rows of perFile) expect(Math.abs(rows.length - expected.length / 3)).toBeLessThanOrEqual(1);
  });

  it('fills reconciliation files to fileSizeBytes by repeating its line items', () => {
    const plan = planExport({
      ...OPTIONS,
      request: { kind: 'unbilled-reconciliation', currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'basic' },
      scenario: { ...OPTIONS.scenario, fileSizeBytes: 256 * 1024 },
    });

    for (const file of plan.files) {
      expect(Math.abs(file.size - 256 * 1024) / (256 * 1024)).toBeLessThan(0.02);
      expect(jsonLines(file.content).every((row) => typeof row.Subtotal === 'number' && !('Quantity' in row))).toBe(true);
    }
  });

  it('spreads a reconciliation export with fewer line items than fileCount over one file per line item', () => {
    const plan = planExport({
      ...OPTIONS,
      request: { kind: 'unbilled-reconciliation', currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'full' },
      scenario: { seed: 3, fileCount: 500, rowsPerFile: 1 },
    });
    const rows = plan.files.map((file) => jsonLines(file.content));

    expect(plan.files.length).toBeLessThan(500);
    expect(rows.every((fileRows) => fileRows.length === 1)).toBe(true);
  });
});

describe('uploadExport', () => {
  it('uploads ordinary and filled files byte for byte, with their MD5', async () => {
    const azurite = await startAzurite({ accounts: [] });
    try {
      const client = new ContainerClient(
        `${azurite.blobEndpoint(DEV_STORE_ACCOUNT.name)}/${EXPORT_CONTAINER}`,
        new StorageSharedKeyCredential(DEV_STORE_ACCOUNT.name, DEV_STORE_ACCOUNT.key),
      );
      const ordinary = planExport({ ...OPTIONS, scenario: { ...OPTIONS.scenario, fileCount: 1 } }).files;
      const filled = planExport({ ...OPTIONS, scenario: { ...OPTIONS.scenario, seed: 5, fileCount: 2, fileSizeBytes: 2 * 1024 * 1024 } }).files;
      await uploadExport(client, [...ordinary, ...filled], new AbortController().signal);

      for (const file of [...ordinary, ...filled]) {
        const blob = client.getBlobClient(file.blobName);
        const properties = await blob.getProperties();
        expect(properties.contentLength).toBe(file.size);
        expect(Buffer.from(properties.contentMD5!).equals(file.contentMD5)).toBe(true);
        const downloaded = await blob.downloadToBuffer();
        expect(createHash('md5').update(downloaded).digest().equals(file.contentMD5)).toBe(true);
      }
    } finally {
      await azurite.stop();
    }
  });
});

describe('resolveScenario fileSizeBytes', () => {
  it('defaults to null and accepts whole numbers of bytes', () => {
    expect(resolveScenario().fileSizeBytes).toBeNull();
    expect(resolveScenario({ fileSizeBytes: 8 * 1024 * 1024 }).fileSizeBytes).toBe(8 * 1024 * 1024);
  });

  it.each([0, -1, 1.5, 5 * 1024 ** 3])('refuses %d', (fileSizeBytes) => {
    expect(() => resolveScenario({ fileSizeBytes })).toThrow(`fileSizeBytes is ${fileSizeBytes}`);
  });
});
