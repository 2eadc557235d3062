/**
 * The CLI as a user's shell starts it, for the tests that spawn it: a separate process with only
 * PATH, HOME and the settings under test in its environment; and a wait for something it does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const root = resolve(__dirname, '..', '..');
// node itself with tsx's loader, not the tsx wrapper: the wrapper runs the CLI in a child
// process, so a SIGKILL of the wrapper would leave the CLI running.
const tsxLoader = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const tsxWrapper = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const cliMain = join(root, 'cli', 'main.ts');

/** Only what a user's shell would pass: PATH and HOME. */
export const shellEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' });

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last line of stdout parsed (what --json prints), or {} when it is not JSON. */
  json: Record<string, unknown>;
}

/** The CLI run to its end in `cwd` (the repo root unless given), with `env` on top of the shell's. */
export function cli(args: string[], env: Record<string, string>, cwd = root): Promise<Outcome> {
  return outcomeOf(spawnCli(args, env, { cwd }));
}

/** The CLI started: node with tsx's loader (no wrapper), or the tsx wrapper as `npm run` starts it. */
export function spawnCli(args: string[], env: Record<string, string>, { cwd = root, via = 'node' }: { cwd?: string; via?: 'node' | 'tsx' } = {}): ChildProcess {
  const argv = via === 'node' ? ['--import', tsxLoader, cliMain, ...args] : [tsxWrapper, cliMain, ...args];
  return spawn(process.execPath, argv, { cwd, env: { ...shellEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function outcomeOf(child: ChildProcess): Promise<Outcome> {
  return new Promise((resolveRun, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(last) as Record<string, unknown>;
      } catch {
        // Not JSON output.
      }
      resolveRun({ code, stdout, stderr, json });
    });
  });
}

/** `probe`'s first truthy value, asked every `intervalMs` up to `attempts` times. */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  { attempts = 600, intervalMs = 100 }: { attempts?: number; intervalMs?: number } = {},
): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolveSleep) => setTimeout(resolveSleep, intervalMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}
