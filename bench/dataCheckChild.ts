/**
 * One measured pass over one export file, in a process of its own (so its peak RSS is its own):
 *   floor   <file.json.gz>                          plain gunzip + line split + JSON.parse, from a local file
 *   check   <connection> <container> <blob>         the app's data check, streamed from storage, in its thread
 *   parquet <connection> <container> <blob>         the check and the Parquet copy, uploaded beside it, in its thread
 * Prints one JSON line: {seconds, rows, peakRssMiB}; the peak is the process's, the check's thread included.
 */
import { createReadStream } from 'node:fs';
import { BlobServiceClient } from '@azure/storage-blob';
import { numberedLines } from '../src/adapters/dataFile';
import { schemaFor } from '../src/core/dataSchema';
import { createDataCheckThreads } from '../src/dataCheckThreads';

async function main([mode, ...args]: string[]): Promise<void> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  let started = performance.now();
  let rows = 0;
  if (mode === 'floor') {
    for await (const { text } of numberedLines(createReadStream(args[0]!), 'floor')) {
      JSON.parse(text);
      rows++;
    }
  } else if (mode === 'check' || mode === 'parquet') {
    const [connectionString, partnerContainer, blob] = args as [string, string, string];
    const slash = blob.lastIndexOf('/') + 1;
    // The length and MD5 the landing would hand the check, read before the clock starts.
    const properties = await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(partnerContainer).getBlobClient(blob).getProperties();
    const source = {
      byteCount: properties.contentLength ?? 0,
      ...(properties.contentMD5 ? { contentMD5: Buffer.from(properties.contentMD5).toString('base64') } : {}),
    };
    started = performance.now();
    // As the app runs it: in the check's own thread (src/dataCheckThreads.ts).
    const outcome = await createDataCheckThreads({ partnerStorage: { kind: 'connectionString', connectionString }, partnerContainer }).checkFile({
      folder: blob.slice(0, slash),
      name: blob.slice(slash),
      schema: schemaFor('usage', 'full'),
      parquet: mode === 'parquet',
      source,
    });
    rows = outcome.check.rowCount;
  } else throw new Error(`mode is '${mode}': expected floor, check or parquet`);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  process.stdout.write(`${JSON.stringify({ seconds, rows, peakRssMiB: peak / 2 ** 20 })}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
