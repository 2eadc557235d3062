/**
 * The deployed entry point, loaded the way the Functions Node.js worker loads it, with
 * `@azure/functions-core` (which only the worker provides) standing in to capture the
 * registrations the host would receive. Core Tools is not needed. Both builds are held to it:
 * the bundle that package.json `main` names (loaded from a folder with no node_modules, so it
 * must be self-contained) and the plain tsc output.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../package.json';
import type * as ClientsModule from '../src/clients';
import { DEV_STORE_ACCOUNT } from '../emulator/azurite';
import { schemaFor } from '../src/core/dataSchema';
import { parseSettings } from '../src/core/settings';
import type * as ErrorsModule from '../src/errors';

const root = resolve(__dirname, '..');
/** What the entry point needs to start (no connection is made while loading). */
const MINIMAL_SETTINGS = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', PARTNER_STORAGE: 'UseDevelopmentStorage=true', EXPORT_CURRENCIES: 'EUR' };
/** The packages that the first call on a client or the first telemetry event loads, not the cold start. */
const LOADED_ON_FIRST_USE = [
  '@azure/storage-blob',
  '@azure/storage-queue',
  '@azure/data-tables',
  '@azure/identity',
  '@azure/msal-node',
  '@azure/monitor-opentelemetry-exporter',
  '@opentelemetry/sdk-logs',
  '@opentelemetry/sdk-metrics',
];
let outDir: string;
const builds: Record<string, { entry: string; nodePath?: string }> = {};

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), 'pbe-build-'));
  const bundle = join(outDir, 'bundled', packageJson.main.replace(/^dist\//, ''));
  execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), bundle], { cwd: root });
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(outDir, 'tsc')],
    { cwd: root },
  );
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
    expect(registrations.map((r) => r.name)).toEqual([
      'startExports',
      'pollExport',
      'reviveStalledRuns',
      'listRuns',
      'getRun',
      'startRun',
      'backfill',
      'partnerCenterEvents',
    ]);
    const [timer, queue, revive, list, get, start, backfill, partnerCenter] = registrations;
    expect(Object.values(revive!.bindings)).toContainEqual(expect.objectContaining({ type: 'timerTrigger', schedule: '0 */10 * * * *' }));
    expect(Object.values(timer!.bindings)).toContainEqual(
      expect.objectContaining({ type: 'timerTrigger', direction: 'in', schedule: '0 30 5 4 * *', runOnStartup: false }),
    );
    expect(Object.values(queue!.bindings)).toContainEqual(
      expect.objectContaining({ type: 'queueTrigger', direction: 'in', queueName: 'my-polls', connection: 'AzureWebJobsStorage' }),
    );
    const http = (registration: (typeof registrations)[number] | undefined) =>
      Object.values(registration!.bindings).find((binding) => binding.type === 'httpTrigger');
    expect(http(list)).toMatchObject({ authLevel: 'function', route: 'runs', methods: ['GET'] });
    expect(http(get)).toMatchObject({ authLevel: 'function', route: 'runs/{runId}', methods: ['GET'] });
    expect(http(start)).toMatchObject({ authLevel: 'function', route: 'runs', methods: ['POST'] });
    expect(http(backfill)).toMatchObject({ authLevel: 'function', route: 'backfill', methods: ['POST'] });
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

  it.each([
    ['without', {}],
    ['with', { APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://127.0.0.1:9/' }],
  ])('registers the functions %s Application Insights configured, loading neither the Azure SDKs nor the exporter', (_, insights) => {
    const result = loadEntry(build, { ...MINIMAL_SETTINGS, ...insights });
    expect(result.status, result.stderr).toBe(0);
    const { registrations, loaded } = JSON.parse(result.stdout) as { registrations: unknown[]; loaded: string[] };
    expect(registrations).toHaveLength(8);
    const packages = loaded.filter((file) => file.includes('node_modules')).map((file) => file.split('node_modules/').at(-1)!);
    expect(packages.filter((file) => LOADED_ON_FIRST_USE.some((name) => file.startsWith(`${name}/`)))).toEqual([]);
    if (build === 'bundled') {
      // The bundle reads its entry point and the shared errors; its other chunks wait for first use.
      const entryDir = dirname(builds.bundled!.entry);
      expect(
        loaded
          .filter((file) => file.startsWith(entryDir))
          .map((file) => relative(entryDir, file))
          .sort(),
      ).toEqual(['errors.js', basename(builds.bundled!.entry)].sort());
      expect(packages).toEqual([]);
    } else {
      expect(loaded.some((file) => file.endsWith(join('src', 'clients.js')) || file.endsWith(join('src', 'azureMonitor.js')))).toBe(false);
    }
  });
});

describe('the bundle', () => {
  const bundleDir = () => dirname(builds.bundled!.entry);
  const bundleFiles = () => readdirSync(bundleDir()).filter((file) => file.endsWith('.js'));

  it('is the entry point and the chunks it loads, minified, with no source maps unless BUNDLE_SOURCEMAP=1', () => {
    expect(bundleFiles().sort()).toEqual(
      ['clients.js', 'dataCheckWorker.js', 'errors.js', basename(builds.bundled!.entry), 'parquet.js', 'telemetry.js'].sort(),
    );
    expect(readdirSync(bundleDir()).filter((file) => file.endsWith('.map'))).toEqual([]);
    const main = readFileSync(builds.bundled!.entry, 'utf8');
    expect(main).not.toContain('sourceMappingURL');
    // Minified: far fewer lines than statements.
    expect(main.split('\n').length).toBeLessThan(main.split(';').length / 20);
    // No Azure SDK in the entry point: their user agents (azsdk-js-*) and the core's log names.
    expect(main).not.toMatch(/azsdk-js|core-rest-pipeline|ts-http-runtime/);
    expect(readFileSync(join(bundleDir(), 'clients.js'), 'utf8')).toMatch(/azsdk-js-azure-storage-blob/);
    // The Parquet writer waits in its own chunk for the first data check that writes Parquet.
    expect(readFileSync(join(bundleDir(), 'parquet.js'), 'utf8')).toMatch(/TIMESTAMP_MILLIS/);
    for (const file of ['main.js', 'clients.js'])
      expect(readFileSync(join(bundleDir(), file === 'main.js' ? basename(builds.bundled!.entry) : file), 'utf8'), file).not.toMatch(/num_children|hyparquet/);

    const mapped = join(outDir, 'mapped', 'main.js');
    execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), mapped], { cwd: root, env: { ...process.env, BUNDLE_SOURCEMAP: '1' } });
    for (const file of ['main.js', 'clients.js', 'telemetry.js']) expect(existsSync(join(outDir, 'mapped', `${file}.map`)), file).toBe(true);
    expect(readFileSync(mapped, 'utf8')).toContain('sourceMappingURL=main.js.map');
  });

  it("defines each of the app's error classes in one file, so instanceof holds across the chunks", () => {
    const sourceFiles = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      );
    const errorClasses = sourceFiles(join(root, 'src')).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/class (\w+) extends Error\b/g)].map((m) => m[1]!),
    );
    expect(errorClasses).toEqual(expect.arrayContaining(['GraphRequestError', 'LedgerConflictError']));
    const contents = Object.fromEntries(bundleFiles().map((file) => [file, readFileSync(join(bundleDir(), file), 'utf8')]));
    for (const name of errorClasses) {
      const definedIn = Object.keys(contents).filter((file) => contents[file]!.includes(`"${name}"`));
      expect(definedIn, name).toHaveLength(1);
    }
  });

  it('loads the SDK clients on first use, and their errors are the ones the handlers check for', async () => {
    // As the entry point loads them: CommonJS, each file once (the chunk requires ./errors.js).
    const load = createRequire(__filename);
    const errors = load(join(bundleDir(), 'errors.js')) as typeof ErrorsModule;
    const { createClients } = load(join(bundleDir(), 'clients.js')) as typeof ClientsModule;
    const clients = createClients(parseSettings(MINIMAL_SETTINGS), { graphCredential: { getToken: () => Promise.resolve(null) } });

    const refused = await clients.graph.get('https://elsewhere.example/operations/1').catch((thrown: unknown) => thrown);
    expect(refused).toBeInstanceOf(errors.GraphRequestError);
    expect(refused).toMatchObject({ code: 'ForeignOrigin', transient: false });
    expect(clients.destination.url('a/b.json')).toBe('http://127.0.0.1:10000/devstoreaccount1/billing-exports/a/b.json');
  });

  it("starts the data check's thread from its file beside the chunks, and its errors are the ones the handlers check for", async () => {
    const load = createRequire(__filename);
    const errors = load(join(bundleDir(), 'errors.js')) as typeof ErrorsModule;
    const { createClients } = load(join(bundleDir(), 'clients.js')) as typeof ClientsModule;
    // Nothing listens on port 9: the thread started, read its settings and made the request.
    const refused = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${DEV_STORE_ACCOUNT.key};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;`;
    const clients = createClients(parseSettings({ ...MINIMAL_SETTINGS, PARTNER_STORAGE: refused }), {
      graphCredential: { getToken: () => Promise.resolve(null) },
    });

    const thrown = await clients.dataFiles
      .checkFile({
        folder: 'unbilled-usage/2026-10/EUR/full/e/',
        name: 'part-0.json.gz',
        schema: schemaFor('usage', 'full'),
        parquet: true,
        source: { byteCount: 1 },
      })
      .catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(errors.StorageRequestError);
    expect(thrown).toMatchObject({ code: 'ECONNREFUSED', transient: true });
    expect((thrown as Error).message).toMatch(/^'part-0\.json\.gz': /);
  }, 30_000);
});
