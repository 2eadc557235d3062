/**
 * Figure 2, memory: peak RSS of the app process (forked, bundled, the emulators elsewhere) for a
 * small, a medium and a large export with the same number of files, each landed, read back,
 * checked and written as Parquet (the default OUTPUT_FORMATS). The copies are server side; the
 * check streams each file, one at a time per process, holding at most a Parquet row group: the
 * peak should stop growing once the files outgrow a few row groups (large / medium near 1).
 */
import type { AppOutcome, IdleOutcome } from '../appProcess';
import { runChild } from '../child';
import { appEnv, exportRecord, freeExport, withCloud } from '../cloud';
import type { BenchContext } from '../context';
import { measurement, type FigureResult } from '../results';
import { round } from '../stats';
import { formatSize } from './timeToData';

const MiB = 1024 * 1024;

export async function memory(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const params = context.config.memory;
  const base = { fileCount: params.fileCount, rowsPerFile: 20, runningPolls: 0, notStartedPolls: 0, retryAfterSeconds: null };
  return withCloud(base, async (cloud) => {
    const idle: number[] = [];
    const small: number[] = [];
    const medium: number[] = [];
    const large: number[] = [];
    const bytes: Record<string, number> = {};
    for (let rep = 0; rep < params.reps; rep++) {
      context.progress(`memory: repetition ${rep + 1}/${params.reps}: idle app`);
      idle.push((await runChild<IdleOutcome>(context.childFile, { kind: 'idle', env: appEnv(cloud, 'EUR') }).done).maxRssBytes);
      // The sizes alternate, so drift over the run touches them alike.
      for (const [size, samples, fileSizeBytes] of [
        ['small', small, params.smallFileBytes],
        ['medium', medium, params.mediumFileBytes],
        ['large', large, params.largeFileBytes],
      ] as const) {
        cloud.billing.setScenario({ ...base, fileSizeBytes, seed: rep * 3 + (size === 'small' ? 1 : size === 'medium' ? 2 : 3) });
        const env = appEnv(cloud, 'EUR');
        context.progress(`memory: repetition ${rep + 1}/${params.reps}: ${size} export (${params.fileCount} × ${formatSize(fileSizeBytes)})`);
        const outcome = await runChild<AppOutcome>(context.childFile, {
          kind: 'app',
          env,
          currency: 'EUR',
          host: context.host,
          sourceAccount: context.sourceAccount,
        }).done;
        if (outcome.state !== 'succeeded')
          throw new Error(`memory: the ${size} run ended ${outcome.state}${outcome.errorCode ? ` (${outcome.errorCode}: ${outcome.errorMessage})` : ''}`);
        samples.push(outcome.maxRssBytes);
        bytes[size] = outcome.bytesCopied;
        await freeExport(cloud, exportRecord(cloud), [env.PARTNER_CONTAINER!]);
      }
    }
    const toMiB = (values: readonly number[]) => values.map((value) => value / MiB);
    const label = (size: string) => `${formatSize(bytes[size] ?? 0)} export (${params.fileCount} files)`;
    return {
      id: 'memory',
      title: 'Memory (peak RSS of the app process)',
      params: {
        ...params,
        process: 'bench/appProcess.ts bundled like dist/main.js, plain node, emulators in other processes; data check and Parquet on',
        measuredWith: 'process.resourceUsage().maxRSS at exit',
      },
      rows: [
        measurement(`peak RSS, ${label('small')}`, 'MiB', toMiB(small), 'the app loaded with its clients, no run', toMiB(idle)),
        measurement(`peak RSS, ${label('large')}`, 'MiB', toMiB(large), `the ${label('small')}`, toMiB(small)),
        measurement(`peak RSS, ${label('large')}`, 'MiB', toMiB(large), `the ${label('medium')}`, toMiB(medium)),
      ],
      findings: [],
      details: { bytesCopied: bytes, idleMiB: toMiB(idle).map((value) => round(value)) },
      durationSeconds: (performance.now() - started) / 1000,
    };
  });
}
