/**
 * Figure 3, cold start: a fresh Node.js process loads the deployed entry point the way the
 * Functions Node.js worker does (test/entry.test.ts's technique: a stand-in
 * `@azure/functions-core` captures registerFunction) and registers the functions. The headline
 * is the metric: from require() of package.json `main` until every function is
 * registered, against a bare Node.js process (spawn until it has run the same stand-in), for the
 * bundle (scripts/bundle.mjs) and the plain tsc output resolving node_modules; then the whole
 * process, spawn to registered. What the entry point defers (the SDK clients chunk) is timed
 * apart: the first invocation pays it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import packageJson from '../../package.json';
import { ROOT } from '../child';
import type { BenchContext } from '../context';
import { measurement, type FigureResult } from '../results';
import { median, round } from '../stats';

/** What the entry point needs to start (no connection is made while loading). */
const ENV = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  PARTNER_STORAGE: 'UseDevelopmentStorage=true',
  EXPORT_CURRENCIES: 'EUR,USD',
};

interface Build {
  readonly name: 'bare' | 'bundled' | 'unbundled';
  readonly entry: string;
  readonly nodePath?: string;
  readonly expected: readonly string[];
}

interface Sample {
  /** Spawn → registrations done. */
  readonly ms: number;
  /** require() of the entry point → registrations done. */
  readonly loadMs: number;
  /** Spawn → the loader script starts (Node.js itself). */
  readonly nodeMs: number;
  /** The functions registered. */
  readonly functions: readonly string[];
}

function startOnce(build: Build, cwd: string): Promise<Sample> {
  return new Promise((resolveSample, rejectSample) => {
    const spawnedAt = performance.timeOrigin + performance.now();
    // The same loader test/entry.test.ts uses, which also reports the times.
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'load-like-worker.cjs'), build.entry], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...(build.nodePath ? { NODE_PATH: build.nodePath } : {}), ...ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', rejectSample);
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit code ${code}: ${stderr.trim()}`);
        const loaded = JSON.parse(stdout) as { scriptStart: number; required: number; registered: number; registrations: Array<{ name: string }> };
        const result = { ...loaded, names: loaded.registrations.map((registration) => registration.name) };
        // Other functions may join over time; the two this app is about must be there.
        const missing = build.expected.filter((name) => !result.names.includes(name));
        if (missing.length > 0 || (build.expected.length === 0 && result.names.length > 0))
          throw new Error(`registered [${result.names.join(', ')}], expected [${build.expected.join(', ')}]`);
        resolveSample({
          ms: result.registered - spawnedAt,
          loadMs: result.registered - result.required,
          nodeMs: result.scriptStart - spawnedAt,
          functions: result.names,
        });
      } catch (error) {
        rejectSample(new Error(`cold start of the ${build.name} entry point failed: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  });
}

/** The bundle (scripts/bundle.mjs, as `npm run build` makes it) and the tsc output, in the work directory. */
function buildEntryPoints(workDir: string): { bundled: string; unbundled: string; bundleKiB: Record<string, number> } {
  const bundled = join(workDir, 'bundled', packageJson.main.replace(/^dist\//, ''));
  const bundling = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), bundled], { cwd: ROOT, encoding: 'utf8' });
  if (bundling.status !== 0 || !existsSync(bundled)) throw new Error(`scripts/bundle.mjs failed: ${bundling.stderr || bundling.stdout}`);
  const tscOut = join(workDir, 'tsc');
  const compiling = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', tscOut],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const unbundled = join(tscOut, 'src', 'index.js');
  // tsc emits even with type errors (someone may be mid-edit); only a missing output is fatal.
  if (!existsSync(unbundled)) throw new Error(`tsc -p tsconfig.build.json produced no src/index.js: ${compiling.stdout}`);
  const bundleDir = dirname(bundled);
  const files = readdirSync(bundleDir).filter((file) => file.endsWith('.js'));
  return { bundled, unbundled, bundleKiB: Object.fromEntries(files.map((file) => [file, round(statSync(join(bundleDir, file)).size / 1024)])) };
}

/** A fresh process loading one of the bundle's chunks as the entry point does on first use (require in a promise): the ms it takes. */
function firstUseOnce(chunk: string, cwd: string): Promise<number> {
  const script = `const started = performance.now(); Promise.resolve().then(() => require(${JSON.stringify(chunk)})).then(() => process.stdout.write(String(performance.now() - started)));`;
  return new Promise((resolveMs, rejectMs) => {
    const child = spawn(process.execPath, ['-e', script], { cwd, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', rejectMs);
    child.on('close', (code) =>
      code === 0 && Number.isFinite(Number(stdout))
        ? resolveMs(Number(stdout))
        : rejectMs(new Error(`importing ${chunk} failed (exit code ${code}): ${stderr.trim()}`)),
    );
  });
}

export async function coldStart(context: BenchContext): Promise<FigureResult> {
  const started = performance.now();
  const processes = context.config.coldStart.processes;
  context.progress('cold start: building the bundle (scripts/bundle.mjs) and the tsc output');
  const { bundled, unbundled, bundleKiB } = buildEntryPoints(context.workDir);
  const bareDir = join(context.workDir, 'bare');
  mkdirSync(bareDir, { recursive: true });
  const empty = join(bareDir, 'empty.js');
  writeFileSync(empty, '');
  const functions = ['startExports', 'pollExport', 'reviveStalledRuns', 'listRuns', 'getRun', 'startRun'];
  const builds: Build[] = [
    { name: 'bare', entry: empty, expected: [] },
    { name: 'bundled', entry: bundled, expected: functions },
    // NODE_PATH: the tsc output lives outside the project, so it resolves node_modules like the test does.
    { name: 'unbundled', entry: unbundled, nodePath: join(ROOT, 'node_modules'), expected: functions },
  ];
  const samples: Record<Build['name'], Sample[]> = { bare: [], bundled: [], unbundled: [] };

  // One untimed round warms the file cache; then rounds rotate the order so no build always goes first.
  for (const build of builds) await startOnce(build, context.workDir);
  context.progress(`cold start: ${processes} processes each of bare node, bundled and unbundled`);
  for (let round = 0; round < processes; round++) {
    for (let index = 0; index < builds.length; index++) {
      const build = builds[(round + index) % builds.length]!;
      samples[build.name].push(await startOnce(build, context.workDir));
    }
  }

  // What the entry point defers, each in a fresh process: the first invocation pays for them.
  context.progress(`cold start: ${processes} first uses each of the SDK clients and telemetry chunks`);
  const firstUse: Record<'clients' | 'telemetry', number[]> = { clients: [], telemetry: [] };
  for (let round = 0; round < processes; round++) {
    for (const chunk of ['clients', 'telemetry'] as const) firstUse[chunk].push(await firstUseOnce(join(dirname(bundled), `${chunk}.js`), context.workDir));
  }

  const ms = (name: Build['name']) => samples[name].map((sample) => sample.ms);
  const loadMs = (name: Build['name']) => samples[name].map((sample) => sample.loadMs);
  const bareLabel = 'bare node: spawn → ready, same stand-in, no entry point';
  return {
    id: 'coldStart',
    title: 'Cold start (require of main → functions registered)',
    params: {
      processes,
      bundle: `scripts/bundle.mjs → ${packageJson.main} (+ chunks loaded on first use)`,
      unbundled: 'tsc -p tsconfig.build.json → src/index.js, NODE_PATH=node_modules',
      technique: 'test/entry.test.ts stand-in @azure/functions-core',
    },
    rows: [
      measurement(`bundled (${packageJson.main}): require → functions registered`, 'ms', loadMs('bundled'), bareLabel, ms('bare')),
      measurement(`bundled (${packageJson.main}): spawn → functions registered`, 'ms', ms('bundled'), bareLabel, ms('bare')),
      measurement('unbundled (tsc output + node_modules): require → functions registered', 'ms', loadMs('unbundled'), bareLabel, ms('bare')),
      measurement('unbundled vs bundled: require → functions registered', 'ms', loadMs('unbundled'), 'bundled', loadMs('bundled')),
    ],
    findings: [],
    details: {
      functionsRegistered: samples.bundled[0]?.functions ?? [],
      bundleKiB,
      // Deferred by the entry point: the first call on a client, and the first run event when
      // Application Insights is configured.
      clientsChunkImportMs: round(median(firstUse.clients)),
      telemetryChunkImportMs: round(median(firstUse.telemetry)),
      nodeStartMs: Object.fromEntries(builds.map((build) => [build.name, round(median(samples[build.name].map((sample) => sample.nodeMs)))])),
    },
    durationSeconds: (performance.now() - started) / 1000,
  };
}
