/**
 * Figure 1, time to data, through the real app (queue function, ledger, copies, verification),
 * against the same copies issued directly with @azure/storage-blob at the best of several
 * concurrencies. Two moments per kind: the raw files are there (succeeded → every copy done, as
 * the service answered it or a listing settled it, when the landing plans the data check: the
 * plan's `copiedAt`), and the checked data (→ manifest.json, written once the data check has read
 * every file back and checked its bytes against the source's).
 * Also figure 5 (scale) with many small files: the same measurement, plus requests per file.
 */
import { EXPORT_KINDS, isBilledKind, type ExportKind } from '../../src/core/naming';
import type { AppOutcome, FloorOutcome } from '../appProcess';
import { runChild } from '../child';
import { appEnv, exportRecord, partnerConnectionString, sourceUrls, withCloud } from '../cloud';
import type { BenchContext } from '../context';
import { measurement, type FigureResult, type Measurement } from '../results';
import { median, round } from '../stats';

export interface LandingParams {
  readonly reps: number;
  readonly fileCount: number;
  /** null: the emulator's natural size (one row per file here, about 1 KiB). */
  readonly fileSizeBytes: number | null;
  readonly floorConcurrencies: readonly number[];
  /** What the app exports (default unbilled-usage); the emulator sizes every kind by the same knobs. */
  readonly exportKind?: ExportKind;
  /** Stop each run once every copy is done: the landing alone, without the data check (no manifest.json row). */
  readonly untilCopied?: boolean;
}

/** The invoice a billed kind exports: the emulator's newest EUR invoice, in its catalogue on any date. */
const BENCH_INVOICE_ID = 'G000000001';

export interface LandingRun {
  readonly app: readonly AppOutcome[];
  readonly floor: readonly FloorOutcome[];
  /** Succeeded → every copy done (the raw files landed). */
  readonly copiedSeconds: readonly number[];
  /** Succeeded → manifest.json (every file's data checked). */
  readonly appSeconds: readonly number[];
  /** Per concurrency, the floor's samples. */
  readonly floorSeconds: Readonly<Record<string, number[]>>;
  readonly bestConcurrency: number;
  readonly bytesPerExport: number;
}

/** Runs the app and the floor `reps` times on fresh exports in one local cloud. */
export async function measureLanding(context: BenchContext, label: string, params: LandingParams): Promise<LandingRun> {
  const scenario = {
    fileCount: params.fileCount,
    rowsPerFile: params.fileSizeBytes === null ? 1 : 20,
    fileSizeBytes: params.fileSizeBytes,
    // Polling is figure 4's subject: here the operation is ready as soon as its files are uploaded.
    runningPolls: 0,
    notStartedPolls: 0,
    retryAfterSeconds: null,
  };
  const app: AppOutcome[] = [];
  const floor: FloorOutcome[] = [];
  let bytesPerExport = 0;
  for (let rep = 0; rep < params.reps; rep++) {
    // A fresh local cloud per repetition: Azurite slows down with every blob it holds, and its
    // memory is freed only when it exits. A new seed: new files, a new eTag, a new folder.
    await withCloud({ ...scenario, seed: rep + 1 }, async (cloud) => {
      const env = appEnv(cloud, 'EUR');
      context.progress(`${label}: repetition ${rep + 1}/${params.reps}: the app lands ${params.fileCount} files`);
      const exportKind = params.exportKind ?? 'unbilled-usage';
      const subject = isBilledKind(exportKind) ? { exportKind, invoiceId: BENCH_INVOICE_ID } : { exportKind };
      const outcome = await runChild<AppOutcome>(context.childFile, {
        kind: 'app',
        env,
        currency: 'EUR',
        ...subject,
        host: context.host,
        sourceAccount: context.sourceAccount,
        ...(params.untilCopied ? { untilCopied: true } : {}),
      }).done;
      const record = exportRecord(cloud);
      if (record.kind !== exportKind) throw new Error(`${label}: the emulator's latest export is ${record.kind}, not ${exportKind}`);
      // A reconciliation export spreads its line items over at most fileCount files: the manifest says how many.
      if (
        outcome.state !== (params.untilCopied ? 'copying' : 'succeeded') ||
        outcome.blobCount !== record.blobNames.length ||
        outcome.timeline.succeededAtGraph === undefined ||
        outcome.timeline.dataCopied === undefined ||
        (!params.untilCopied && outcome.timeline.manifestWritten === undefined)
      ) {
        throw new Error(
          `${label}: the run ended ${outcome.state} with ${outcome.blobCount} of ${record.blobNames.length} files${outcome.errorCode ? ` (${outcome.errorCode}: ${outcome.errorMessage})` : ''}${outcome.timeline.dataCopied === undefined ? ', and no data check plan saying when its copies were done' : ''}`,
        );
      }
      app.push(outcome);
      bytesPerExport = record.totalBytes;

      // The floor copies the very same files, concurrencies in a rotating order.
      const rotation = rep % params.floorConcurrencies.length;
      const concurrencies = [...params.floorConcurrencies.slice(rotation), ...params.floorConcurrencies.slice(0, rotation)];
      context.progress(`${label}: repetition ${rep + 1}/${params.reps}: direct copies at concurrency ${concurrencies.join(', ')}`);
      const floorContainer = `floor-${rep}-${Date.now()}`;
      floor.push(
        await runChild<FloorOutcome>(context.childFile, {
          kind: 'floor',
          destinationConnectionString: partnerConnectionString(cloud),
          container: floorContainer,
          sources: sourceUrls(cloud, record),
          concurrencies,
        }).done,
      );
    });
  }

  const floorSeconds: Record<string, number[]> = {};
  for (const concurrency of params.floorConcurrencies) floorSeconds[String(concurrency)] = floor.map((outcome) => outcome.seconds[String(concurrency)]!);
  const bestConcurrency = params.floorConcurrencies.reduce((best, concurrency) =>
    median(floorSeconds[String(concurrency)]!) < median(floorSeconds[String(best)]!) ? concurrency : best,
  );
  return {
    app,
    floor,
    copiedSeconds: app.map((outcome) => (outcome.timeline.dataCopied! - outcome.timeline.succeededAtGraph!) / 1000),
    appSeconds: params.untilCopied ? [] : app.map((outcome) => (outcome.timeline.manifestWritten! - outcome.timeline.succeededAtGraph!) / 1000),
    floorSeconds,
    bestConcurrency,
    bytesPerExport,
  };
}

/**
 * Storage requests per file while landing (blob service only: the source reads, copies and
 * listings, up to every copy done; the data check's reads and manifest.json come after).
 */
export function blobRequestsPerFile(outcome: AppOutcome): number {
  const blob = Object.entries(outcome.landingRequests).filter(([kind]) => kind.startsWith('blob '));
  return blob.reduce((sum, [, count]) => sum + count, 0) / outcome.blobCount;
}

/**
 * The time, requests and CPU rows of a landing; `prefix` (e.g. 'billed-usage: ') names the kind
 * on each. `label` names the time to manifest.json; `copiedLabel`, when given, adds the time to
 * every copy done (the raw files) first. Requests and CPU are the landing's, to every copy done.
 */
export function landingRows(run: LandingRun, label: string, prefix = '', copiedLabel?: string): Measurement[] {
  const floorLabel = `direct copies, best concurrency (${run.bestConcurrency})`;
  const floorSamples = run.floor.map((outcome) => outcome.requestsPerFile);
  const best = String(run.bestConcurrency);
  const floorSeconds = run.floorSeconds[best]!;
  return [
    ...(copiedLabel === undefined ? [] : [measurement(`${prefix}${copiedLabel}`, 's', run.copiedSeconds, floorLabel, floorSeconds)]),
    // A landing measured until its copies were verified (untilCopied) has no time to manifest.json.
    ...(run.appSeconds.length === 0 ? [] : [measurement(`${prefix}${label}`, 's', run.appSeconds, floorLabel, floorSeconds)]),
    measurement(
      `${prefix}blob requests per file while landing`,
      'requests/file',
      run.app.map((outcome) => blobRequestsPerFile(outcome)),
      'one copy request per file',
      floorSamples,
    ),
    measurement(
      `${prefix}app CPU per file while landing`,
      'ms',
      run.app.map((outcome) => outcome.landingCpuMs / outcome.blobCount),
      'CPU per direct copy',
      run.floor.map((outcome) => outcome.cpuMsPerFile),
    ),
  ];
}

export function landingDetails(run: LandingRun): Record<string, unknown> {
  const middle = [...run.app].sort((a, b) => landingSeconds(a) - landingSeconds(b))[Math.floor(run.app.length / 2)]!;
  return {
    bytesPerExport: run.bytesPerExport,
    floorSecondsByConcurrency: Object.fromEntries(Object.entries(run.floorSeconds).map(([concurrency, samples]) => [concurrency, round(median(samples))])),
    copiedSeconds: run.copiedSeconds.map((seconds) => round(seconds)),
    checkedSeconds: run.appSeconds.map((seconds) => round(seconds)),
    landingRequestsOfMedianRun: middle.landingRequests,
    checkRequestsOfMedianRun: middle.checkRequests,
    checkCpuMsPerFileOfMedianRun: round(middle.checkCpuMs / middle.blobCount),
    landingLatencyMsOfMedianRun: middle.landingLatencyMs,
    landingSpansMsOfMedianRun: middle.landingSpansMs,
    copiedMsOfMedianRun: Math.round(landingSeconds(middle) * 1000),
    landingNewConnectionsOfMedianRun: middle.landingNewConnections,
    failedRequestsOfMedianRun: middle.failedRequests,
    requestsOfMedianRun: middle.requests,
    appPeakRssMiB: run.app.map((outcome) => round(outcome.maxRssBytes / 1024 ** 2)),
    appCopiesPerSecond: round(middle.blobCount / landingSeconds(middle)),
  };
}

/** The repetitions' file counts: a reconciliation export has as many files as its line items fill, a different number per seed. */
function fileCountsOf(run: LandingRun): string {
  const counts = run.app.map((outcome) => outcome.blobCount);
  const fewest = Math.min(...counts);
  const most = Math.max(...counts);
  return fewest === most ? String(fewest) : `${fewest}-${most}`;
}

/** Succeeded → every copy done: the landing itself. */
function landingSeconds(outcome: AppOutcome): number {
  return (outcome.timeline.dataCopied! - outcome.timeline.succeededAtGraph!) / 1000;
}

export async function timeToData(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const params = context.config.timeToData;
  // Every kind: they share the landing, but not the source container, the layout or the file contents.
  const runs: Array<{ exportKind: ExportKind; run: LandingRun }> = [];
  for (const exportKind of EXPORT_KINDS)
    runs.push({ exportKind, run: await measureLanding(context, `time to data (${exportKind})`, { ...params, exportKind }) });
  const rows = runs.flatMap(({ exportKind, run }) => {
    const files = `${fileCountsOf(run)} × ${formatSize(params.fileSizeBytes)}`;
    return landingRows(run, `${files}: succeeded → manifest.json (checked data)`, `${exportKind}: `, `${files}: succeeded → every copy done (raw files)`);
  });
  const [first] = runs;
  return {
    id: 'timeToData',
    title: 'Time to data',
    params: { ...params, kinds: EXPORT_KINDS, billedInvoiceId: BENCH_INVOICE_ID, copyEngine: "Azurite's in-memory copy (by reference, synchronous)" },
    rows,
    findings: [],
    // The first kind's details at the top (what the findings read), every kind's by kind.
    details: { ...landingDetails(first!.run), byKind: Object.fromEntries(runs.map(({ exportKind, run }) => [exportKind, landingDetails(run)])) },
    durationSeconds: (performance.now() - started) / 1000,
  };
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${round(bytes / 1024 ** 3, 3)} GiB`;
  if (bytes >= 1024 ** 2) return `${round(bytes / 1024 ** 2, 3)} MiB`;
  if (bytes >= 1024) return `${round(bytes / 1024, 3)} KiB`;
  return `${bytes} B`;
}
