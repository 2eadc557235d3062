/**
 * The partner's destination container. Files are copied server side (Copy Blob from a SAS
 * URL): the bytes go from Microsoft's storage to the partner's without passing through the
 * function. Put Blob From URL would be synchronous, but the emulator cannot run it, so the one
 * copy path here is the one the tests exercise.
 */
import { AnonymousCredential, BlobClient, ContainerClient, newPipeline } from '@azure/storage-blob';
import { PENDING_COPY_OPERATION } from '../errors';
import { COPY_TIMEOUT_MS } from '../core/policy';
import { bareEtag } from '../core/etag';
import { callDeadline } from './deadline';
import { classified, failure, storageErrorFrom } from './storageError';

export interface BlobFacts {
  readonly contentLength: number;
  /** Base64 MD5 of the content, when the blob has one. */
  readonly contentMD5?: string;
  readonly etag: string;
  readonly copyStatus?: string;
  readonly copyStatusDescription?: string;
  /** The source ETag recorded on a copy this app made (bare). */
  readonly sourceEtag?: string;
}

/**
 * How waiting for a folder's copies ended: all of them done (whatever their status), or some
 * still pending at the service when the copy deadline passed: slow, not failed.
 */
export type SettledFolder =
  | { readonly kind: 'settled'; readonly listed: Map<string, BlobFacts> }
  | { readonly kind: 'copiesPending'; readonly pending: number; readonly waitedSeconds: number };

/**
 * The destination's calls throw StorageRequestError (./storageError.ts) for storage failures; a source
 * whose SAS was refused says so in `sourceRefused`.
 */
export interface Destination {
  readonly containerName: string;
  /** Creates the container if needed, private (no public access). */
  ensure(): Promise<void>;
  /** Facts about a source blob, read through its SAS URL. */
  sourceFacts(sourceUrl: string): Promise<BlobFacts>;
  /**
   * The blobs in a folder, by name relative to it, with copy status and metadata: one request per
   * 5,000. `folder` is a path in the destination container, or the absolute URL of a source
   * folder with its SAS (`<rootDirectory>/?<sasToken>`, needing list permission): the facts
   * `sourceFacts` reads, for every file of the folder at once.
   */
  listFolder(folder: string, pages?: ListingPages): Promise<Map<string, BlobFacts>>;
  /**
   * Starts a server-side copy of exactly the source version `sourceEtag`: one request. The
   * service may finish it at once ('copied', with the copy's ETag) or later ('pending';
   * `settleFolder` waits for every copy in a folder). 'alreadyPending': Azure refused with 409
   * PendingCopyOperation, another copy onto that blob is still running (an earlier landing's);
   * settle the folder and look at what it copied. A source that changed since `sourceEtag` was
   * read fails with 412 SourceConditionNotMet.
   */
  startCopy(sourceUrl: string, sourceEtag: string, blobPath: string): Promise<CopyAnswer>;
  /** Lists the folder until no copy in it is pending, or the copy deadline passes. */
  settleFolder(folder: string): Promise<SettledFolder>;
  /**
   * Writes a JSON blob only if none exists at that path (If-None-Match: *), so that writing it
   * fires exactly one blob-created event; when one exists, returns it (its ETag and parsed text)
   * instead.
   */
  createJson(
    blobPath: string,
    value: unknown,
  ): Promise<{ readonly created: true } | { readonly created: false; readonly etag: string; readonly existing: unknown }>;
  /** Replaces a JSON blob if it is still the version `etag` (If-Match). */
  replaceJson(blobPath: string, value: unknown, etag: string): Promise<void>;
  url(blobPath: string): string;
}

/** How the service answered a Copy Blob. */
export type CopyAnswer = { readonly kind: 'copied'; readonly etag: string } | { readonly kind: 'pending' } | { readonly kind: 'alreadyPending' };

/** A listing whose first page holds at most `pageSize` blobs; each page goes to `onPage` as it comes in (before the listing's end). */
export interface ListingPages {
  readonly pageSize: number;
  readonly onPage: (page: ReadonlyMap<string, BlobFacts>) => void;
}

const SOURCE_ETAG_METADATA = 'sourceetag';
/** How often a folder with pending (asynchronous) copies is listed again. */
const COPY_POLL_INTERVAL_MS = 1000;

export function createDestination(container: ContainerClient, options: { readonly callTimeoutMs?: number; readonly copyTimeoutMs?: number } = {}): Destination {
  const deadline = () => callDeadline(options.callTimeoutMs);
  // One pipeline for every source client (the SAS is in each URL): a client per file, not a pipeline per file.
  const sourcePipeline = newPipeline(new AnonymousCredential());

  /** `from`: a source container, listed for its blobs' versions, lengths and MD5s only (no copy status or metadata). */
  async function listFolder(folder: string, from?: ContainerClient, pages?: ListingPages): Promise<Map<string, BlobFacts>> {
    const client = from ?? container;
    const listed = new Map<string, BlobFacts>();
    const options = { prefix: folder, ...(from ? {} : { includeMetadata: true, includeCopy: true }), ...deadline() };
    const take = (page: {
      segment: { blobItems: ReadonlyArray<{ name: string; properties: Parameters<typeof factsFrom>[0]; metadata?: Record<string, string> }> };
    }) => {
      const facts = new Map<string, BlobFacts>();
      for (const blob of page.segment.blobItems) {
        const blobFacts = factsFrom({ ...blob.properties, ...(blob.metadata ? { metadata: blob.metadata } : {}) });
        // Azure lists a source's ETag bare; Get Blob Properties gives it quoted, as If-Match sends it.
        facts.set(
          blob.name.slice(folder.length),
          from && blobFacts.etag && !blobFacts.etag.startsWith('"') ? { ...blobFacts, etag: `"${blobFacts.etag}"` } : blobFacts,
        );
      }
      for (const [name, blobFacts] of facts) listed.set(name, blobFacts);
      pages?.onPage(facts);
    };
    // With `pages`, a small first page, then the rest in pages as large as the service gives.
    const first = await client
      .listBlobsFlat(options)
      .byPage(pages ? { maxPageSize: pages.pageSize } : {})
      .next();
    if (first.done) return listed;
    take(first.value);
    if (first.value.continuationToken)
      for await (const page of client.listBlobsFlat(options).byPage({ continuationToken: first.value.continuationToken })) take(page);
    return listed;
  }
  /** A source folder's URL with its SAS: its container (through that SAS) and the folder's prefix in it. */
  function sourceFolder(folderUrl: string): { readonly from: ContainerClient; readonly prefix: string } {
    const url = new URL(folderUrl);
    const path = url.pathname.replace(/\/+$/, '');
    // The SDK tells the account (path-style on loopback), container and blob name apart: a probe blob in the folder.
    const probe = new BlobClient(`${url.origin}${path}/probe${url.search}`, sourcePipeline);
    const prefix = probe.name.slice(0, -'probe'.length);
    const folderSegments = prefix.split('/').length - 1;
    const containerPath = path
      .split('/')
      .slice(0, folderSegments === 0 ? undefined : -folderSegments)
      .join('/');
    const from = new ContainerClient(`${url.origin}${containerPath}${url.search}`, sourcePipeline);
    if (from.containerName !== probe.containerName) throw new Error(`cannot tell the container of source folder ${url.origin}${path}`);
    return { from, prefix };
  }
  async function uploadJson(blobPath: string, value: unknown, conditions: { ifNoneMatch?: string; ifMatch?: string }): Promise<void> {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    await container.getBlockBlobClient(blobPath).upload(text, Buffer.byteLength(text), {
      blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8' },
      conditions,
      ...deadline(),
    });
  }

  return {
    containerName: container.containerName,

    async ensure() {
      await classified(() => container.createIfNotExists(deadline()));
    },

    sourceFacts(sourceUrl) {
      return classified(async () => factsFrom(await new BlobClient(sourceUrl, sourcePipeline).getProperties(deadline())), { copySource: true });
    },

    listFolder(folder, pages) {
      if (!/^https?:\/\//i.test(folder)) return classified(() => listFolder(folder, undefined, pages));
      return classified(
        async () => {
          const { from, prefix } = sourceFolder(folder);
          return listFolder(prefix, from, pages);
        },
        { copySource: true },
      );
    },

    async startCopy(sourceUrl, sourceEtag, blobPath) {
      try {
        // Resolves after the one Copy Blob request; the poller it returns is not waited on.
        const poller = await container.getBlobClient(blobPath).beginCopyFromURL(sourceUrl, {
          sourceConditions: { ifMatch: sourceEtag },
          metadata: { [SOURCE_ETAG_METADATA]: bareEtag(sourceEtag) },
          ...deadline(),
        });
        // Done at once: the answer said x-ms-copy-status: success (the poller then holds that answer).
        const answer = poller.isDone() ? poller.getResult() : undefined;
        return answer?.copyStatus === 'success' && answer.etag ? { kind: 'copied', etag: answer.etag } : { kind: 'pending' };
      } catch (thrown) {
        const { error, is } = failure(storageErrorFrom(thrown, { copySource: true }), 409);
        if (is && error.code === PENDING_COPY_OPERATION) return { kind: 'alreadyPending' };
        throw error;
      }
    },

    settleFolder(folder) {
      const timeoutMs = options.copyTimeoutMs ?? COPY_TIMEOUT_MS;
      const giveUpAt = Date.now() + timeoutMs;
      return classified(async (): Promise<SettledFolder> => {
        for (;;) {
          const listed = await listFolder(folder);
          const pending = [...listed.values()].filter((facts) => facts.copyStatus === 'pending').length;
          if (pending === 0) return { kind: 'settled', listed };
          if (Date.now() >= giveUpAt) return { kind: 'copiesPending', pending, waitedSeconds: Math.round(timeoutMs / 1000) };
          await new Promise((resolveSleep) => setTimeout(resolveSleep, COPY_POLL_INTERVAL_MS));
        }
      });
    },

    async createJson(blobPath, value) {
      try {
        await uploadJson(blobPath, value, { ifNoneMatch: '*' });
        return { created: true };
      } catch (thrown) {
        // Azure answers 409 BlobAlreadyExists to If-None-Match: * on Put Blob; 412 is the generic form.
        const { error, is } = failure(thrown, 409, 412);
        if (!is) throw error;
      }
      return classified(async () => {
        // One Get Blob: the text and the ETag of the same version.
        const downloaded = await container.getBlobClient(blobPath).download(0, undefined, deadline());
        const chunks: Buffer[] = [];
        for await (const chunk of downloaded.readableStreamBody ?? []) chunks.push(Buffer.from(chunk as Buffer));
        let existing: unknown;
        try {
          existing = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          existing = undefined;
        }
        return { created: false, etag: downloaded.etag ?? '', existing } as const;
      });
    },

    replaceJson(blobPath, value, etag) {
      return classified(() => uploadJson(blobPath, value, { ifMatch: etag }));
    },

    url(blobPath) {
      return container.getBlobClient(blobPath).url;
    },
  };
}

function factsFrom(properties: {
  contentLength?: number;
  contentMD5?: Uint8Array;
  etag?: string;
  copyStatus?: string;
  copyStatusDescription?: string;
  metadata?: Record<string, string>;
}): BlobFacts {
  const sourceEtag = properties.metadata?.[SOURCE_ETAG_METADATA];
  return {
    contentLength: properties.contentLength ?? 0,
    etag: properties.etag ?? '',
    ...(properties.contentMD5?.length ? { contentMD5: Buffer.from(properties.contentMD5).toString('base64') } : {}),
    ...(properties.copyStatus ? { copyStatus: properties.copyStatus } : {}),
    ...(properties.copyStatusDescription ? { copyStatusDescription: properties.copyStatusDescription } : {}),
    ...(sourceEtag ? { sourceEtag } : {}),
  };
}
