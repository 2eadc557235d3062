/**
 * An ETag without its quotes, for comparing and recording: a response header quotes it, a
 * listing may not. If-Match takes it as the service gave it.
 */
export function bareEtag(etag: string): string {
  return etag.replace(/"/g, '');
}
