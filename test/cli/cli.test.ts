/**
 * The CLI contract, as a user meets it: a separate process, settings from the environment or
 * local.settings.json, exit codes 0/1/2, and with --json one JSON object on the last line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { cli as runCli, outcomeOf, spawnCli, until, type Outcome } from '../support/cli';

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

const cli = (args: string[], env: Record<string, string>, cwd = workDir): Promise<Outcome> => runCli(args, env, cwd);

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
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: 'InternalError', message: 'The export could not be produced' } });
    try {
      const outcome = await cli(
        ['run', '--currency', 'GBP', '--period', 'current', '--json'],
        appSettings({ POLL_QUEUE: 'cli-fail', PARTNER_CONTAINER: 'cli-fail' }),
      );
      expect(outcome.code).toBe(1);
      expect(outcome.json).toMatchObject({
        status: 'failed',
        blobCount: 0,
        error: { code: 'InternalError', message: expect.stringContaining('The export could not be produced') },
      });
    } finally {
      cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 20 });
    }
  });

  it("run exits 0 when Graph has no data (5000): the run ends noData with Graph's reason, not failed", async () => {
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: '5000', message: 'No data available' } });
    try {
      const outcome = await cli(
        ['run', '--kind', 'unbilled-reconciliation', '--currency', 'GBP', '--json'],
        appSettings({ POLL_QUEUE: 'cli-nodata', PARTNER_CONTAINER: 'cli-nodata' }),
      );
      expect(outcome.code, outcome.stderr).toBe(0);
      expect(outcome.json).toMatchObject({
        status: 'noData',
        kind: 'unbilled-reconciliation',
        blobCount: 0,
        reason: { code: '5000', message: expect.stringContaining('No data available') },
      });
      expect(outcome.json).not.toHaveProperty('error');
    } finally {
      cloud.billing.setScenario({ fileCount: 2, rowsPerFile: 20 });
    }
  });

  it('run --kind billed-usage --invoice lands the invoice; status filters by --kind and --invoice', async () => {
    const settings = appSettings({ POLL_QUEUE: 'cli-billed', PARTNER_CONTAINER: 'cli-billed' });
    const outcome = await cli(['run', '--kind', 'billed-usage', '--invoice', 'G000000001', '--json'], settings);

    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.json).toMatchObject({
      status: 'succeeded',
      kind: 'billed-usage',
      invoiceId: 'G000000001',
      billingMonth: null,
      currency: null,
      destination: expect.stringMatching(/^cli-billed\/billed-usage\/G000000001\/full\/[A-Za-z0-9]+\/$/),
    });
    const listed = await cli(['status', '--kind', 'billed-usage', '--invoice', 'G000000001', '--json'], settings);
    expect((listed.json.runs as Array<{ runId: string }>).map((run) => run.runId)).toEqual([outcome.json.runId]);
    const table = await cli(['status', '--invoice', 'G000000001'], settings);
    expect(table.stdout).toMatch(/billed-usage +G000000001 +full +succeeded/);
    const none = await cli(['status', '--kind', 'billed-reconciliation', '--invoice', 'G000000001'], settings);
    expect(none.stdout.trim()).toBe('No runs match.');
  });

  it('backfill --invoices starts one run per invoice and kind, waits for them and ends with a summary', async () => {
    const settings = appSettings({ POLL_QUEUE: 'cli-backfill', PARTNER_CONTAINER: 'cli-backfill' });
    const outcome = await cli(['backfill', '--invoices', 'G000000004,G000000005,G000000995', '--kinds', 'billed-reconciliation', '--json'], settings);

    // G000000995 is not an invoice the partner has: that run fails with Graph's reason, the others land.
    expect(outcome.code).toBe(1);
    expect(outcome.json).toMatchObject({ invoices: 3, kinds: ['billed-reconciliation'], runs: 3, counts: { succeeded: 2, failed: 1 }, stopped: false });
    const items = outcome.json.items as Array<{ invoiceId: string; outcome: string; run: { status: string; error?: { message: string } } }>;
    expect(items.map((item) => [item.invoiceId, item.outcome, item.run.status])).toEqual([
      ['G000000004', 'started', 'succeeded'],
      ['G000000005', 'started', 'succeeded'],
      ['G000000995', 'started', 'failed'],
    ]);
    expect(items[2]!.run.error!.message).toContain('G000000995');
    expect(outcome.stderr).toMatch(/backfill 1\/3: billed-reconciliation G000000004 started run [0-9a-f-]{36}/);
    expect(outcome.stderr).toContain('backfill 3/3: billed-reconciliation G000000995');

    const again = await cli(['backfill', '--invoices', 'G000000004,G000000005', '--kinds', 'billed-reconciliation'], settings);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('Backfill of 2 invoice(s) x billed-reconciliation: 2 skipped (already landed or running)');
  });

  it('demo --kind billed-reconciliation --invoice G000000001 lands that invoice on its own local cloud', async () => {
    const outcome = await cli(['demo', '--kind', 'billed-reconciliation', '--invoice', 'G000000001', '--files', '2', '--rows', '10'], {});
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain("Exporting billed invoice reconciliation: invoice G000000001, attribute set 'full'...");
    expect(outcome.stdout).toMatch(/Landed 2 file\(s\), .* of billed invoice reconciliation for invoice G000000001 \(full\)/);
    expect(outcome.stdout).toMatch(/folder {5}billing-exports\/billed-reconciliation\/G000000001\/full\/[A-Za-z0-9]+\//);
  }, 120_000);

  it('demo --event signed starts and lands both billed exports of the invoice; --event tampered is refused with 401 and starts nothing', async () => {
    const signed = await cli(['demo', '--event', 'signed', '--invoice', 'G000000001', '--files', '2', '--rows', '10'], {});
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/answered 200 \{"invoiceId":"G000000001","started":true/);
    expect(signed.stdout).toMatch(/^billed-usage G000000001: succeeded - 2 file\(s\), .* in billing-exports\/billed-usage\/G000000001\/full\/[A-Za-z0-9]+\/$/m);
    expect(signed.stdout).toMatch(
      /^billed-reconciliation G000000001: succeeded - 2 file\(s\), .* in billing-exports\/billed-reconciliation\/G000000001\/full\/[A-Za-z0-9]+\/$/m,
    );

    const tampered = await cli(['demo', '--event', 'tampered', '--invoice', 'G000000001', '--files', '2', '--rows', '10'], {});
    expect(tampered.code, tampered.stdout + tampered.stderr).toBe(0);
    expect(tampered.stdout).toContain('answered 401 {"error":{"code":"BadSignature"');
    expect(tampered.stdout).toContain('Refused, and no export started for G000000001.');
    expect(tampered.stdout).not.toContain('run starting');

    const misused = await cli(['demo', '--event', 'signed', '--kind', 'billed-usage', '--invoice', 'G000000001'], {});
    expect(misused.code).toBe(2);
    expect(misused.stderr.trim()).toBe('--kind does not go with --event: the event starts each kind of BILLED_EXPORT_KINDS for the invoice');
  }, 180_000);

  it('backfill refuses bad invoice ids, unbilled kinds and no invoices before reading the settings', async () => {
    const bad = await cli(['backfill', '--invoices', 'G000000004,INV-1', '--kinds', 'unbilled-usage'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe(
      "--invoices has 'INV-1': expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411; --kinds has 'unbilled-usage': expected one of billed-usage, billed-reconciliation (a backfill exports invoices)",
    );
    const none = await cli(['backfill'], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--invoices is missing: expected a list of 1-50 invoice ids');
  });

  it('start then worker do the same in two steps, reading local.settings.json', async () => {
    writeFileSync(
      join(workDir, 'local.settings.json'),
      JSON.stringify({ IsEncrypted: false, Values: appSettings({ POLL_QUEUE: 'cli-steps', PARTNER_CONTAINER: 'cli-steps', EXPORT_CURRENCIES: 'CHF' }) }),
    );
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
      expect(overridden.json).toMatchObject({
        status: 'succeeded',
        currency: 'NOK',
        destination: expect.stringMatching(/^cli-steps-env\/unbilled-usage\/\d{4}-\d{2}\/NOK\//),
      });
    } finally {
      rmSync(join(workDir, 'local.settings.json'));
    }
  });

  it('worker --json exits 1 when a run it finished failed, and lists that run', async () => {
    cloud.billing.setScenario({ outcome: 'failed', failure: { code: 'InternalError', message: 'The export could not be produced' } });
    try {
      const settings = appSettings({ POLL_QUEUE: 'cli-worker-fail', PARTNER_CONTAINER: 'cli-worker-fail', EXPORT_CURRENCIES: 'DKK' });
      const started = await cli(['start', '--json'], settings);
      expect(started.json).toMatchObject({ status: 'polling' });

      const worked = await cli(['worker', '--json'], settings);

      expect(worked.code).toBe(1);
      expect(worked.json).toMatchObject({
        messagesPoisoned: 0,
        leasesLost: 0,
        runs: [{ runId: started.json.runId, status: 'failed', error: { code: 'InternalError' } }],
      });
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
      const running = spawnCli(['run', '--json'], settings, { cwd: workDir });
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

  it('exits 2 when local.settings.json is not JSON, saying so in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pbe-cli-badjson-'));
    try {
      writeFileSync(join(dir, 'local.settings.json'), '{ "Values": { ');
      const outcome = await cli(['status'], {}, dir);
      expect(outcome.code).toBe(2);
      expect(outcome.stderr).toMatch(/^Invalid app settings:\n {2}- local\.settings\.json is not valid JSON: /);
      expect(outcome.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on bad usage, naming what was typed and what is expected', async () => {
    const unknown = await cli(['launch'], appSettings());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'launch': expected one of start, worker, run, status, backfill, report, emulator, demo");

    const badPeriod = await cli(['start', '--period', 'yesterday'], appSettings());
    expect(badPeriod.code).toBe(2);
    expect(badPeriod.stderr.trim()).toBe("--period is 'yesterday': expected current or last");

    const badCurrency = await cli(['run', '--currency', 'EUT'], appSettings());
    expect(badCurrency.code).toBe(2);
    expect(badCurrency.stderr.trim()).toBe("--currency is 'EUT': expected an ISO 4217 currency code such as EUR");

    const badInvoice = await cli(['start', '--kind', 'billed-usage', '--invoice', 'G1/x'], appSettings());
    expect(badInvoice.code).toBe(2);
    expect(badInvoice.stderr.trim()).toBe("--invoice is 'G1/x': expected a Partner Center invoice id: 'G' and 9 digits, such as G016907411");

    const billedWithCurrency = await cli(['run', '--kind', 'billed-reconciliation', '--invoice', 'G000000001', '--currency', 'EUR'], appSettings());
    expect(billedWithCurrency.code).toBe(2);
    expect(billedWithCurrency.stderr.trim()).toBe(
      "--currency is for unbilled kinds: billed-reconciliation exports the invoice's own month and currency, so leave --currency out",
    );

    const badKind = await cli(['demo', '--kind', 'billed'], {});
    expect(badKind.code).toBe(2);
    expect(badKind.stderr.trim()).toBe("--kind is 'billed': expected one of unbilled-usage, unbilled-reconciliation, billed-usage, billed-reconciliation");
  });

  it("rejects a flag of another command, naming the command's own flags", async () => {
    const start = await cli(['start', '--month', '2026-10'], appSettings());
    expect(start.code).toBe(2);
    expect(start.stderr).toContain(
      "start does not take --month; start's flags: --kind, --invoice, --currency, --period, --attribute-set, --force, --json, --help",
    );

    const status = await cli(['status', '--force', '--files', '3'], appSettings());
    expect(status.code).toBe(2);
    expect(status.stderr).toContain("status does not take --force; status's flags: --month, --state, --kind, --invoice, --json, --help");

    const emulator = await cli(['emulator', '--json'], {});
    expect(emulator.code).toBe(2);
    expect(emulator.stderr).toContain('emulator does not take --json');
  });

  it('checks status filters as GET /api/runs does, naming the flags', async () => {
    const outcome = await cli(['status', '--state', 'nonsense', '--month', '2026-13'], appSettings({ POLL_QUEUE: 'cli-run' }));
    expect(outcome.code).toBe(2);
    expect(outcome.stdout).not.toContain('No runs recorded yet.');
    expect(outcome.stderr.trim()).toBe(
      "--month is '2026-13': expected YYYY-MM; --state is 'nonsense': expected one of starting, polling, copying, succeeded, failed, noData, noNewData",
    );

    const none = await cli(['status', '--state', 'copying', '--month', '2001-01'], appSettings());
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe('No runs match.');
  });

  it('explains each command: --help, help <command> and a top-level --help', async () => {
    const start = await cli(['start', '--help'], {});
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/--currency CODE\s+ISO 4217 currency code \(default: the first of EXPORT_CURRENCIES\)/);
    expect(start.stdout).toMatch(/--period current\|last\s+billing period \(default: EXPORT_BILLING_PERIOD, else last\)/);
    expect(start.stdout).toMatch(/Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 {2}bad usage or bad settings\n {2}3 {2}a service/);
    expect(start.stdout).not.toContain('--month');

    const status = await cli(['help', 'status'], {});
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('--state STATE    only runs in this state: starting, polling, copying, succeeded, failed, noData, noNewData');
    expect(status.stdout).toContain('--invoice ID     only runs of this invoice');

    const worker = await cli(['worker', '-h'], {});
    expect(worker.stdout).toMatch(/--lease-seconds N\s+.*\(default: 30\)/);
    expect(worker.stdout).toContain('130/143  stopped by SIGINT/SIGTERM');

    const top = await cli(['--help'], {});
    expect(top.code).toBe(0);
    for (const command of ['start', 'worker', 'run', 'status', 'backfill', 'emulator', 'demo'])
      expect(top.stdout).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    expect(top.stdout).toContain('3 a service could not be');
  });

  it('start says what to run next, and status shows the billing period', async () => {
    const settings = appSettings({ POLL_QUEUE: 'cli-next', PARTNER_CONTAINER: 'cli-next', EXPORT_CURRENCIES: 'JPY' });
    const started = await cli(['start', '--period', 'current'], settings);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^Run [0-9a-f-]{36} \(unbilled-usage, \d{4}-\d{2}, current period, JPY, full\): polling$/m);
    expect(started.stdout).toContain('Next: `npm run -s cli -- worker` polls the export and lands it');

    const status = await cli(['status', '--state', 'polling'], settings);
    expect(status.code, status.stderr).toBe(0);
    const [header, ...rows] = status.stdout.trim().split('\n');
    expect(header).toMatch(/kind +invoice or month +set +state/);
    expect(rows.find((row) => row.includes('JPY'))).toMatch(/unbilled-usage +\d{4}-\d{2} current JPY +full +polling/);
    await cli(['worker'], settings);
  });

  it('storage that cannot be reached is one line naming the endpoint and the setting, exit 3, no key', async () => {
    const closed = `http://127.0.0.1:9/${'devstoreaccount1'}`;
    const unreachable = cloud.settings.AzureWebJobsStorage.replace(
      /(Blob|Queue|Table)Endpoint=[^;]+/g,
      (_m, service: string) => `${service}Endpoint=${closed}`,
    );
    const outcome = await cli(['status'], appSettings({ AzureWebJobsStorage: unreachable }));

    expect(outcome.code).toBe(3);
    const lines = outcome.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^Could not reach http:\/\/127\.0\.0\.1:9\/devstoreaccount1\S*: the connection was refused \(ECONNREFUSED\); check AzureWebJobsStorage and that the service is running/,
    );
    expect(outcome.stderr).not.toMatch(/AccountKey|Eby8vdM0|\bat \S+ \(|RestError/);
  });
});
