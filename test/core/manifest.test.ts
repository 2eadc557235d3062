import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors';
import { parseManifest, sourceBlobUrl } from '../../src/core/manifest';

const allowed = ['.blob.core.windows.net'];
const documented = {
  id: '6fe687d7-1e0f-4bd6-9091-4672691f64bc',
  schemaVersion: '1',
  dataFormat: 'compressedJSON',
  createdDateTime: '2023-03-09T06:34:34.87Z',
  eTag: 'WYjLro78HdMg6vUWR',
  partnerTenantId: '0e195b37-4574-4539-bc42-0e539b9684c0',
  rootDirectory:
    'https://adlsreconbuprodeastus201.blob.core.windows.net/billedusagefastpath/v1/PartnerTenantId=0e195b37-4574-4539-bc42-0e539b9684c0/BillingMonth=202310/InvoiceId=G031809528/InvoiceVersion=202311/Fragment=basic/PartitionType=default',
  sasToken: 'skoid=0c41&sv=2021-08-06&se=2023-12-13T12%3A37%3A17Z&sr=d&sp=rl&sdd=7&sig=RpVY0%3D',
  partitionType: 'Default',
  blobCount: 1,
  blobs: [{ name: 'part-00049-b016029b-a7a7-4c46-9b5e-c925ac317ac6.c000.json.gz', partitionValue: 'default' }],
};

function problemsOf(body: unknown, hosts = allowed): string[] {
  try {
    parseManifest(body, hosts);
  } catch (error) {
    if (error instanceof ManifestError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('parseManifest', () => {
  it('reads the documented example', () => {
    const manifest = parseManifest(documented, allowed);
    expect(manifest).toMatchObject({ eTag: 'WYjLro78HdMg6vUWR', blobCount: 1, partnerTenantId: documented.partnerTenantId, sasToken: documented.sasToken });
    expect(manifest.blobs).toEqual(documented.blobs);
  });

  it('builds source URLs that keep the full directory path and the SAS', () => {
    const manifest = parseManifest({ ...documented, rootDirectory: `${documented.rootDirectory}/`, sasToken: `?${documented.sasToken}` }, allowed);
    expect(sourceBlobUrl(manifest, documented.blobs[0]!.name)).toBe(`${documented.rootDirectory}/${documented.blobs[0]!.name}?${documented.sasToken}`);
  });

  it('accepts an empty export', () => {
    expect(parseManifest({ ...documented, blobCount: 0, blobs: [] }, allowed).blobs).toEqual([]);
  });

  it('rejects a blobCount that disagrees with blobs', () => {
    expect(problemsOf({ ...documented, blobCount: 2 })).toEqual(["'blobCount' is 2 but 'blobs' lists 1 files"]);
  });

  it.each([
    ['../escape.json.gz', /has an empty, '.' or '..' path segment/],
    ['a/../../b.gz', /'\.\.' path segment/],
    ['/etc/passwd', /is an absolute path/],
    ['https://evil.example/x.gz', /is an absolute URL/],
    ['//evil.example/x.gz', /is an absolute URL/],
    ['part-1.gz?sig=other', /contains '\?', '#' or '\\'/],
    ['dir\\part.gz', /contains '\?', '#' or '\\'/],
    ['', /is empty/],
  ])('rejects the blob name %j', (name, expected) => {
    const problems = problemsOf({ ...documented, blobs: [{ name, partitionValue: 'default' }] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  it('rejects a file listed twice', () => {
    const blob = documented.blobs[0]!;
    expect(problemsOf({ ...documented, blobCount: 2, blobs: [blob, blob] })).toEqual([`blobs[1].name '${blob.name}' is listed twice`]);
  });

  it.each([
    ['a host outside EXPORT_SOURCE_HOSTS', 'https://evil.example.com/c/dir', /host 'evil.example.com' is not allowed by EXPORT_SOURCE_HOSTS/],
    ['a suffix look-alike', 'https://evilblob.core.windows.net.attacker.io/c', /not allowed/],
    ['plain http off loopback', 'http://acct.blob.core.windows.net/c', /uses http: expected https/],
    ['a query string', 'https://acct.blob.core.windows.net/c?sig=x', /carries a query/],
    ['no URL', 'not a url', /is not an absolute URL/],
  ])('rejects a rootDirectory with %s', (_case, rootDirectory, expected) => {
    expect(problemsOf({ ...documented, rootDirectory })[0]).toMatch(expected);
  });

  it('allows plain http for a loopback host on the allow-list', () => {
    expect(problemsOf({ ...documented, rootDirectory: 'http://127.0.0.1:10000/msbilling/c' }, ['127.0.0.1'])).toEqual([]);
  });

  it('lists every missing field at once', () => {
    expect(problemsOf({ blobs: 'none' })).toEqual([
      "'rootDirectory' is missing: expected a non-empty string",
      "'sasToken' is missing: expected a non-empty string",
      "'eTag' is missing: expected a non-empty string",
      "'blobs' is the string 'none': expected an array of {name, partitionValue}",
      "'blobCount' is missing: expected a whole number",
    ]);
  });
});
