/**
 * Runs the figures one after another, each on a fresh local cloud, and collects the results.
 * The measured app always runs in its own process (bench/appProcess.ts, bundled like the
 * deployed app); the emulators run in this process and in Azurite's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queueHostOptions } from '../emulator/queueHost';
import { BILLING_SOURCE_ACCOUNT } from '../emulator/localCloud';
import { buildChild } from './child';
import type { RunOptions } from './config';
import type { BenchContext } from './context';
import { coldStart } from './figures/coldStart';
import { dataCheck } from './figures/dataCheck';
import { memory } from './figures/memory';
import { polling } from './figures/polling';
import { scale } from './figures/scale';
import { timeToData } from './figures/timeToData';
import { withFindings } from './findings';
import { machineInfo } from './machine';
import { FIGURE_IDS, type BenchResults, type FigureId, type FigureResult } from './results';

const FIGURES: Record<FigureId, (context: BenchContext) => Promise<FigureResult>> = { timeToData, memory, coldStart, polling, scale, dataCheck };

export async function runBench(options: RunOptions): Promise<BenchResults> {
  const startedAt = new Date();
  const began = performance.now();
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const workDir = await mkdtemp(join(tmpdir(), 'pbe-bench-'));
  try {
    progress('building the measured process (bench/appProcess.ts, bundled like dist/main.js)');
    const context: BenchContext = {
      config: options.config,
      childFile: buildChild(workDir),
      workDir,
      host: queueHostOptions(),
      sourceAccount: BILLING_SOURCE_ACCOUNT,
      progress: (line) => progress(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}`),
    };
    const figures: FigureResult[] = [];
    for (const id of FIGURE_IDS) {
      if (options.only && !options.only.includes(id)) continue;
      figures.push(withFindings(await FIGURES[id](context)));
    }
    return {
      format: 'partner-billing-export/bench/1',
      mode: options.config.mode,
      startedAt: startedAt.toISOString(),
      durationSeconds: Math.round((performance.now() - began) / 100) / 10,
      machine: machineInfo(),
      figures,
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
