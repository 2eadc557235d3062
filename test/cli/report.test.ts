/**
 * `report` as a user meets it: a separate process printing a landed run's per-customer totals,
 * checked against sums the test computes itself from the landed files.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { cli as runCli } from '../support/cli';
import { jsonLines } from '../support/jsonLines';
import { expectedTotals, SUMMED, totalsByKey } from '../support/exactTotals';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 2, rowsPerFile: 150 } });
}, 60_000);
afterAll(async () => {
  await cloud?.stop();
});

const settings = {
  EXPORT_CURRENCIES: 'EUR',
  POLL_INITIAL_DELAY_SECONDS: '1',
  POLL_MAX_DELAY_SECONDS: '1',
  POLL_QUEUE: 'cli-report',
  PARTNER_CONTAINER: 'cli-report',
};

const cli = (args: string[]) => runCli(args, { ...cloud.settings, ...settings });

describe('npm run -s cli -- report', () => {
  it("prints the landed run's per-customer totals, equal to the test's own sums of the landed rows", async () => {
    const landed = await cli(['run', '--json']);
    expect(landed.code, landed.stderr).toBe(0);
    const { runId, destination } = landed.json as { runId: string; destination: string };

    const json = await cli(['report', '--run', runId, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const [report] = (json.json as { runs: Array<{ runId: string; rowCount: number; totals: Array<Record<string, string | number>> }> }).runs;
    const container = BlobServiceClient.fromConnectionString(settingsConnection()).getContainerClient('cli-report');
    const folder = destination.slice('cli-report/'.length);
    const rows: Record<string, unknown>[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: folder })) {
      if (blob.name.endsWith('.json.gz')) rows.push(...jsonLines(await container.getBlobClient(blob.name).downloadToBuffer()));
    }
    expect(report).toMatchObject({ runId, rowCount: 300 });
    expect(totalsByKey(report!.totals, SUMMED.usage.columns)).toEqual(expectedTotals(rows, SUMMED.usage));

    const table = await cli(['report', '--month', (rows[0]!.ChargeStartDate as string).slice(0, 7)]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`Run ${runId} (unbilled-usage`);
    expect(table.stdout).toMatch(/customer\s+customer id\s+currency\s+pricing currency\s+rows\s+billingPreTaxTotal\s+pricingPreTaxTotal\s+quantity/);
    expect(table.stdout).toContain(`${new Set(rows.map((row) => String(row.CustomerId).toLowerCase())).size} customers`);
    const first = report!.totals[0]!;
    expect(table.stdout).toContain(String(first.billingPreTaxTotal));
    expect(table.stdout).toContain(String(first.customerName));
  }, 120_000);

  it.each([
    [['report', '--run', 'nope'], 2, "--run is 'nope': expected a run id"],
    [['report', '--run', '0b7a4c9e-3c55-4a43-9d57-0d0a2b6c1e11', '--month', '2026-10'], 2, '--run and --month choose the runs in different ways'],
    [['report', '--invoice', 'g12'], 2, '--invoice'],
    [['report', '--invoice', 'G000000999'], 1, 'No landed run with checked figures in invoice G000000999'],
    [['report', '--month', '2026-13'], 2, '--month'],
    [['report', '--month', '1999-01'], 1, 'No landed run with checked figures in billing month 1999-01'],
  ])(
    '%j exits %i naming the problem',
    async (args, code, message) => {
      const outcome = await cli(args);
      expect(outcome.code).toBe(code);
      expect(outcome.stderr).toContain(message);
    },
    60_000,
  );
});

function settingsConnection(): string {
  return cloud.settings.PARTNER_STORAGE;
}
