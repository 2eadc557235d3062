/**
 * The CLI contract, as a user meets it: a separate process, settings from the environment or
 * local.settings.json, exit codes 0/1/2, and with --json one JSON object on the last line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';

const root = resolve(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const cliMain = join(root, 'cli', 'main.ts');

let cloud: LocalCloud;
let workDir: string;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 2, rowsPerFile: 20 } });
  workDir = mkdtempSync(join(tmpdir(), 'pbe-cli-'));
});
afterAll(async () => {
  await cloud?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

function cli(args: string[], env: Record<string, string>, cwd = workDir): Promise<Outcome> {
  return new Promise((resolveRun, reject) => {
    // Only what a user's shell would pass: PATH and HOME, plus the settings under test.
    const child = spawn(tsx, [cliMain, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
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

const appSettings = (overrides: Record<string, string> = {}) => ({
  ...cloud.settings,
  EXPORT_CURRENCIES: 'EUR',
  POLL_INITIAL_DELAY_SECONDS: '1',
  POLL_MAX_DELAY_SECONDS: '1',
  ...overrides,
});

describe('npm run -s cli', () => {
  it('run --json lands the export and ends with the contract object, exit 0', async () => {
    const outcome = await cli(['run', '--currency', 'usd', '--json'], appSettings({ POLL_QUEUE: 'cli-run', PARTNER_CONTAINER: 'cli-run' }));

    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.json).toMatchObject({
      runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'succeeded',
      operationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      blobCount: 2,
      bytesCopied: expect.any(Number),
      destination: expect.stringMatching(/^cli-run\/unbilled-usage\/\d{4}-\d{2}\/USD\/full\/[A-Za-z0-9]+\/$/),
    });
    expect(outcome.json).not.toHaveProperty('error');
    expect(`${outcome.stdout}${outcome.stderr}`).not.toMatch(/sig=|Bearer ey/);

    const status = await cli(['status', '--json'], appSettings({ POLL_QUEUE: 'cli-run', PARTNER_CONTAINER: 'cli-run' }));
    expect(status.code).toBe(0);
    expect((status.json.runs as Array<{ runId: string; status: string }>).find((r) => r.runId === outcome.json.runId)).toMatchObject({ status: 'succeeded' });
  });

  it('run exits 1 and reports the error when the export fails', async () => {
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: '5000', message: 'No data available' } });
    try {
      const outcome = await cli(['run', '--currency', 'GBP', '--period', 'current', '--json'], appSettings({ POLL_QUEUE: 'cli-fail', PARTNER_CONTAINER: 'cli-fail' }));
      expect(outcome.code).toBe(1);
      expect(outcome.json).toMatchObject({ status: 'failed', blobCount: 0, error: { code: '5000', message: expect.stringContaining('No data available') } });
    } finally {
      cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 20 });
    }
  });

  it('start then worker do the same in two steps, reading local.settings.json', async () => {
    writeFileSync(join(workDir, 'local.settings.json'), JSON.stringify({ IsEncrypted: false, Values: appSettings({ POLL_QUEUE: 'cli-steps', PARTNER_CONTAINER: 'cli-steps', EXPORT_CURRENCIES: 'CHF' }) }));
    try {
      const started = await cli(['start', '--json'], {});
      expect(started.code, started.stderr).toBe(0);
      expect(started.json).toMatchObject({ status: 'polling' });

      const worked = await cli(['worker', '--json'], {});
      expect(worked.code, worked.stderr).toBe(0);
      expect((worked.json.runs as Array<{ runId: string; status: string }>).map((r) => [r.runId, r.status])).toContainEqual([started.json.runId, 'succeeded']);

      // The environment wins over the file.
      const again = await cli(['start', '--json'], { POLL_QUEUE: 'cli-steps-env' });
      expect(again.json).toMatchObject({ status: 'succeeded', runId: started.json.runId });
      expect(again.stderr).toContain('Not started: run');
    } finally {
      rmSync(join(workDir, 'local.settings.json'));
    }
  });

  it('exits 2 naming every bad setting', async () => {
    const outcome = await cli(['run'], { EXPORT_BILLING_PERIOD: 'previous' });
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain('AzureWebJobsStorage is missing');
    expect(outcome.stderr).toContain('PARTNER_STORAGE is missing');
    expect(outcome.stderr).toContain('EXPORT_CURRENCIES is missing');
    expect(outcome.stderr).toContain("EXPORT_BILLING_PERIOD is 'previous': expected 'current' or 'last'");
  });

  it('exits 2 on bad usage, with the usage text', async () => {
    const unknown = await cli(['launch'], appSettings());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'launch'");
    expect(unknown.stderr).toContain('Usage: npm run -s cli -- <command>');

    const badPeriod = await cli(['start', '--period', 'yesterday'], appSettings());
    expect(badPeriod.code).toBe(2);
    expect(badPeriod.stderr).toContain(`'billingPeriod' is "yesterday": expected 'current' or 'last'`);
  });
});
