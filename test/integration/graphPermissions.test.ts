/**
 * An identity Graph refuses for the partner billing API, end to end through the real
 * @azure/identity: one whose PartnerBilling.Read.All was never granted (Graph: 403
 * Authorization_RequestDenied), and an app in another tenant than the partner's (401). Neither
 * is transient: the run fails at its first POST, with Graph's code, instead of waiting for hours.
 * MSAL picks its managed identity source (the endpoint) once per process and caches tokens per
 * identity, so each case has its own test file's process and its own identity.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { EMULATED_UNGRANTED_CLIENT_ID } from '../../emulator/tokens';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, unbilledRequest } from './harness';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
});
afterAll(async () => {
  await cloud?.stop();
});
afterEach(() => {
  delete process.env.AZURE_CLIENT_ID;
});

async function exportAs(clientId: string) {
  process.env.AZURE_CLIENT_ID = clientId;
  const app = createTestApp(cloud);
  const requestsBefore = cloud.billing.requests().length;
  const exportsBefore = cloud.billing.exports().length;
  const started = await startExport(unbilledRequest('EUR'), app.deps, app.context());
  return { started: started.run, requests: cloud.billing.requests().slice(requestsBefore), exportsStarted: cloud.billing.exports().length - exportsBefore };
}

describe('an identity Graph refuses for partner billing', () => {
  it('without PartnerBilling.Read.All: the run fails at once with 403 Authorization_RequestDenied, after one POST', async () => {
    const { started, requests, exportsStarted } = await exportAs(EMULATED_UNGRANTED_CLIENT_ID);

    expect(started).toMatchObject({ state: 'failed', errorCode: 'Authorization_RequestDenied' });
    expect(started.errorMessage).toMatch(
      /^starting the export: POST .* failed with 403 Authorization_RequestDenied: Insufficient privileges to complete the operation\. .*PartnerBilling\.Read\.All/,
    );
    expect(requests.map((request) => request.method)).toEqual(['POST']);
    expect(exportsStarted).toBe(0);
  });
});
