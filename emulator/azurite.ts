/**
 * Runs a private Azurite (blob, queue and table) as a child process on free loopback ports,
 * in memory, with the storage accounts a test or local run needs.
 * https://github.com/Azure/Azurite#customized-storage-accounts--keys
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK_HOST } from './httpServer';

export interface StorageAccount {
  name: string;
  /** The account key, base64 (as in a connection string). */
  key: string;
}

/** Azurite's well-known development account: what `UseDevelopmentStorage=true` means. */
export const DEV_STORE_ACCOUNT: Readonly<StorageAccount> = {
  name: 'devstoreaccount1',
  key: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
};

export interface Azurite {
  blobPort: number;
  queuePort: number;
  tablePort: number;
  /** http://127.0.0.1:<blobPort>/<account> */
  blobEndpoint(account: string): string;
  queueEndpoint(account: string): string;
  tableEndpoint(account: string): string;
  /** A shared-key connection string with explicit blob, queue and table endpoints. */
  connectionString(account: string): string;
  accountKey(account: string): string;
  /** Stops Azurite and removes its working directory. Safe to call more than once. */
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_TAIL_LINES = 30;

const AZURITE_ARGS = [
  ...['--blobHost', LOOPBACK_HOST, '--queueHost', LOOPBACK_HOST, '--tableHost', LOOPBACK_HOST],
  // Port 0: the OS picks free ports, which Azurite then prints; parallel runs never collide.
  ...['--blobPort', '0', '--queuePort', '0', '--tablePort', '0'],
  // In-memory persistence rejects --location, so the working directory is set through cwd instead.
  '--inMemoryPersistence',
  '--disableTelemetry',
  // The storage SDKs send newer x-ms-version values than Azurite knows about.
  '--skipApiVersionCheck',
  '--silent',
];

/**
 * Preloaded into the Azurite process: exit once its stdin pipe from us closes. That also happens
 * when this process dies without running 'exit' handlers (SIGKILL, a crashed or timed-out test
 * runner), so no orphaned Azurite is left behind.
 */
const EXIT_WITH_PARENT = "data:text/javascript,process.stdin.on('end',()=>process.exit(0)).resume()";

const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/;

type Service = 'Blob' | 'Queue' | 'Table';

export async function startAzurite(options: { accounts: StorageAccount[] }): Promise<Azurite> {
  const accounts = withDevStoreAccount(options.accounts);
  const workDir = await mkdtemp(join(tmpdir(), 'azurite-'));
  const azuriteMain = require.resolve('azurite/dist/src/azurite.js');
  const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, azuriteMain, ...AZURITE_ARGS], {
    cwd: workDir,
    env: { ...process.env, AZURITE_ACCOUNTS: [...accounts].map(([name, key]) => `${name}:${key}`).join(';') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // Ending stdin is how stop() asks Azurite to exit; if it already died, that end() may raise EPIPE.
  child.stdin?.on('error', () => undefined);
  const killOnParentExit = (): void => {
    child.kill('SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', killOnParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(child);
      process.off('exit', killOnParentExit);
      await rm(workDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  let ports: Record<Service, number>;
  try {
    ports = await waitUntilListening(child);
  } catch (error) {
    await stop();
    throw error;
  }

  // Naming an account Azurite does not serve is a typo worth failing on, not a URL that answers 403 later.
  const keyOf = (account: string): string => {
    const key = accounts.get(account);
    if (key === undefined) {
      const configured = [...accounts.keys()].join(', ');
      throw new RangeError(`storage account '${account}' is not configured in this Azurite; configured: ${configured}`);
    }
    return key;
  };
  const endpoint = (service: Service, account: string): string => {
    keyOf(account);
    return `http://${LOOPBACK_HOST}:${ports[service]}/${account}`;
  };

  return {
    blobPort: ports.Blob,
    queuePort: ports.Queue,
    tablePort: ports.Table,
    blobEndpoint: (account) => endpoint('Blob', account),
    queueEndpoint: (account) => endpoint('Queue', account),
    tableEndpoint: (account) => endpoint('Table', account),
    accountKey: keyOf,
    connectionString: (account) =>
      [
        'DefaultEndpointsProtocol=http',
        `AccountName=${account}`,
        `AccountKey=${keyOf(account)}`,
        `BlobEndpoint=${endpoint('Blob', account)}`,
        `QueueEndpoint=${endpoint('Queue', account)}`,
        `TableEndpoint=${endpoint('Table', account)}`,
      ].join(';') + ';',
    stop,
  };
}

/**
 * AZURITE_ACCOUNTS replaces Azurite's account list, so the development account would vanish
 * unless it is listed too; it is always included because the app's own queue and table use it.
 */
function withDevStoreAccount(requested: readonly StorageAccount[]): Map<string, string> {
  const accounts = new Map<string, string>([[DEV_STORE_ACCOUNT.name, DEV_STORE_ACCOUNT.key]]);
  const seen = new Set<string>();
  for (const { name, key } of requested) {
    if (!/^[a-z0-9]{3,24}$/.test(name)) {
      throw new RangeError(`storage account name '${name}' is invalid: expected 3-24 lowercase letters and digits`);
    }
    if (seen.has(name)) throw new RangeError(`storage account '${name}' is listed twice`);
    if (key === '' || Buffer.from(key, 'base64').toString('base64') !== key) {
      throw new RangeError(`the key of storage account '${name}' is not base64`);
    }
    if (name === DEV_STORE_ACCOUNT.name && key !== DEV_STORE_ACCOUNT.key) {
      throw new RangeError(`${DEV_STORE_ACCOUNT.name} must keep its well-known key, which tools assume for UseDevelopmentStorage=true`);
    }
    seen.add(name);
    accounts.set(name, key);
  }
  return accounts;
}

function waitUntilListening(child: ChildProcess): Promise<Record<Service, number>> {
  return new Promise((resolve, reject) => {
    const ports: Partial<Record<Service, number>> = {};
    const output: string[] = [];
    const lastOutput = (): string => (output.length > 0 ? output.join('\n') : '(none)');

    const onLine = (line: string): void => {
      output.push(line);
      if (output.length > OUTPUT_TAIL_LINES) output.shift();
      const match = LISTENING.exec(line);
      if (!match) return;
      ports[match[1] as Service] = Number(match[2]);
      if (ports.Blob !== undefined && ports.Queue !== undefined && ports.Table !== undefined) {
        settle();
        resolve({ Blob: ports.Blob, Queue: ports.Queue, Table: ports.Table });
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      settle();
      reject(new Error(`Azurite exited (${signal ?? `code ${code}`}) before it was ready. Last output:\n${lastOutput()}`));
    };
    const onError = (error: Error): void => {
      settle();
      reject(new Error(`Azurite could not be started: ${error.message}`, { cause: error }));
    };
    const timer = setTimeout(() => {
      settle();
      const limit = `${STARTUP_TIMEOUT_MS / 1000} s`;
      reject(new Error(`Azurite did not report blob, queue and table listening within ${limit}. Last output:\n${lastOutput()}`));
    }, STARTUP_TIMEOUT_MS);

    const stopReading = [child.stdout, child.stderr].map((stream) => readLines(stream, onLine));
    child.once('exit', onExit);
    child.once('error', onError);
    function settle(): void {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      stopReading.forEach((stopReadingStream) => stopReadingStream());
    }
  });
}

/** Calls onLine per output line; returns a function that stops listening but keeps draining the pipe. */
function readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): () => void {
  if (!stream) return () => undefined;
  let pending = '';
  const onData = (chunk: Buffer): void => {
    const lines = (pending + chunk.toString('utf8')).split(/\r?\n/);
    pending = lines.pop() ?? '';
    lines.forEach(onLine);
  };
  stream.on('data', onData);
  // A pipe nobody reads fills up and blocks the child on its next write.
  return () => {
    stream.off('data', onData);
    stream.resume();
  };
}

/**
 * Closing stdin makes the preloaded EXIT_WITH_PARENT hook exit the process (Azurite keeps nothing on
 * disk, so there is nothing to flush; and SIGTERM alone would leave the hook holding the process open).
 * SIGKILL if it is still alive after a grace period.
 */
async function terminate(child: ChildProcess): Promise<void> {
  const neverStarted = child.pid === undefined;
  if (neverStarted || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
