/**
 * Clean shutdown, with real signals to real processes: a worker gives back the message it
 * holds, and the emulator leaves no process behind (Azurite's pid is gone) whoever is signalled:
 * the CLI, the tsx wrapper that `npm run` starts, or either one killed outright.
 */
import { type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { spawnCli as spawnChild, until } from '../support/cli';

let cloud: LocalCloud;
const spawned: ChildProcess[] = [];
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 10 } });
});
afterAll(async () => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cloud?.stop();
});

/** The CLI started (killed at the end if still running), with its stdout and stderr as one text. */
function spawnCli(args: string[], env: Record<string, string>, via: 'node' | 'tsx' = 'node'): ChildProcess & { output: () => string } {
  const child = spawnChild(args, env, { via });
  spawned.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return Object.assign(child, { output: () => output });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
}

/** Every living process below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => (parents.get(parent) ?? []).forEach((child) => (found.push(child), walk(child)));
  walk(pid);
  return found;
}

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Starts `emulator`, waits until it is serving, and returns its processes: the CLI's and Azurite's. */
async function startEmulator(via: 'node' | 'tsx') {
  const emulator = spawnCli(['emulator'], {}, via);
  await until(() => emulator.output().includes('Press Ctrl+C to stop.'), 'the emulator to be ready');
  const below = descendants(emulator.pid!);
  const azurite = below.find((pid) => commandLine(pid).includes('azurite'));
  // The CLI is the process spawned, or (through the tsx wrapper) a process below it: either way
  // a living process running cli/main.ts.
  const cli = (via === 'tsx' ? below : [emulator.pid!]).find((pid) => alive(pid) && commandLine(pid).includes('cli/main.ts'));
  const processes = `processes from the emulator down: ${[emulator.pid!, ...below].map((pid) => `${pid} ${commandLine(pid)}`).join('\n')}`;
  expect(azurite, processes).toBeDefined();
  expect(cli, processes).toBeDefined();
  return { emulator, azurite: azurite!, cli: cli! };
}

describe('clean shutdown', () => {
  it('worker on SIGINT gives back the message it holds at once and exits 130', async () => {
    const settings = {
      ...cloud.settings,
      EXPORT_CURRENCIES: 'EUR',
      POLL_QUEUE: 'sig-worker',
      PARTNER_CONTAINER: 'sig-worker',
      POLL_INITIAL_DELAY_SECONDS: '1',
      POLL_MAX_DELAY_SECONDS: '1',
    };
    const started = spawnCli(['start', '--json'], settings);
    expect((await exited(started)).code, started.output()).toBe(0);
    const operationGets = () => cloud.billing.requests().filter((request) => request.method === 'GET' && request.path.includes('/operations/')).length;
    // The first poll hangs, so the worker is signalled while it holds the message.
    const removeFault = cloud.billing.faults.add({ endpoint: 'operation', fault: { kind: 'delay', ms: 20_000 }, times: 1 });
    try {
      const getsBefore = operationGets();
      const worker = spawnCli(['worker', '--lease-seconds', '60'], settings);
      await until(() => operationGets() > getsBefore, "the worker's first operation GET");
      const queue = QueueServiceClient.fromConnectionString(cloud.settings.AzureWebJobsStorage).getQueueClient('sig-worker');
      // Hidden while the worker holds it.
      expect((await queue.peekMessages()).peekedMessageItems).toHaveLength(0);

      worker.kill('SIGINT');
      const { code } = await exited(worker);

      expect(code, worker.output()).toBe(130);
      expect(worker.output()).toContain('stopped; the messages in hand are visible again');
      // Visible now, not after the 60 s lease: the next worker takes it at once.
      expect((await queue.peekMessages()).peekedMessageItems).toHaveLength(1);
    } finally {
      removeFault();
    }
  });

  it.each([
    ['the CLI', 'SIGTERM', 'node'],
    ['the CLI', 'SIGINT', 'node'],
    ['the tsx wrapper', 'SIGTERM', 'tsx'],
  ] as const)('emulator: %s sent %s stops Azurite and exits 0', async (_who, signal, via) => {
    const { emulator, azurite, cli } = await startEmulator(via);

    emulator.kill(signal);
    const { code } = await exited(emulator);

    expect(code, emulator.output()).toBe(0);
    expect(emulator.output()).toContain('Local cloud stopped.');
    await until(() => !alive(azurite) && !alive(cli), 'Azurite and the CLI to be gone', { attempts: 100 });
  });

  it.each([
    ['the CLI', 'node'],
    ['the tsx wrapper', 'tsx'],
  ] as const)('emulator: %s killed with SIGKILL leaves no orphan', async (_who, via) => {
    const { emulator, azurite, cli } = await startEmulator(via);

    emulator.kill('SIGKILL');
    await exited(emulator);

    await until(() => !alive(azurite) && !alive(cli), `Azurite (${azurite}) and the CLI (${cli}) to be gone`, { attempts: 150 });
  });

  it('demo on SIGTERM mid-export stops the local cloud it started and exits 143', async () => {
    // Many files and slow polls, so the export is still in progress when the signal comes.
    const demo = spawnCli(['demo', '--files', '40', '--rows', '2000'], {});
    await until(() => demo.output().includes('Exporting unbilled Azure usage'), 'the demo to start exporting');
    const azurite = descendants(demo.pid!).find((pid) => commandLine(pid).includes('azurite'));
    expect(azurite).toBeDefined();

    demo.kill('SIGTERM');
    const { code } = await exited(demo);

    expect(code, demo.output()).toBe(143);
    expect(demo.output()).toContain('Stopped before the export landed');
    await until(() => !alive(azurite!), 'Azurite to be gone', { attempts: 100 });
  });
});
