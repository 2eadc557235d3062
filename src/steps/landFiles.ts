/**
 * Copying a manifest's files into the run's folder and verifying them (length, and MD5 where the
 * source has one). Copies are idempotent: a file already copied from the same source version and
 * verified is not copied again when a landing resumes.
 */
import { CopyPendingElsewhereError, StorageRequestError, VerificationError, asError } from '../errors';
import { sourceBlobUrl, type Manifest, type ManifestBlob } from '../core/manifest';
import { bareEtag } from '../core/etag';
import { destinationFolder } from '../core/naming';
import { COPY_CONCURRENCY, SOURCE_CHANGE_RETRIES } from '../core/policy';
import type { LandedFile } from '../core/publicManifest';
import type { Run } from '../core/run';
import type { BlobFacts } from '../adapters/destination';
import { mapWithConcurrency } from '../concurrency';
import type { Deps } from '../deps';

/**
 * Lands every listed file in the run's folder: one listing of the folder says what an earlier
 * attempt already landed and verified, and at the same time one listing of the source folder
 * (through the manifest's SAS) reads every source's version, length and MD5; each file not
 * landed yet gets one Copy Blob of exactly that version, COPY_CONCURRENCY at a time. A copy the
 * service answers done (x-ms-copy-status: success) is that version, byte for byte; when any copy
 * is still pending (Azure copies between accounts in the background) listings of the folder
 * wait for them all and verify their length and MD5 against the sources. Either way the data
 * check then reads every file and checks its bytes against the source's length and MD5
 * (../adapters/dataFile.ts): the MD5 a listing shows is the property the copy took from its
 * source, not a hash of the bytes. A file the source listing did not give (or all of them, when
 * the SAS may not list) is read with one request of its own, as is a source that changed under
 * its copy. About one request per file, plus the listings (the source's small first page, then
 * one per 5,000 of each folder).
 */
export type LandAllResult = { readonly kind: 'landed'; readonly landed: LandedFile[] } | { readonly kind: 'copiesPending'; readonly message: string };

export async function landAll(run: Run, manifest: Manifest, deps: Deps): Promise<LandAllResult> {
  const folder = destinationFolder(run, manifest.eTag);
  // Both listings at once; copies start as the source listing's pages come in.
  const listedSources = listSources(manifest, deps);
  const before = await deps.destination.listFolder(folder);
  const sources = new Map<string, BlobFacts>();
  /** What each file is now, when known without listing the folder again: landed before, or copied at once. */
  const done = new Map<string, BlobFacts>();
  /** Files onto which another copy was still pending: what it copied is checked after settling. */
  const copiedByAnother = new Set<string>();
  await mapWithConcurrency(manifest.blobs, COPY_CONCURRENCY, (blob) =>
    namingTheFile(blob, async () => {
      const sourceUrl = sourceBlobUrl(manifest, blob.name);
      for (let attempt = 1; ; attempt++) {
        // The version to copy, from the source listing; read again after it changed (412).
        const source = (attempt === 1 ? await listedSources.facts(blob.name) : undefined) ?? (await deps.destination.sourceFacts(sourceUrl));
        sources.set(blob.name, source);
        const sourceEtag = bareEtag(source.etag);
        const existing = attempt === 1 ? before.get(blob.name) : undefined;
        // Landed and verified by an earlier attempt, or still being copied by it (a second copy
        // onto a pending one is refused): the listings below settle and verify it.
        if (existing?.sourceEtag === sourceEtag) {
          if (existing.copyStatus === 'pending') return;
          if (verificationProblem(existing, source) === undefined) {
            done.set(blob.name, existing);
            return;
          }
        }
        try {
          const answer = await deps.destination.startCopy(sourceUrl, source.etag, `${folder}${blob.name}`);
          if (answer.kind === 'alreadyPending') copiedByAnother.add(blob.name);
          if (answer.kind === 'copied') done.set(blob.name, { ...source, etag: answer.etag, copyStatus: 'success', sourceEtag });
          return;
        } catch (thrown) {
          // The source changed between reading its version and copying it (412 on If-Match):
          // read it again and copy the version that is there now.
          if (isSourceChanged(thrown) && attempt < SOURCE_CHANGE_RETRIES) continue;
          throw thrown;
        }
      }
    }),
  );

  await listedSources.over();
  let after = done;
  if (done.size < manifest.blobs.length) {
    const settled = await deps.destination.settleFolder(folder);
    if (settled.kind === 'copiesPending')
      return { kind: 'copiesPending', message: `${settled.pending} copies into ${folder} still pending after ${settled.waitedSeconds} s` };
    after = settled.listed;
  }
  const landedFiles = manifest.blobs.map((blob) => {
    const landed = after.get(blob.name);
    const source = sources.get(blob.name)!;
    const problem = landed ? verificationProblem(landed, source) : 'it is not in the destination';
    if (copiedByAnother.has(blob.name) && (problem || landed?.sourceEtag !== bareEtag(source.etag))) {
      // Another copy was pending onto this file and brought something else: copy it again on
      // the next landing, which the refused copy does not count against.
      throw new CopyPendingElsewhereError(
        `'${blob.name}': another copy onto it was pending and did not bring this source version${problem ? ` (${problem})` : ''}`,
      );
    }
    if (problem) throw new VerificationError(`copy of '${blob.name}' does not match its source: ${problem}`);
    return { blob, facts: landed! };
  });
  return { kind: 'landed', landed: landedFiles };
}

/**
 * Source blobs on the first page of the source listing: as many as copies run at once, so every
 * copy slot fills after one small page (a larger one took the first copies 50 ms later on
 * Azurite, the cost of parsing it) while the rest of the folder comes in.
 */
const SOURCE_LISTING_PAGE = COPY_CONCURRENCY;

interface ListedSources {
  /** A source's facts once its page is in; undefined when the listing ended without it or failed (read it on its own). */
  facts(name: string): Promise<BlobFacts | undefined>;
  /** Resolves when the listing is over; rejects with what it threw that was not a storage failure (a bug). */
  over(): Promise<void>;
}

/**
 * The sources' facts from a listing of the source folder in pages, started at once. A folder
 * that cannot be listed (a SAS without list permission, an expired one, a failure) gives no
 * facts: each file is then read on its own, and a refused SAS surfaces there as it always did.
 */
function listSources(manifest: Manifest, deps: Deps): ListedSources {
  const listed = new Map<string, BlobFacts>();
  const waiting = new Map<string, (facts: BlobFacts | undefined) => void>();
  let ended = false;
  let bug: Error | undefined;
  const listing = deps.destination
    .listFolder(`${manifest.rootDirectory}/?${manifest.sasToken}`, {
      pageSize: SOURCE_LISTING_PAGE,
      onPage: (page) => {
        for (const [name, facts] of page) {
          listed.set(name, facts);
          waiting.get(name)?.(facts);
          waiting.delete(name);
        }
      },
    })
    .catch((thrown: unknown) => {
      if (!(thrown instanceof StorageRequestError)) bug = asError(thrown);
    })
    .finally(() => {
      ended = true;
      for (const resolveFacts of waiting.values()) resolveFacts(undefined);
      waiting.clear();
    });
  return {
    facts(name) {
      const facts = listed.get(name);
      if (facts || ended) return Promise.resolve(facts);
      return new Promise((resolveFacts) => waiting.set(name, resolveFacts));
    },
    async over() {
      await listing;
      if (bug) throw bug;
    },
  };
}

function isSourceChanged(thrown: unknown): boolean {
  return thrown instanceof StorageRequestError && thrown.status === 412;
}

/** Storage errors about one file say which file: "The specified blob does not exist." does not. */
async function namingTheFile<T>(blob: ManifestBlob, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (thrown) {
    // The destination's errors are its own, already stripped of the request (and its SAS).
    throw thrown instanceof StorageRequestError ? thrown.about(`'${blob.name}'`) : thrown;
  }
}

function verificationProblem(copy: BlobFacts, source: BlobFacts): string | undefined {
  if (copy.copyStatus && copy.copyStatus !== 'success')
    return `copy status is ${copy.copyStatus}${copy.copyStatusDescription ? ` (${copy.copyStatusDescription})` : ''}`;
  if (copy.contentLength !== source.contentLength) return `${copy.contentLength} bytes, expected ${source.contentLength}`;
  if (source.contentMD5 && copy.contentMD5 !== source.contentMD5) return `MD5 ${copy.contentMD5 ?? '(none)'}, expected ${source.contentMD5}`;
  return undefined;
}
