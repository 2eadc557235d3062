/**
 * Builds the measured process (bench/appProcess.ts) with scripts/bundle.mjs, the deployed
 * bundle's own settings and chunks (written beside it), so it runs on plain Node.js like the
 * deployed bundle (no TypeScript loader in its memory or start-up), and forks it with one task.
 */
import { fork, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChildMessage, ChildOutcome, ChildTask } from './appProcess';

export const ROOT = resolve(__dirname, '..');
/** tsx's loader, for `node --import` (a URL, so it works on any platform): TypeScript in a plain node process. */
export const TSX_LOADER = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** Bundles bench/appProcess.ts (and the chunks it loads) into `outDir` with scripts/bundle.mjs; returns the file to fork. */
export function buildChild(outDir: string): string {
  const outfile = join(outDir, 'appProcess.js');
  const bundling = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), outfile, join(ROOT, 'bench', 'appProcess.ts')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (bundling.status !== 0) throw new Error(`bundling the app process failed: ${bundling.stderr.trim() || bundling.stdout.trim()}`);
  return outfile;
}

export interface ChildRun<T extends ChildOutcome> {
  /** Resolves when an app task with waitForGo has loaded and created its clients. */
  readonly ready: Promise<void>;
  /** Lets a waiting app task start its export. */
  go(): void;
  /** Resolves when the app has POSTed its export (app tasks only). */
  readonly started: Promise<string>;
  readonly done: Promise<T>;
}

/** Forks the built child with `task`; rejects with the child's error, or if it dies without answering. */
export function runChild<T extends ChildOutcome>(childFile: string, task: ChildTask, timeoutMs = 30 * 60_000): ChildRun<T> {
  // BENCH_PROFILE_DIR=<dir>: every measured process writes a V8 CPU profile there (for a look in DevTools).
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const execArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = fork(childFile, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  let onReady: () => void = () => undefined;
  let onStarted: (runId: string) => void = () => undefined;
  let onStartFailed: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolveReady, rejectReady) => {
    onReady = resolveReady;
    const previous = onStartFailed;
    onStartFailed = (error) => {
      previous(error);
      rejectReady(error);
    };
  });
  const started = new Promise<string>((resolveStarted, rejectStarted) => {
    onStarted = resolveStarted;
    const previous = onStartFailed;
    onStartFailed = (error) => {
      previous(error);
      rejectStarted(error);
    };
  });
  // A task that never gets that far must not leave an unhandled rejection behind.
  ready.catch(() => undefined);
  started.catch(() => undefined);
  const done = new Promise<T>((resolveDone, rejectDone) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      onStartFailed(error);
      rejectDone(error);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`the ${task.kind} process did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') onReady();
      else if (message.type === 'started') onStarted(message.runId);
      else if (message.type === 'failed') fail(new Error(`the ${task.kind} process failed: ${message.error}`));
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolveDone(message.outcome as T);
      }
    });
    child.on('error', fail);
    child.on('exit', (code, signal) => fail(new Error(`the ${task.kind} process exited (${signal ?? `code ${code}`}) without a result`)));
    child.send(task);
  });
  return { ready, go: () => void child.send('go'), started, done };
}
