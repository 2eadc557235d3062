/**
 * The CLI contract, as a user meets it: a separate process, settings from the environment or
 * local.settings.json, exit codes 0/1/2, and with --json one JSON object on the last line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';

const root = resolve(__dirname, '..', '..');
// node itself with tsx's loader, not the tsx wrapper: the wrapper runs the CLI in a child
// process, so a SIGKILL of the wrapper would leave the CLI running.
const tsxLoader = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
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
  return outcomeOf(spawnCli(args, env, cwd));
}

function spawnCli(args: string[], env: Record<string, string>, cwd = workDir): ChildProcess {
  // Only what a user's shell would pass: PATH and HOME, plus the settings under test.
  return spawn(process.execPath, ['--import', tsxLoader, cliMain, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function outcomeOf(child: ChildProcess): Promise<Outcome> {
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

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (condition()) return;
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
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

      // The environment wins over the file, under any casing of the name (as in the host): the
      // export is of the environment's currency and lands in the environment's container.
      const overridden = await cli(['run', '--json'], { Export_Currencies: 'NOK', partner_container: 'cli-steps-env' });
      expect(overridden.code, overridden.stderr).toBe(0);
      expect(overridden.json).toMatchObject({ status: 'succeeded', currency: 'NOK', destination: expect.stringMatching(/^cli-steps-env\/unbilled-usage\/\d{4}-\d{2}\/NOK\//) });
    } finally {
      rmSync(join(workDir, 'local.settings.json'));
    }
  });

  it('worker --json exits 1 when a run it finished failed, and lists that run', async () => {
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: '5000', message: 'No data available' } });
    try {
      const settings = appSettings({ POLL_QUEUE: 'cli-worker-fail', PARTNER_CONTAINER: 'cli-worker-fail', EXPORT_CURRENCIES: 'DKK' });
      const started = await cli(['start', '--json'], settings);
      expect(started.json).toMatchObject({ status: 'polling' });

      const worked = await cli(['worker', '--json'], settings);

      expect(worked.code).toBe(1);
      expect(worked.json).toMatchObject({ messagesPoisoned: 0, leasesLost: 0, runs: [{ runId: started.json.runId, status: 'failed', error: { code: '5000' } }] });
      expect(worked.json.messagesProcessed).toBeGreaterThan(0);
    } finally {
      cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 20 });
    }
  });

  it('a worker started after `run` was killed mid-poll resumes that run: one export, landed', async () => {
    const settings = appSettings({ POLL_QUEUE: 'cli-resume', PARTNER_CONTAINER: 'cli-resume', EXPORT_CURRENCIES: 'SEK' });
    const exportsOfSek = () => cloud.billing.exports().filter((record) => record.body.currencyCode === 'SEK').length;
    const operationGets = () => cloud.billing.requests().filter((request) => request.method === 'GET' && request.path.includes('/operations/')).length;
    // The first poll hangs, so the process is killed while it holds the poll message's lease.
    const removeFault = cloud.billing.faults.add({ endpoint: 'operation', fault: { kind: 'delay', ms: 20_000 }, times: 1 });
    try {
      const getsBefore = operationGets();
      const running = spawnCli(['run', '--json'], settings);
      const killed = outcomeOf(running);
      await until(() => operationGets() > getsBefore, 'the first operation GET of `run`');
      running.kill('SIGKILL');
      expect((await killed).code).toBeNull();
      expect(exportsOfSek()).toBe(1);

      const worked = await cli(['worker', '--json'], settings);

      expect(worked.code, worked.stderr).toBe(0);
      expect(worked.json.runs, `${worked.stdout}\n${worked.stderr}`).toEqual([expect.objectContaining({ status: 'succeeded', currency: 'SEK', blobCount: 2 })]);
      expect(exportsOfSek()).toBe(1);
      // While the killed process's lease ran out, the worker said what it was waiting for, once.
      const waits = worked.stderr.split('\n').filter((line) => line.includes('is still hidden, so a worker holds it'));
      expect(waits).toHaveLength(1);
      expect(waits[0]).toMatch(/waiting for run [0-9a-f-]{36} \(polling\): its message was due at \S+Z .*with a 30 s lease, by about \S+Z/);
    } finally {
      removeFault();
    }
  }, 120_000);

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
