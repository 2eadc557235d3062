import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest';
import { MANIFEST_FORMAT, buildPublicManifest, describesSameFiles } from '../../src/core/publicManifest';
import { aBilledRun, aRun } from '../support/runs';

const manifest: Manifest = {
  id: 'm-1',
  eTag: 'etag-1',
  schemaVersion: '2',
  dataFormat: 'compressedJSON',
  createdDateTime: '2026-11-04T05:00:00Z',
  partnerTenantId: 'tenant-1',
  rootDirectory: 'https://source.example/container/folder',
  sasToken: 'sv=2024&sig=secret',
  partitionType: 'default',
  blobCount: 2,
  blobs: [
    { name: 'part-00001.json.gz', partitionValue: '1' },
    { name: 'part-00002.json.gz', partitionValue: '2' },
  ],
};
const landed = [
  { blob: manifest.blobs[0]!, facts: { contentLength: 100, contentMD5: 'bWQ1LTE=' } },
  { blob: manifest.blobs[1]!, facts: { contentLength: 50 } },
];

describe('buildPublicManifest', () => {
  it('describes the run, the data version and each verified file, with totals', () => {
    const run = aRun({ operationId: 'op-1' });
    const built = buildPublicManifest(run, manifest, landed, '2026-11-04T06:00:00.000Z');
    expect(built).toEqual({
      manifestFormat: MANIFEST_FORMAT,
      runId: run.runId,
      kind: run.kind,
      billingPeriod: run.billingPeriod,
      billingMonth: run.billingMonth,
      currency: run.currency,
      attributeSet: run.attributeSet,
      operationId: 'op-1',
      manifestId: 'm-1',
      eTag: 'etag-1',
      partnerTenantId: 'tenant-1',
      schemaVersion: '2',
      dataFormat: 'compressedJSON',
      partitionType: 'default',
      exportedAt: '2026-11-04T05:00:00Z',
      copiedAt: '2026-11-04T06:00:00.000Z',
      blobCount: 2,
      byteCount: 150,
      blobs: [
        { name: 'part-00001.json.gz', partitionValue: '1', byteCount: 100, contentMD5: 'bWQ1LTE=' },
        { name: 'part-00002.json.gz', partitionValue: '2', byteCount: 50 },
      ],
    });
  });

  it('never carries the source SAS or its location', () => {
    const text = JSON.stringify(buildPublicManifest(aRun(), manifest, landed, '2026-11-04T06:00:00.000Z'));
    expect(text).not.toContain('sig=');
    expect(text).not.toContain('source.example');
  });
});

describe('describesSameFiles', () => {
  const ours = buildPublicManifest(aRun(), manifest, landed, '2026-11-04T06:00:00.000Z');
  it('is true for the same verified files written by another run or at another time', () => {
    expect(describesSameFiles({ ...ours, runId: 'other', copiedAt: 'earlier' }, ours)).toBe(true);
  });
  it.each([
    ['another data version', { ...ours, eTag: 'etag-2' }],
    ['another format', { ...ours, manifestFormat: 'something/2' }],
    ['a file of another length', { ...ours, blobs: [{ ...ours.blobs[0]!, byteCount: 99 }, ours.blobs[1]] }],
    ['a file missing', { ...ours, blobs: [ours.blobs[0]] }],
    ['blobs that are not a list', { ...ours, blobs: { name: 'x' } }],
    ['not JSON at all', undefined],
    ['null', null],
  ])('is false for %s', (_name, existing) => {
    expect(describesSameFiles(existing, ours)).toBe(false);
  });
});

describe('buildPublicManifest for an invoice', () => {
  it('says the kind and the invoice, and no month, currency or period', () => {
    const run = aBilledRun({ operationId: 'op-2', attributeSet: 'basic' });
    const built = buildPublicManifest(run, manifest, landed, '2026-12-07T06:00:00.000Z');
    expect(built).toMatchObject({
      manifestFormat: MANIFEST_FORMAT,
      kind: 'billed-usage',
      invoiceId: 'G016907411',
      attributeSet: 'basic',
      eTag: 'etag-1',
      blobCount: 2,
    });
    for (const field of ['billingMonth', 'currency', 'billingPeriod']) expect(built).not.toHaveProperty(field);
    expect(JSON.stringify(built)).not.toContain('sig=');
  });
});
