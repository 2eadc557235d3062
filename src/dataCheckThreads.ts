/**
 * The data check runs in worker threads (./dataCheckWorker.ts), not on the host's thread:
 * - its heap is its own and capped (DATA_CHECK_HEAP_MB), so V8 collects it instead of letting it
 *   grow through a long file, and the process's memory stays level whatever the file's size;
 * - a file that would need more than that fails its own check (naming the file), not the process
 *   with every invocation in it;
 * - gunzip, parse and Parquet (seconds of CPU per file) leave the host's thread free for its
 *   other invocations, the queue's message leases and the HTTP API.
 * A thread is kept for the next file and ends after DATA_CHECK_THREAD_IDLE_SECONDS without one.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DataFileOutcome, DataFiles } from './adapters/dataFile';
import { DATA_CHECK_HEAP_MB, DATA_CHECK_THREAD_IDLE_SECONDS } from './core/policy';
import type { Settings } from './core/settings';
import { DataFileError, StorageRequestError } from './errors';

/** What a check thread is started with. */
export interface CheckThreadData {
  readonly destination: Pick<Settings, 'partnerStorage' | 'partnerContainer'>;
  readonly options: { readonly timeoutMs?: number; readonly idleTimeoutMs?: number };
}

export interface CheckRequest {
  readonly id: number;
  readonly file: Parameters<DataFiles['checkFile']>[0];
}

/** A check's error as data, to be thrown again as its class on this side. */
export type CheckFailure =
  | { readonly kind: 'dataFile'; readonly file: string; readonly line: number | undefined; readonly problem: string }
  | { readonly kind: 'storage'; readonly message: string; readonly details: StorageRequestError['details'] }
  | { readonly kind: 'bug'; readonly message: string; readonly stack: string };

export type CheckReply = { readonly id: number; readonly outcome: DataFileOutcome } | { readonly id: number; readonly failure: CheckFailure };

/**
 * The thread's script, beside this module and in the same form: dist/dataCheckWorker.js in the
 * bundle (scripts/chunks.mjs), src/dataCheckWorker.ts when run from the source (under tsx, whose
 * loader the thread inherits with the process's execArgv).
 */
const WORKER_SCRIPT = path.join(__dirname, `dataCheckWorker${path.extname(__filename)}`);

export function createDataCheckThreads(destination: CheckThreadData['destination'], options: CheckThreadData['options'] = {}): DataFiles {
  const idle: CheckThread[] = [];
  let nextId = 0;

  function take(): CheckThread {
    const kept = idle.pop();
    if (kept) {
      clearTimeout(kept.idleTimer);
      kept.worker.ref();
      return kept;
    }
    const worker = new Worker(WORKER_SCRIPT, {
      // Only what the thread needs of the settings.
      workerData: {
        destination: { partnerStorage: destination.partnerStorage, partnerContainer: destination.partnerContainer },
        options,
      } satisfies CheckThreadData,
      resourceLimits: { maxOldGenerationSizeMb: DATA_CHECK_HEAP_MB },
    });
    const thread: CheckThread = { worker, idleTimer: undefined };
    // A thread that ends is not handed out again. The 'error' listener also keeps an idle
    // thread's error from being unhandled; a running check gets it through its own listener.
    worker.on('exit', () => forget(thread));
    worker.on('error', () => forget(thread));
    return thread;
  }
  function forget(thread: CheckThread): void {
    clearTimeout(thread.idleTimer);
    const at = idle.indexOf(thread);
    if (at !== -1) idle.splice(at, 1);
  }
  function giveBack(thread: CheckThread): void {
    // An idle thread does not keep the process alive (a CLI run ends), and ends on its own after a while.
    thread.worker.unref();
    thread.idleTimer = setTimeout(() => {
      forget(thread);
      void thread.worker.terminate();
    }, DATA_CHECK_THREAD_IDLE_SECONDS * 1000);
    thread.idleTimer.unref();
    idle.push(thread);
  }

  return {
    checkFile(file) {
      const thread = take();
      const id = nextId++;
      return new Promise<DataFileOutcome>((resolveOutcome, reject) => {
        const { worker } = thread;
        const settle = () => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        const onMessage = (reply: CheckReply) => {
          if (reply.id !== id) return;
          settle();
          giveBack(thread);
          if ('outcome' in reply) resolveOutcome(reply.outcome);
          else reject(thrownFrom(reply.failure));
        };
        // The thread is gone (out of its heap, or a bug at start-up): so is this check; the next one starts a new thread.
        const onError = (error: Error & { code?: string }) => {
          settle();
          void worker.terminate();
          if (error.code !== 'ERR_WORKER_OUT_OF_MEMORY') return reject(error);
          const problem = `could not be checked within the check's ${DATA_CHECK_HEAP_MB} MB heap: expected rows of a billing export`;
          reject(new DataFileError(file.name, undefined, problem, { cause: error }));
        };
        const onExit = (exitCode: number) => {
          settle();
          reject(new Error(`the data check thread of '${file.name}' ended (exit code ${exitCode}) before it answered`));
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        worker.postMessage({ id, file } satisfies CheckRequest);
      });
    },
  };
}

interface CheckThread {
  readonly worker: Worker;
  idleTimer: NodeJS.Timeout | undefined;
}

function thrownFrom(failure: CheckFailure): Error {
  switch (failure.kind) {
    case 'dataFile':
      return new DataFileError(failure.file, failure.line, failure.problem);
    case 'storage':
      return new StorageRequestError(failure.message, failure.details);
    case 'bug':
      return Object.assign(new Error(failure.message), { stack: failure.stack });
  }
}
