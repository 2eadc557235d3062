/**
 * The export manifest: where the files are (`rootDirectory` + a read SAS) and what they are.
 * It comes from outside, so it is checked before anything is written: the source must be https
 * (http only on loopback) on an allowed host, `blobCount` must agree with `blobs`, and every
 * blob name must stay inside the run's folder (no `..`, no absolute paths, no query strings) and
 * must not pass for the `manifest.json` the app writes itself.
 * https://learn.microsoft.com/graph/api/resources/partners-billing-manifest
 */
import { ManifestError } from '../errors';
import { isAllowedHost, isLoopbackHost } from './hosts';
import { PARQUET_FOLDER } from './dataOutputs';
import { MANIFEST_FILE_NAME, isAppFileName, isInParquetFolder } from './naming';
import { describeJsonValue, isRecord } from './jsonValue';

export interface ManifestBlob {
  readonly name: string;
  readonly partitionValue: string;
}

export interface Manifest {
  readonly id: string;
  readonly eTag: string;
  readonly schemaVersion: string;
  readonly dataFormat: string;
  readonly createdDateTime: string;
  readonly partnerTenantId: string;
  /** Absolute URL of the folder holding the files, without a trailing slash. */
  readonly rootDirectory: string;
  /** The read SAS, without a leading '?'. Secret: never logged or stored. */
  readonly sasToken: string;
  readonly partitionType: string;
  readonly blobCount: number;
  readonly blobs: readonly ManifestBlob[];
}

const MAX_BLOB_NAME_LENGTH = 1024;

export function parseManifest(body: unknown, allowedHosts: readonly string[]): Manifest {
  if (!isRecord(body)) throw new ManifestError([`manifest is ${describeJsonValue(body)}: expected a JSON object`]);
  const problems: string[] = [];
  const text = (name: string, required: boolean): string => {
    const value = body[name];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
    if (typeof value === 'number') return String(value);
    if (required) problems.push(`'${name}' is ${value === undefined ? 'missing' : describeJsonValue(value)}: expected a non-empty string`);
    return '';
  };

  const rootDirectory = text('rootDirectory', true).replace(/\/+$/, '');
  if (rootDirectory) {
    const problem = sourceLocationProblem(rootDirectory, allowedHosts);
    if (problem) problems.push(problem);
  }
  const sasToken = text('sasToken', true).replace(/^\?/, '');
  const eTag = text('eTag', true);

  const blobs: ManifestBlob[] = [];
  if (!Array.isArray(body.blobs)) {
    problems.push(`'blobs' is ${body.blobs === undefined ? 'missing' : describeJsonValue(body.blobs)}: expected an array of {name, partitionValue}`);
  } else {
    const seen = new Set<string>();
    body.blobs.forEach((blob: unknown, index) => {
      const name = isRecord(blob) && typeof blob.name === 'string' ? blob.name : undefined;
      if (name === undefined) {
        problems.push(`blobs[${index}] has no 'name' string`);
        return;
      }
      const problem = blobNameProblem(name);
      if (problem) problems.push(`blobs[${index}].name '${name.slice(0, 80)}' ${problem}`);
      else if (seen.has(name)) problems.push(`blobs[${index}].name '${name}' is listed twice`);
      seen.add(name);
      const partitionValue = isRecord(blob) && typeof blob.partitionValue === 'string' ? blob.partitionValue : '';
      blobs.push({ name, partitionValue });
    });
  }

  const blobCount = body.blobCount;
  if (!Number.isSafeInteger(blobCount) || (blobCount as number) < 0) {
    problems.push(`'blobCount' is ${blobCount === undefined ? 'missing' : JSON.stringify(blobCount)}: expected a whole number`);
  } else if (Array.isArray(body.blobs) && blobCount !== body.blobs.length) {
    problems.push(`'blobCount' is ${JSON.stringify(blobCount)} but 'blobs' lists ${body.blobs.length} files`);
  }

  if (problems.length > 0) throw new ManifestError(problems);
  return {
    id: text('id', false),
    eTag,
    schemaVersion: text('schemaVersion', false),
    dataFormat: text('dataFormat', false),
    createdDateTime: text('createdDateTime', false),
    partnerTenantId: text('partnerTenantId', false),
    rootDirectory,
    sasToken,
    partitionType: text('partitionType', false),
    blobCount: blobCount as number,
    blobs,
  };
}

/** The URL a blob is read from: the full directory path, the name, and the directory SAS. */
export function sourceBlobUrl(manifest: Pick<Manifest, 'rootDirectory' | 'sasToken'>, blobName: string): string {
  const path = blobName.split('/').map(encodeURIComponent).join('/');
  return `${manifest.rootDirectory}/${path}?${manifest.sasToken}`;
}

function sourceLocationProblem(rootDirectory: string, allowedHosts: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(rootDirectory);
  } catch {
    return `'rootDirectory' is not an absolute URL`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return `'rootDirectory' uses ${url.protocol.replace(':', '')}: expected https (plain http only for a loopback host)`;
  }
  if (url.search || url.hash || url.username || url.password) {
    return `'rootDirectory' carries a query, fragment or credentials: expected a plain folder URL`;
  }
  if (!isAllowedHost(url.hostname, allowedHosts)) {
    return `'rootDirectory' host '${url.hostname}' is not allowed by EXPORT_SOURCE_HOSTS (${allowedHosts.join(', ')})`;
  }
  return undefined;
}

/** A blob name must be a relative path that stays inside the run's folder. */
function blobNameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'is empty';
  if (name.length > MAX_BLOB_NAME_LENGTH) return `is longer than ${MAX_BLOB_NAME_LENGTH} characters`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(name) || name.startsWith('//')) return 'is an absolute URL: expected a relative file name';
  if (name.startsWith('/')) return 'is an absolute path: expected a relative file name';
  if (/[?#\\]/.test(name)) return "contains '?', '#' or '\\': expected a plain file name";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains control characters';
  if (name.split('/').some((segment) => segment === '..' || segment === '.' || segment === '')) {
    return "has an empty, '.' or '..' path segment: expected a name inside the export's folder";
  }
  if (isInParquetFolder(name)) return `is in the ${PARQUET_FOLDER} folder where this app writes its Parquet copies: expected a data file outside it`;
  if (isAppFileName(name))
    return `is named like the ${MANIFEST_FILE_NAME} this app writes last: expected a data file (consumers trigger on ${MANIFEST_FILE_NAME})`;
  return undefined;
}
