/**
 * Telemetry, captured where it lands: the real Azure Monitor exporter sends to an ingestion
 * endpoint on loopback, and the test reads the envelopes Application Insights would store.
 * The exporter only speaks https, so the endpoint has a throwaway self-signed certificate,
 * trusted by this test process alone (vitest runs each file in its own process). The exporter
 * is the one deployed: the bundle's telemetry chunk (scripts/bundle.mjs), loaded as the entry
 * point loads it.
 */
import { InvocationContext } from '@azure/functions';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as AzureMonitorModule from '../src/azureMonitor';
import type { Run, UnbilledRun } from '../src/core/run';
import { parseSettings } from '../src/core/settings';
import { createDeps } from '../src/deps';
import { consoleTelemetry, deferredTelemetry, type Telemetry } from '../src/telemetry';
import { aRun } from './support/runs';

// The exporter's own usage statistics ("statsbeat") would go to Microsoft's hosts: keep it off.
process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = 'true';
process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED = 'true';
process.env.APPLICATIONINSIGHTS_SDKSTATS_DISABLED = 'true';

interface Envelope {
  name: string;
  data: { baseType: string; baseData: Record<string, unknown> & { properties?: Record<string, string>; metrics?: Array<{ name: string; value: number }> } };
  tags?: Record<string, string>;
}

const received: Envelope[] = [];
const paths: string[] = [];
let server: Server;
let endpoint: string;
let bundleDir: string;
/** The telemetry chunk of the bundle. */
let chunk: typeof AzureMonitorModule;

function selfSignedCertificate(): { key: Buffer; cert: Buffer } {
  const directory = mkdtempSync(join(tmpdir(), 'pbe-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(directory, 'key.pem'),
        '-out',
        join(directory, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(directory, 'key.pem')), cert: readFileSync(join(directory, 'cert.pem')) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), 'pbe-telemetry-'));
  const root = resolve(__dirname, '..');
  // The probe is bundled like the entry point (with the same chunks beside it), away from node_modules.
  execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), join(bundleDir, 'probe.js'), join(root, 'test', 'support', 'telemetryProbe.ts')], {
    cwd: root,
    stdio: 'pipe',
  });
  chunk = createRequire(__filename)(join(bundleDir, 'telemetry.js')) as typeof AzureMonitorModule;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  server = createServer(selfSignedCertificate(), (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      paths.push(request.url ?? '');
      const body = Buffer.concat(chunks);
      const text = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8');
      const items = text.trim().startsWith('[')
        ? (JSON.parse(text) as Envelope[])
        : text
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as Envelope);
      received.push(...items);
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(bundleDir, { recursive: true, force: true });
});

const connectionString = () => `InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=${endpoint}`;
const tracesOf = (runId: string) => received.filter((e) => e.data.baseType === 'MessageData' && e.data.baseData.properties?.runId === runId);

/** A run that landed October's EUR usage in 25 minutes. */
const run = (overrides: Partial<UnbilledRun>): Run =>
  aRun({
    state: 'succeeded',
    seq: 4,
    pollCount: 3,
    bytesCopied: 589566,
    blobCount: 4,
    operationId: '9ab9cb54-d07f-4f52-9ea6-a09d7de52c14',
    destinationContainer: 'billing-exports',
    destinationFolder: 'unbilled-usage/2026-10/EUR/full/WYj/',
    startedAt: '2026-11-03T06:00:00.000Z',
    updatedAt: '2026-11-03T06:25:00.000Z',
    finishedAt: '2026-11-03T06:25:00.000Z',
    ...overrides,
  });

describe('Application Insights telemetry', () => {
  it('sends each run state change as a trace with the run as custom dimensions, and metrics', async () => {
    const telemetry = chunk.createAzureMonitorTelemetry({ connectionString: connectionString() });
    const log = new InvocationContext();

    telemetry.runChanged(log, run({ state: 'polling', pollCount: 0, bytesCopied: 0, finishedAt: undefined }));
    telemetry.runChanged(log, run({}));
    telemetry.runChanged(
      log,
      run({
        runId: '7fe687d7-1e0f-4bd6-9091-4672691f64bc',
        state: 'failed',
        errorCode: '5000',
        errorMessage: 'copy of https://x.blob.core.windows.net/c/f.gz?sv=1&sig=SECRET failed',
        bytesCopied: 0,
      }),
    );
    await telemetry.flush();

    expect(paths.every((path) => path.startsWith('/v2.1/track') || path.startsWith('/v2/track'))).toBe(true);
    const traces = received.filter((e) => e.data.baseType === 'MessageData');
    expect(traces.map((t) => t.data.baseData.message as string).map((m) => m.split(' {')[0])).toEqual(['run polling', 'run succeeded', 'run failed']);
    expect(traces.map((t) => t.data.baseData.severityLevel)).toEqual(['Information', 'Information', 'Error']);
    expect(traces[1]!.data.baseData.properties).toMatchObject({
      runId: '6fe687d7-1e0f-4bd6-9091-4672691f64bc',
      operationId: '9ab9cb54-d07f-4f52-9ea6-a09d7de52c14',
      kind: 'unbilled-usage',
      billingMonth: '2026-10',
      currency: 'EUR',
      state: 'succeeded',
      pollCount: '3',
      bytesCopied: '589566',
      durationSeconds: '1500',
    });
    expect(traces[2]!.data.baseData.properties).toMatchObject({ state: 'failed', errorCode: '5000', reason: expect.stringContaining('?<redacted>') });
    expect(JSON.stringify(received)).not.toContain('SECRET');
    expect(traces[0]!.tags?.['ai.cloud.role']).toBe('partner-billing-export');

    const metrics = received.filter((e) => e.data.baseType === 'MetricData').flatMap((e) => e.data.baseData.metrics ?? []);
    const byName = (name: string) => metrics.filter((m) => m.name === name).map((m) => m.value);
    expect(byName('export.duration')).toContain(1500);
    expect(byName('export.bytes_copied')).toContain(589566);
    expect(byName('export.polls').length).toBeGreaterThan(0);
  });

  it('loads the exporter on the first event when the app is configured for it, and sends the events in order', async () => {
    const deps = createDeps(
      parseSettings({
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        PARTNER_STORAGE: 'UseDevelopmentStorage=true',
        EXPORT_CURRENCIES: 'EUR',
        APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString(),
      }),
    );
    const runId = '8fe687d7-1e0f-4bd6-9091-4672691f64bc';

    deps.telemetry.runChanged(new InvocationContext(), run({ runId, state: 'starting', pollCount: 0, bytesCopied: 0, finishedAt: undefined }));
    deps.telemetry.runChanged(new InvocationContext(), run({ runId, state: 'polling', pollCount: 0, bytesCopied: 0, finishedAt: undefined }));
    deps.telemetry.runChanged(new InvocationContext(), run({ runId }));
    await deps.telemetry.flush();

    expect(tracesOf(runId).map((t) => t.data.baseData.properties?.state)).toEqual(['starting', 'polling', 'succeeded']);
  });

  it("goes through the bundle's telemetry chunk, loaded only when a connection string is set", async () => {
    // Asynchronously: the ingestion endpoint answering it runs in this process.
    const probe = (runId: string, insights: Record<string, string>) =>
      new Promise<string[]>((resolveLoaded, rejectLoaded) => {
        const child = spawn(process.execPath, [join(bundleDir, 'probe.js')], {
          cwd: bundleDir,
          env: {
            PATH: process.env.PATH ?? '',
            AzureWebJobsStorage: 'UseDevelopmentStorage=true',
            PARTNER_STORAGE: 'UseDevelopmentStorage=true',
            EXPORT_CURRENCIES: 'EUR',
            PROBE_RUN_ID: runId,
            APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
            APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
            APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
            NODE_TLS_REJECT_UNAUTHORIZED: '0',
            ...insights,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', rejectLoaded);
        child.on('close', (code) => {
          if (code !== 0) return rejectLoaded(new Error(`the probe exited with ${code}: ${stderr.slice(-2000)}`));
          const { loaded } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { loaded: string[] };
          resolveLoaded(loaded.map((file) => file.slice(bundleDir.length + 1)).sort());
        });
      });
    const configured = 'afe687d7-1e0f-4bd6-9091-4672691f64bc';
    const unconfigured = 'bfe687d7-1e0f-4bd6-9091-4672691f64bc';

    expect(await probe(configured, { APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString() })).toEqual(['errors.js', 'probe.js', 'telemetry.js']);
    expect(await probe(unconfigured, {})).toEqual(['errors.js', 'probe.js']);

    expect(tracesOf(configured).map((t) => t.data.baseData.properties?.state)).toEqual(['starting']);
    expect(tracesOf(unconfigured)).toEqual([]);
  });

  it('hands each event to the deferred exporter in order once it has loaded, and flush waits for that', async () => {
    const runId = '9fe687d7-1e0f-4bd6-9091-4672691f64bc';
    let loads = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolveRelease) => (release = resolveRelease));
    const telemetry = deferredTelemetry(async () => {
      loads++;
      await released; // a slow first load: events arrive meanwhile
      return chunk.createAzureMonitorTelemetry({ connectionString: connectionString() });
    });

    telemetry.runChanged(new InvocationContext(), run({ runId, state: 'polling', pollCount: 0, bytesCopied: 0, finishedAt: undefined }));
    telemetry.runChanged(new InvocationContext(), run({ runId }));
    const flushed = telemetry.flush();
    release();
    await flushed;

    expect(loads).toBe(1);
    expect(tracesOf(runId).map((t) => t.data.baseData.properties?.state)).toEqual(['polling', 'succeeded']);
  });

  it('sends the events to the invocation log, saying why, when the exporter cannot be loaded', async () => {
    const lines: Array<[string, string]> = [];
    const log = new InvocationContext({ logHandler: (level, ...args) => lines.push([level, args.join(' ')]) });
    const telemetry = deferredTelemetry((): Promise<Telemetry> => Promise.reject(new Error(`Cannot find module '${join(bundleDir, 'missing.js')}'`)));

    telemetry.runChanged(log, run({ state: 'failed', errorCode: '5000', errorMessage: 'No data available' }));
    await telemetry.flush();

    expect(lines.map(([level, line]) => [level, line.split(' {')[0]])).toEqual([
      ['error', 'telemetry not sent to Application Insights: its exporter did not load'],
      ['error', 'run failed'],
    ]);
    expect(lines[0]![1]).toContain('missing.js');
  });

  it('sends the same events to the invocation log when no connection string is set', () => {
    const lines: Array<[string, string]> = [];
    const log = new InvocationContext({ logHandler: (level, ...args) => lines.push([level, args.join(' ')]) });

    consoleTelemetry.runChanged(log, run({ state: 'failed', errorCode: '5000', errorMessage: 'No data available' }));

    expect(lines).toHaveLength(1);
    expect(lines[0]![0]).toBe('error');
    expect(lines[0]![1]).toMatch(/^run failed \{.*"runId":"6fe687d7-1e0f-4bd6-9091-4672691f64bc".*"errorCode":"5000","reason":"No data available"/);
  });
});
