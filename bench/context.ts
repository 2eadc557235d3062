/** What every figure gets: the knobs, the built measured process and where to report progress. */
import type { QueueHostOptions } from '../emulator/queueHost';
import type { BenchConfig } from './config';

export interface BenchContext {
  readonly config: BenchConfig;
  /** The bundled bench/appProcess.ts, forked for every measured run. */
  readonly childFile: string;
  /** A scratch directory for builds, removed at the end. */
  readonly workDir: string;
  /** host.json's queue settings, as the worker reads them. */
  readonly host: QueueHostOptions;
  /** The storage account the billing emulator exports into. */
  readonly sourceAccount: string;
  progress(line: string): void;
}
