/**
 * An app whose subscription (and so its managed identity) is in another tenant than the CSP
 * partner's: its Graph tokens carry that tenant's `tid`, and Graph's partner billing API answers
 * 401. Not transient: the run fails at its first POST with Graph's code. In a file of its own
 * because MSAL picks its managed identity endpoint once per process (see graphPermissions.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIdentityEndpoint, type IdentityEndpoint } from '../../emulator/identityEndpoint';
import { startLocalCloud, type LocalCloud } from '../../emulator/localCloud';
import { startExport } from '../../src/functions/startExport';
import { createTestApp, unbilledRequest } from './harness';

const OTHER_TENANT = '5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c';
let cloud: LocalCloud;
let otherTenant: IdentityEndpoint;
beforeAll(async () => {
  cloud = await startLocalCloud({ scenario: { fileCount: 1, rowsPerFile: 5, notStartedPolls: 0, runningPolls: 1, retryAfterSeconds: null } });
  otherTenant = await startIdentityEndpoint(cloud.authority, { tenantId: OTHER_TENANT });
});
afterAll(async () => {
  await otherTenant?.stop();
  await cloud?.stop();
});

describe('an app outside the partner tenant', () => {
  it("fails its run at once with 401 InvalidAuthenticationToken, naming the token's tenant, after one POST", async () => {
    const app = createTestApp({ ...cloud, settings: { ...cloud.settings, IDENTITY_ENDPOINT: otherTenant.endpoint, IDENTITY_HEADER: otherTenant.header } });
    const requestsBefore = cloud.billing.requests().length;

    const { run } = await startExport(unbilledRequest('EUR'), app.deps, app.context());

    expect(run).toMatchObject({ state: 'failed', errorCode: 'InvalidAuthenticationToken' });
    expect(run.errorMessage).toMatch(
      new RegExp(
        `failed with 401 InvalidAuthenticationToken: Access token validation failure: the token was issued in tenant '${OTHER_TENANT}': expected the partner tenant`,
      ),
    );
    expect(
      cloud.billing
        .requests()
        .slice(requestsBefore)
        .map((request) => request.method),
    ).toEqual(['POST']);
  });
});
