/**
 * Figure 6, the data check: seconds per GiB of gzip to checked data (stream from storage,
 * gunzip, exact parse, check, sum) and to Parquet (the same plus the typed Parquet copy uploaded
 * beside the file), against a floor measured in the same run: plain gunzip + line split +
 * JSON.parse of the same file in one Node process, from a local file. And the peak RSS of the
 * Parquet pass over the large file against the same pass over a 2 MiB one: flat, or not.
 * Each pass runs in its own process (bench/dataCheckChild.ts), on emulator usage rows (full).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { DEV_STORE_ACCOUNT, startAzurite } from '../../emulator/azurite';
import { gzipJsonLines, usageRows } from '../../emulator/usageData';
import { ROOT, TSX_LOADER } from '../child';
import type { BenchContext } from '../context';
import { measurement, type FigureResult } from '../results';
import { median, round } from '../stats';

const run = promisify(execFile);
const GiB = 1024 ** 3;
const childScript = join(ROOT, 'bench', 'dataCheckChild.ts');

interface Pass {
  readonly seconds: number;
  readonly rows: number;
  readonly peakRssMiB: number;
}

/** A gzip JSON-lines file of about `bytes`, one gzip member per 20,000 rows, as Spark writes them. */
function exportFile(bytes: number): Buffer {
  const members: Buffer[] = [];
  let size = 0;
  for (let start = 0; size < bytes; start += 20_000) {
    const rows = usageRows({
      seed: 6,
      billingMonth: '2026-10',
      currency: 'EUR',
      attributeSet: 'full',
      count: 20_000,
      startIndex: start,
      partnerTenantId: '0e195b37-4574-4539-bc42-0e539b9684c0',
    });
    let member = gzipJsonLines(rows);
    if (size + member.length > bytes) {
      const keep = Math.max(1, Math.floor(((bytes - size) / member.length) * rows.length));
      member = gzipJsonLines(rows.slice(0, keep));
    }
    members.push(member);
    size += member.length;
  }
  return Buffer.concat(members);
}

async function pass(args: string[]): Promise<Pass> {
  const { stdout } = await run(process.execPath, ['--import', TSX_LOADER, childScript, ...args], { cwd: ROOT, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Pass;
}

export async function dataCheck(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const params = context.config.dataCheck;
  const azurite = await startAzurite({ accounts: [DEV_STORE_ACCOUNT] });
  try {
    const connection = azurite.connectionString(DEV_STORE_ACCOUNT.name);
    const container = BlobServiceClient.fromConnectionString(connection).getContainerClient('datacheck');
    await container.create();
    const files = { large: exportFile(params.largeFileBytes), small: exportFile(params.smallFileBytes) };
    for (const [name, bytes] of Object.entries(files)) {
      await writeFile(join(context.workDir, `${name}.json.gz`), bytes);
      await container.getBlockBlobClient(`run/${name}.json.gz`).uploadData(bytes);
    }
    const samples = { floor: [] as Pass[], check: [] as Pass[], parquet: [] as Pass[], smallParquet: [] as Pass[] };
    for (let rep = 0; rep < params.reps; rep++) {
      context.progress(
        `dataCheck: repetition ${rep + 1}/${params.reps}: ${(files.large.length / 2 ** 20).toFixed(1)} MiB gzip, floor / check / check + Parquet / 2 MiB Parquet`,
      );
      samples.floor.push(await pass(['floor', join(context.workDir, 'large.json.gz')]));
      samples.check.push(await pass(['check', connection, 'datacheck', 'run/large.json.gz']));
      samples.parquet.push(await pass(['parquet', connection, 'datacheck', 'run/large.json.gz']));
      samples.smallParquet.push(await pass(['parquet', connection, 'datacheck', 'run/small.json.gz']));
    }
    const perGiB = (passes: Pass[]) => passes.map((p) => (p.seconds * GiB) / files.large.length);
    const size = `${(files.large.length / 2 ** 20).toFixed(0)} MiB gzip (${samples.floor[0]!.rows.toLocaleString('en')} rows)`;
    const floorLabel = 'gunzip + line parse (JSON.parse), one process';
    return {
      id: 'dataCheck',
      title: 'Data check and Parquet',
      params: { ...params, largeGzipBytes: files.large.length, smallGzipBytes: files.small.length, rows: samples.floor[0]!.rows },
      rows: [
        measurement(`${size}: time to checked data, s per GiB`, 's', perGiB(samples.check), floorLabel, perGiB(samples.floor)),
        measurement(`${size}: time to Parquet, s per GiB`, 's', perGiB(samples.parquet), floorLabel, perGiB(samples.floor)),
        measurement(
          `peak RSS, check + Parquet, ${size}`,
          'MiB',
          samples.parquet.map((p) => p.peakRssMiB),
          `the same, ${(files.small.length / 2 ** 20).toFixed(1)} MiB gzip`,
          samples.smallParquet.map((p) => p.peakRssMiB),
        ),
      ],
      findings: [
        `rows per second: ${Math.round(median(samples.parquet.map((p) => p.rows / p.seconds)))} with Parquet, ${Math.round(median(samples.check.map((p) => p.rows / p.seconds)))} checked only, ${Math.round(median(samples.floor.map((p) => p.rows / p.seconds)))} at the floor.`,
      ],
      details: { samples },
      durationSeconds: round((performance.now() - started) / 1000, 1),
    };
  } finally {
    await azurite.stop();
  }
}
