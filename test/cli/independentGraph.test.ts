/**
 * The CLI as a new user runs it against a Graph-compatible endpoint that is not the project's
 * emulator: an independent implementation of the API on loopback (test/support/independentGraph.ts),
 * standing where a partner's gateway or egress proxy stands in front of Graph. The token must be
 * Microsoft Graph's, and Graph's own URLs must be followed through GRAPH_BASE_URL's origin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_SOURCE_ACCOUNT, startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { startIndependentGraph, type IndependentGraph } from '../support/independentGraph';

const root = resolve(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const cliMain = join(root, 'cli', 'main.ts');

let cloud: LocalCloud;
let graph: IndependentGraph;
let workDir: string;
beforeAll(async () => {
  cloud = await startLocalCloud();
  graph = await startIndependentGraph({
    storage: {
      blobEndpoint: cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT),
      accountName: BILLING_SOURCE_ACCOUNT,
      accountKey: cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT),
    },
    isGenuine: (token) => cloud.authority.issued().includes(token),
  });
  workDir = mkdtempSync(join(tmpdir(), 'pbe-independent-'));
});
afterAll(async () => {
  await graph?.stop();
  await cloud?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function cliRun(
  env: Record<string, string>,
  args: string[] = ['run', '--json'],
  onSpawn?: (child: ChildProcess) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; json: Record<string, unknown> }> {
  return new Promise((resolveRun, reject) => {
    // Only what a user's shell would pass: PATH and HOME, plus the settings. A process group of
    // its own, as a shell's job: killing the group kills the tsx wrapper and the CLI under it.
    const child = spawn(tsx, [cliMain, ...args], {
      cwd: workDir,
      detached: true,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        // Not JSON output.
      }
      resolveRun({ code, signal, stdout, stderr, json });
    });
  });
}

const settings = (overrides: Record<string, string>) => ({
  ...cloud.settings,
  GRAPH_BASE_URL: graph.baseUrl,
  EXPORT_CURRENCIES: 'EUR',
  POLL_INITIAL_DELAY_SECONDS: '1',
  POLL_MAX_DELAY_SECONDS: '1',
  ...overrides,
});

describe('run --json against an independent Graph-compatible endpoint', () => {
  it("lands the export with a Microsoft Graph token, following Graph's Location through GRAPH_BASE_URL", async () => {
    const before = graph.requests().length;

    const outcome = await cliRun(settings({ POLL_QUEUE: 'independent-run', PARTNER_CONTAINER: 'independent-run' }));

    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.json).toMatchObject({
      status: 'succeeded',
      blobCount: 2,
      currency: 'EUR',
      destination: expect.stringMatching(/^independent-run\/unbilled-usage\/\d{4}-\d{2}\/EUR\/full\//),
    });
    const [started] = graph.exports().filter((e) => e.operationId === outcome.json.operationId);
    expect(started).toMatchObject({ currencyCode: 'EUR', billingPeriod: 'last', attributeSet: 'full' });
    const requests = graph.requests().slice(before);
    expect(requests[0]).toEqual({ method: 'POST', path: '/v1.0/reports/partners/billing/usage/unbilled/export', authorized: true });
    expect(
      requests.slice(1).every((r) => r.method === 'GET' && r.path === `/v1.0/reports/partners/billing/operations/${started!.operationId}` && r.authorized),
    ).toBe(true);
    expect(requests.length).toBeGreaterThanOrEqual(3); // notStarted, then succeeded
    expect(`${outcome.stdout}${outcome.stderr}`).not.toMatch(/sig=|Bearer ey/);
  });

  it('fails with InvalidAuthenticationToken when the token is for another audience', async () => {
    const before = graph.exports().length;

    const outcome = await cliRun(
      settings({
        POLL_QUEUE: 'independent-aud',
        PARTNER_CONTAINER: 'independent-aud',
        EXPORT_CURRENCIES: 'USD',
        GRAPH_TOKEN_SCOPE: 'https://storage.azure.com/.default',
      }),
    );

    expect(outcome.code, outcome.stderr).toBe(1);
    expect(outcome.json).toMatchObject({ status: 'failed', error: { code: 'InvalidAuthenticationToken', message: expect.stringContaining('401') } });
    expect(graph.exports()).toHaveLength(before);
  });
});

describe('a run killed mid-poll against the independent endpoint', () => {
  it('is finished by a worker started right after: the same run, with the single export it started', async () => {
    // An endpoint that keeps the export running for a while, so the kill lands while the run polls.
    const slow = await startIndependentGraph({
      storage: {
        blobEndpoint: cloud.azurite.blobEndpoint(BILLING_SOURCE_ACCOUNT),
        accountName: BILLING_SOURCE_ACCOUNT,
        accountKey: cloud.azurite.accountKey(BILLING_SOURCE_ACCOUNT),
      },
      isGenuine: (token) => cloud.authority.issued().includes(token),
      runningPolls: 6,
    });
    try {
      const env = settings({ GRAPH_BASE_URL: slow.baseUrl, POLL_QUEUE: 'independent-kill', PARTNER_CONTAINER: 'independent-kill', EXPORT_CURRENCIES: 'SEK' });
      const operationPolls = () => slow.requests().filter((request) => request.method === 'GET' && request.path.includes('/operations/') && request.authorized);

      let killedRun: ChildProcess | undefined;
      const run = cliRun(env, ['run', '--json'], (child) => (killedRun = child));
      while (operationPolls().length < 2) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
      process.kill(-killedRun!.pid!, 'SIGKILL');
      const killed = await run;
      expect(killed.signal).toBe('SIGKILL');
      const [started] = slow.exports();
      expect(slow.exports()).toHaveLength(1);

      // Right after: a worker on the same queue and ledger, with a short lease.
      const worker = await cliRun(env, ['worker', '--lease-seconds', '2', '--json']);

      expect(worker.code, worker.stderr).toBe(0);
      const runs = worker.json.runs as Array<{ runId: string; status: string; operationId?: string }>;
      expect(runs).toEqual([expect.objectContaining({ status: 'succeeded', operationId: started!.operationId })]);
      // The run it finished is the one `run` started (its ledger row), and Graph saw one export POST.
      const status = await cliRun(env, ['status', '--json']);
      expect(
        (status.json.runs as Array<{ runId: string; currency: string }>).filter((listed) => listed.currency === 'SEK').map((listed) => listed.runId),
      ).toEqual([runs[0]!.runId]);
      expect(slow.exports()).toHaveLength(1);
      expect(slow.requests().filter((request) => request.method === 'POST')).toHaveLength(1);
    } finally {
      await slow.stop();
    }
  }, 180_000);
});

describe('run --json with an AZURE_CLIENT_ID that names no identity of the app', () => {
  it("fails within a few polls with IdentityUnavailable and the endpoint's words, and status says so", async () => {
    const env = settings({
      POLL_QUEUE: 'independent-identity',
      PARTNER_CONTAINER: 'independent-identity',
      EXPORT_CURRENCIES: 'CHF',
      AZURE_CLIENT_ID: '0a0b0c0d-1e1f-4a4b-8c8d-9e9f0a0b0c0d',
    });
    const before = graph.requests().length;

    const outcome = await cliRun(env);

    expect(outcome.code, outcome.stderr).toBe(1);
    expect(outcome.json).toMatchObject({
      status: 'failed',
      error: { code: 'IdentityUnavailable', message: expect.stringContaining('Unable to load the proper Managed Identity.') },
    });
    expect(graph.requests()).toHaveLength(before);
    const status = await cliRun(env, ['status', '--json']);
    const listed = (status.json.runs as Array<{ runId: string; error?: { code: string } }>).find((run) => run.runId === outcome.json.runId);
    expect(listed?.error?.code).toBe('IdentityUnavailable');
  });
});
