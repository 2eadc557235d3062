import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { DEV_STORE_ACCOUNT, startAzurite } from '../../emulator/azurite';
import { resolveScenario } from '../../emulator/billingScenario';
import { EXPORT_CONTAINER, planExport, uploadExport, type ExportPlanOptions } from '../../emulator/exportFiles';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';

const TENANT = '0e195b37-4574-4539-bc42-0e539b9684c0';
const OPTIONS: ExportPlanOptions = {
  request: { currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'full' },
  scenario: { seed: 3, fileCount: 3, rowsPerFile: 20 },
  partnerTenantId: TENANT,
  requestedAt: new Date('2024-03-04T06:00:00Z'),
};

function jsonLines(content: Buffer): Array<Record<string, unknown>> {
  const text = gunzipSync(content).toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('planExport', () => {
  it('without fileSizeBytes, makes each file the gzip of its own rows, as before', () => {
    const plan = planExport(OPTIONS);

    expect(plan.files).toHaveLength(3);
    plan.files.forEach((file, index) => {
      const rows = usageRows({ seed: 3, billingMonth: '2024-02', currency: 'EUR', attributeSet: 'full', count: 20, startIndex: index * 20, partnerTenantId: TENANT });
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
      const own = usageRows({ seed: 3, billingMonth: '2024-02', currency: 'EUR', attributeSet: 'full', count: 20, startIndex: index * 20, partnerTenantId: TENANT });
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

describe('uploadExport', () => {
  it('uploads ordinary and filled files byte for byte, with their MD5', async () => {
    const azurite = await startAzurite({ accounts: [] });
    try {
      const client = new ContainerClient(`${azurite.blobEndpoint(DEV_STORE_ACCOUNT.name)}/${EXPORT_CONTAINER}`, new StorageSharedKeyCredential(DEV_STORE_ACCOUNT.name, DEV_STORE_ACCOUNT.key));
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
