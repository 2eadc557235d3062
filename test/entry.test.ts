/**
 * The deployed entry point, loaded the way the Functions Node.js worker loads it, with
 * `@azure/functions-core` (which only the worker provides) standing in to capture the
 * registrations the host would receive. Core Tools is not needed. Both builds are held to it:
 * the bundle that package.json `main` names (loaded from a folder with no node_modules, so it
 * must be self-contained) and the plain tsc output.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../package.json';

const root = resolve(__dirname, '..');
let outDir: string;
const builds: Record<string, { entry: string; nodePath?: string }> = {};

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), 'pbe-build-'));
  const bundle = join(outDir, 'bundled', packageJson.main.replace(/^dist\//, ''));
  execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), bundle], { cwd: root });
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(outDir, 'tsc')], { cwd: root });
  builds.bundled = { entry: bundle };
  builds.unbundled = { entry: join(outDir, 'tsc', 'src', 'index.js'), nodePath: join(root, 'node_modules') };
});
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function loadEntry(build: string, env: Record<string, string>) {
  const { entry, nodePath } = builds[build]!;
  return spawnSync(process.execPath, [join(root, 'scripts', 'load-like-worker.cjs'), entry], {
    cwd: outDir,
    env: { PATH: process.env.PATH ?? '', ...(nodePath ? { NODE_PATH: nodePath } : {}), ...env },
    encoding: 'utf8',
  });
}

describe.each(['bundled', 'unbundled'])('the %s Functions entry point', (build) => {
  it('registers the timers, the queue function and the run API with the configured bindings', () => {
    const result = loadEntry(build, {
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      PARTNER_STORAGE: 'UseDevelopmentStorage=true',
      EXPORT_CURRENCIES: 'EUR,USD',
      EXPORT_SCHEDULE: '0 30 5 4 * *',
      POLL_QUEUE: 'my-polls',
    });
    expect(result.status, result.stderr).toBe(0);
    const { registrations } = JSON.parse(result.stdout) as { registrations: Array<{ name: string; bindings: Record<string, Record<string, unknown>> }> };
    expect(registrations.map((r) => r.name)).toEqual(['startExports', 'pollExport', 'reviveStalledRuns', 'listRuns', 'getRun', 'startRun', 'partnerCenterEvents']);
    const [timer, queue, revive, list, get, start, partnerCenter] = registrations;
    expect(Object.values(revive!.bindings)).toContainEqual(expect.objectContaining({ type: 'timerTrigger', schedule: '0 */10 * * * *' }));
    expect(Object.values(timer!.bindings)).toContainEqual(expect.objectContaining({ type: 'timerTrigger', direction: 'in', schedule: '0 30 5 4 * *', runOnStartup: false }));
    expect(Object.values(queue!.bindings)).toContainEqual(expect.objectContaining({ type: 'queueTrigger', direction: 'in', queueName: 'my-polls', connection: 'AzureWebJobsStorage' }));
    const http = (registration: (typeof registrations)[number] | undefined) => Object.values(registration!.bindings).find((binding) => binding.type === 'httpTrigger');
    expect(http(list)).toMatchObject({ authLevel: 'function', route: 'runs', methods: ['GET'] });
    expect(http(get)).toMatchObject({ authLevel: 'function', route: 'runs/{runId}', methods: ['GET'] });
    expect(http(start)).toMatchObject({ authLevel: 'function', route: 'runs', methods: ['POST'] });
    // Partner Center cannot send a function key: its signature is checked instead.
    expect(http(partnerCenter)).toMatchObject({ authLevel: 'anonymous', route: 'events/partner-center', methods: ['POST'] });
  });

  it('stops the app at start with one message naming every bad setting', () => {
    const result = loadEntry(build, { EXPORT_CURRENCIES: 'EURO' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('Invalid app settings:');
    expect(result.stderr).toContain('AzureWebJobsStorage is missing');
    expect(result.stderr).toContain('PARTNER_STORAGE is missing');
    expect(result.stderr).toContain("EXPORT_CURRENCIES is 'EURO'");
  });
});
