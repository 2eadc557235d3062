/**
 * Figure 5, scale: a manifest of many small files (10,000 in a full run). How long the one
 * landing invocation takes to start every copy and see it done, and how many storage requests it makes
 * per file, against one copy request per file issued directly. Whether one invocation fits a
 * Flex Consumption invocation's limits (host.json functionTimeout) or needs fan-out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../child';
import type { BenchContext } from '../context';
import type { FigureResult } from '../results';
import { median, round } from '../stats';
import { blobRequestsPerFile, landingDetails, landingRows, measureLanding } from './timeToData';

/** host.json's functionTimeout in seconds (Flex Consumption: 30 min by default). */
export function functionTimeoutSeconds(): number {
  const hostJson = JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as { functionTimeout?: string };
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(hostJson.functionTimeout ?? '00:30:00');
  if (!match) return 30 * 60;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  return ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds);
}

export async function scale(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const params = context.config.scale;
  const label = `${params.fileCount.toLocaleString('en-US')} files`;
  const run = await measureLanding(context, `scale (${label})`, {
    reps: params.reps,
    fileCount: params.fileCount,
    fileSizeBytes: null,
    floorConcurrencies: params.floorConcurrencies,
    // The landing invocation is this figure's subject; the files' checks run after it, one message each.
    untilCopied: true,
  });
  const landingSeconds = median(run.copiedSeconds);
  const limitSeconds = functionTimeoutSeconds();
  const requestsPerFile = median(run.app.map((outcome) => blobRequestsPerFile(outcome)));
  return {
    id: 'scale',
    title: 'Scale (one manifest, many small files)',
    params: { ...params, fileSizeBytes: 'natural (one usage row per file, about 1 KiB)' },
    rows: landingRows(run, '', '', `${label}: start every copy and see it done`),
    findings: [],
    details: {
      ...landingDetails(run),
      fanOut: {
        invocationSeconds: round(landingSeconds),
        functionTimeoutSeconds: limitSeconds,
        shareOfTimeout: round(landingSeconds / limitSeconds, 3),
        requestsPerFile: round(requestsPerFile),
        // How many files one invocation lands within half the timeout at the measured rate.
        filesPerHalfTimeoutAtMeasuredRate: Math.floor((params.fileCount / landingSeconds) * (limitSeconds / 2)),
      },
    },
    durationSeconds: (performance.now() - started) / 1000,
  };
}
