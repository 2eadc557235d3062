/**
 * The shape of a benchmark run: every figure is a list of rows, each a median over repetitions
 * next to its floor (what the same work costs at best, measured in the same run) and the ratio.
 */
import type { MachineInfo } from './machine';
import { median, ratio, round } from './stats';

export type Unit = 's' | 'ms' | 'MiB' | 'count' | 'requests/file';

export interface Measurement {
  /** What is measured, e.g. "200 × 8 MiB: succeeded → manifest.json". */
  readonly label: string;
  readonly unit: Unit;
  /** Median of `samples`. */
  readonly value: number;
  /** What the floor is, e.g. "direct copies, best concurrency (32)". */
  readonly floorLabel: string;
  /** Median of `floorSamples`. */
  readonly floor: number;
  /** value / floor; null only when the floor is zero. */
  readonly ratio: number | null;
  readonly samples: readonly number[];
  readonly floorSamples: readonly number[];
}

export type FigureId = 'timeToData' | 'memory' | 'coldStart' | 'polling' | 'scale' | 'dataCheck';

export interface FigureResult {
  readonly id: FigureId;
  readonly title: string;
  /** The knobs the figure ran with (sizes, counts, repetitions, concurrencies). */
  readonly params: Record<string, unknown>;
  readonly rows: readonly Measurement[];
  /** Plain-language observations: where the gap to the floor comes from. */
  readonly findings: readonly string[];
  /** Figure-specific raw data (request counts per kind, per-concurrency floors, ...). */
  readonly details: Record<string, unknown>;
  readonly durationSeconds: number;
}

export interface BenchResults {
  readonly format: 'partner-billing-export/bench/1';
  readonly mode: 'full' | 'quick';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly figures: readonly FigureResult[];
}

export const FIGURE_IDS: readonly FigureId[] = ['timeToData', 'memory', 'coldStart', 'polling', 'scale', 'dataCheck'];

export function measurement(label: string, unit: Unit, samples: readonly number[], floorLabel: string, floorSamples: readonly number[]): Measurement {
  const value = median(samples);
  const floor = median(floorSamples);
  const r = ratio(value, floor);
  return {
    label,
    unit,
    value: round(value),
    floorLabel,
    floor: round(floor),
    ratio: r === null ? null : round(r, 3),
    samples: samples.map((sample) => round(sample)),
    floorSamples: floorSamples.map((sample) => round(sample)),
  };
}
