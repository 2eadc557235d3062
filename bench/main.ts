/**
 * npm run bench [-- options]: the performance figures of the app on the embedded emulators.
 *
 *   --quick              a smoke run: seconds, tiny sizes, 2-3 repetitions
 *   --only a,b           only these figures: timeToData, memory, coldStart, polling, scale, dataCheck
 *   --files N            figure 1's file count (full run: 200)
 *   --file-mib M         figure 1's file size in MiB (full run: 2)
 *   --scale-files N      figure 5's file count (full run: 2,000); above 5,000, one repetition
 *                        (10,000 files take Azurite many minutes: see bench/config.ts)
 *
 * BENCH_PROFILE_DIR=<dir> makes every measured process write a V8 CPU profile there.
 *   --out PATH           where to write the JSON (default bench-results/latest.json, or
 *                        bench-results/quick.json with --quick); a Markdown table goes next to it
 *
 * Prints progress on stderr, the table on stdout, and the paths it wrote.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './child';
import { FULL, QUICK, type BenchConfig } from './config';
import { formatMarkdown, formatTable } from './report';
import { FIGURE_IDS, type FigureId } from './results';
import { runBench } from './run';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      files: { type: 'string' },
      'file-mib': { type: 'string' },
      'scale-files': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run bench -- [--quick] [--only timeToData,memory,coldStart,polling,scale,dataCheck] [--files N] [--file-mib M] [--scale-files N] [--out PATH]\n',
    );
    return 0;
  }
  const only = values.only?.split(',').map((id) => id.trim()) as FigureId[] | undefined;
  const unknown = only?.filter((id) => !FIGURE_IDS.includes(id));
  if (unknown?.length) throw new Error(`unknown figure '${unknown.join("', '")}': expected ${FIGURE_IDS.join(', ')}`);
  let config: BenchConfig = values.quick ? QUICK : FULL;
  const files = values.files === undefined ? undefined : positive(values.files, '--files');
  const fileMib = values['file-mib'] === undefined ? undefined : positive(values['file-mib'], '--file-mib');
  if (files !== undefined || fileMib !== undefined) {
    config = {
      ...config,
      timeToData: {
        ...config.timeToData,
        ...(files === undefined ? {} : { fileCount: Math.round(files) }),
        ...(fileMib === undefined ? {} : { fileSizeBytes: Math.round(fileMib * 1024 * 1024) }),
      },
    };
  }

  if (values['scale-files'] !== undefined) {
    const fileCount = Math.round(positive(values['scale-files'], '--scale-files'));
    // Azurite slows down with every blob it holds: beyond a few thousand files, one repetition.
    config = { ...config, scale: { ...config.scale, fileCount, reps: fileCount > 5000 ? 1 : config.scale.reps } };
  }

  const results = await runBench({ config, ...(only ? { only } : {}) });
  const out = resolve(values.out ?? resolve(ROOT, 'bench-results', values.quick ? 'quick.json' : 'latest.json'));
  const markdown = out.replace(/\.json$/i, '') + '.md';
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(markdown, `${formatMarkdown(results)}\n`);
  process.stdout.write(`\n${formatTable(results)}\n\n`);
  for (const figure of results.figures) {
    for (const finding of figure.findings) process.stdout.write(`- ${figure.title}: ${finding}\n`);
  }
  const shown = (path: string) => (path.startsWith(ROOT) ? relative(process.cwd(), path) || path : path);
  process.stdout.write(`\nResults: ${shown(out)} (JSON), ${shown(markdown)} (Markdown table)\n`);
  return 0;
}

function positive(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} '${text}': expected a positive number`);
  return value;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
