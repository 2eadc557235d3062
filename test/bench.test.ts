/**
 * `npm run bench -- --quick` end to end, so the benchmark code never rots. No timing is
 * asserted (the numbers depend on the machine): only that it runs, prints the table and the
 * path, and writes JSON in which every figure has rows with a value, a floor and a ratio.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../bench/results';

const root = resolve(__dirname, '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const FIGURES = ['timeToData', 'memory', 'coldStart', 'polling', 'scale', 'dataCheck'];

let workDir: string;
let run: { code: number | null; stdout: string; stderr: string };
let results: BenchResults;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'pbe-bench-test-'));
  run = await new Promise((resolveRun, reject) => {
    const child = spawn(tsx, [join(root, 'bench', 'main.ts'), '--quick', '--out', join(workDir, 'results.json')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
  if (run.code === 0) results = JSON.parse(readFileSync(join(workDir, 'results.json'), 'utf8')) as BenchResults;
}, 300_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('npm run bench -- --quick', () => {
  it('exits 0, prints the table with the machine, and the paths it wrote', () => {
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    expect(run.stdout).toContain('machine:');
    expect(run.stdout).toMatch(/figure\s+measurement \(median\)\s+value\s+floor\s+ratio/);
    expect(run.stdout).toContain(join(workDir, 'results.json'));
    expect(existsSync(join(workDir, 'results.md'))).toBe(true);
  });

  it('writes JSON with the machine and every figure', () => {
    expect(results).toMatchObject({ format: 'partner-billing-export/bench/1', mode: 'quick' });
    expect(results.machine).toEqual(
      expect.objectContaining({ cpuModel: expect.any(String), cores: expect.any(Number), memoryBytes: expect.any(Number), node: process.version }),
    );
    expect(results.figures.map((figure) => figure.id)).toEqual(FIGURES);
  });

  it.each(FIGURES)('gives %s rows with a median value, its floor and their ratio', (id) => {
    const figure = results.figures.find((candidate) => candidate.id === id)!;
    expect(figure.title).toEqual(expect.any(String));
    expect(figure.rows.length).toBeGreaterThan(0);
    for (const row of figure.rows) {
      expect(row.label).toEqual(expect.any(String));
      expect(row.floorLabel).toEqual(expect.any(String));
      expect(Number.isFinite(row.value), `${row.label}: value`).toBe(true);
      expect(Number.isFinite(row.floor), `${row.label}: floor`).toBe(true);
      expect(row.floor, `${row.label}: floor`).toBeGreaterThan(0);
      expect(Number.isFinite(row.ratio), `${row.label}: ratio`).toBe(true);
      expect(row.samples.length).toBeGreaterThan(0);
      expect(row.floorSamples.length).toBeGreaterThan(0);
    }
  });

  it('covers what the issue asks for in each figure', () => {
    const labels = (id: string) => results.figures.find((figure) => figure.id === id)!.rows.map((row) => row.label);
    // Issue 10: the time-to-data figure holds for every kind, so each kind has its own rows: the
    // raw files (every copy done) first, against the direct copies, then the checked data (manifest.json).
    for (const kind of ['unbilled-usage', 'unbilled-reconciliation', 'billed-usage', 'billed-reconciliation']) {
      const ofKind = labels('timeToData').filter((label) => label.startsWith(`${kind}: `));
      expect(ofKind).toEqual([
        expect.stringMatching(new RegExp(`^${kind}: .*succeeded → every copy done \\(raw files\\)$`)),
        expect.stringMatching(new RegExp(`^${kind}: .*succeeded → manifest\\.json \\(checked data\\)$`)),
        `${kind}: blob requests per file while landing`,
        `${kind}: app CPU per file while landing`,
      ]);
    }
    // The raw files are there before the data check has read them back and manifest.json is written.
    const timeToData = results.figures.find((figure) => figure.id === 'timeToData')!;
    const raw = timeToData.rows.find((row) => row.label.endsWith('(raw files)'))!;
    const checked = timeToData.rows.find((row) => row.label.endsWith('(checked data)'))!;
    raw.samples.forEach((seconds, rep) => expect(seconds).toBeLessThan(checked.samples[rep]!));
    expect(raw.floorLabel).toMatch(/^direct copies, best concurrency \(\d+\)$/);
    const memory = results.figures.find((figure) => figure.id === 'memory')!;
    expect(memory.rows.map((row) => row.floorLabel)).toEqual([
      'the app loaded with its clients, no run',
      expect.stringMatching(/^the .* export \(4 files\)$/),
      expect.stringMatching(/^the .* export \(4 files\)$/),
    ]);
    expect(memory.findings).toEqual([expect.stringMatching(/^large \/ small = \d+\.\d+, large \/ medium = \d+\.\d+: /)]);
    expect(labels('coldStart')).toEqual(expect.arrayContaining([expect.stringMatching(/^bundled/), expect.stringMatching(/^unbundled/)]));
    expect(labels('polling')).toEqual(
      expect.arrayContaining([expect.stringMatching(/no Retry-After: operation GETs/), expect.stringMatching(/Retry-After \d+ s: completed → noticed/)]),
    );
    expect(labels('scale')).toEqual(expect.arrayContaining(['blob requests per file while landing']));
    expect(results.figures.find((figure) => figure.id === 'scale')!.details).toHaveProperty('fanOut');
  });
});
