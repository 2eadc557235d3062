import { createHash } from 'node:crypto';
import type { SourceBytes } from '../../src/adapters/dataFile';

/** What a file uploaded as `bytes` must read back as: its length and MD5, as its source's listing gives them. */
export function sourceBytesOf(bytes: Buffer): SourceBytes {
  return { byteCount: bytes.length, contentMD5: createHash('md5').update(bytes).digest('base64') };
}
