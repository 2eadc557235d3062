/** The knobs of a full run and of `--quick` (a smoke run: seconds, tiny sizes, 2-3 repetitions). */
import type { FigureId } from './results';

const MiB = 1024 * 1024;

export interface BenchConfig {
  readonly mode: 'full' | 'quick';
  readonly timeToData: {
    readonly reps: number;
    readonly fileCount: number;
    readonly fileSizeBytes: number;
    readonly floorConcurrencies: readonly number[];
    /** Measure to the raw files only (every copy done), not on to manifest.json after the data check. */
    readonly untilCopied: boolean;
  };
  readonly memory: {
    readonly reps: number;
    readonly fileCount: number;
    readonly smallFileBytes: number;
    /** An export past the first few Parquet row groups of each file: the large one should not peak higher. */
    readonly mediumFileBytes: number;
    readonly largeFileBytes: number;
  };
  readonly coldStart: { readonly processes: number };
  readonly polling: {
    readonly reps: number;
    /** How long the operation takes (the emulator's readyAfterSeconds). */
    readonly operationSeconds: readonly number[];
    /** The emulator's Retry-After on pending answers; null sends none. */
    readonly retryAfterSeconds: ReadonlyArray<number | null>;
    readonly initialDelaySeconds: number;
    readonly maxDelaySeconds: number;
  };
  readonly scale: { readonly reps: number; readonly fileCount: number; readonly floorConcurrencies: readonly number[] };
  readonly dataCheck: { readonly reps: number; readonly largeFileBytes: number; readonly smallFileBytes: number };
}

export const FULL: BenchConfig = {
  mode: 'full',
  // To the raw files only: checking 4 × 400 MiB (about 6 million rows a kind) three times would
  // take an hour; figure 6 measures the check per GiB, and --quick runs on to manifest.json.
  timeToData: { reps: 3, fileCount: 200, fileSizeBytes: 2 * MiB, floorConcurrencies: [4, 16, 64], untilCopied: true },
  // The large export is 1 GiB of gzip (about 15 million rows) read back, checked and written as
  // Parquet by the one process: about half an hour on 2 cores, so one repetition.
  memory: { reps: 1, fileCount: 16, smallFileBytes: 128 * 1024, mediumFileBytes: 16 * MiB, largeFileBytes: 64 * MiB },
  coldStart: { processes: 15 },
  // The operation times sit at least a second from every poll the policy schedules (with no
  // Retry-After: 1, 3, 7, 14-15 s; with 5 s: 1, 6, 11, 18-19 s), so the few hundred ms a real poll
  // runs late never moves it across the moment the operation completes.
  polling: { reps: 3, operationSeconds: [2, 4.5, 9], retryAfterSeconds: [null, 5], initialDelaySeconds: 1, maxDelaySeconds: 8 },
  // Azurite's in-memory metadata store scans every blob of an account per request, so a request
  // slows from about 3 ms to 18 ms by 10,000 blobs and 10,000 files take one repetition many
  // minutes: the full run lands 2,000 and projects; `--scale-files 10000` measures 10,000 once.
  scale: { reps: 3, fileCount: 2_000, floorConcurrencies: [32] },
  dataCheck: { reps: 3, largeFileBytes: 64 * MiB, smallFileBytes: 2 * MiB },
};

export const QUICK: BenchConfig = {
  mode: 'quick',
  timeToData: { reps: 2, fileCount: 8, fileSizeBytes: 256 * 1024, floorConcurrencies: [4, 16], untilCopied: false },
  memory: { reps: 2, fileCount: 4, smallFileBytes: 64 * 1024, mediumFileBytes: 512 * 1024, largeFileBytes: 2 * MiB },
  coldStart: { processes: 3 },
  polling: { reps: 2, operationSeconds: [2], retryAfterSeconds: [null, 3], initialDelaySeconds: 1, maxDelaySeconds: 2 },
  scale: { reps: 2, fileCount: 100, floorConcurrencies: [16] },
  dataCheck: { reps: 1, largeFileBytes: 1 * MiB, smallFileBytes: 256 * 1024 },
};

export interface RunOptions {
  readonly config: BenchConfig;
  /** Run only these figures (default: all). */
  readonly only?: readonly FigureId[];
  /** Progress lines (default: stderr). */
  readonly progress?: (line: string) => void;
}
