/** The rows of a gzipped JSON Lines file as the emulator writes (and the app lands) it: one object per line, each line ending in a newline. */
import { gunzipSync } from 'node:zlib';

export function jsonLines(gzipped: Buffer): Array<Record<string, unknown>> {
  const text = gunzipSync(gzipped).toString('utf8');
  if (!text.endsWith('\n')) throw new Error('the file does not end with a newline');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
