/**
 * The CLI's one-line failures, from real SDK errors against a real Azurite: the line names the
 * endpoint and the setting that points there, never the key or a SAS, and the exit code is 3.
 */
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure } from '../../cli/failure';
import { DEV_STORE_ACCOUNT, startAzurite, type Azurite } from '../../emulator/azurite';
import { parseSettings, type Settings } from '../../src/core/settings';
import { rejectionOf } from '../support/rejection';

const partnerKey = randomBytes(64).toString('base64');
let azurite: Azurite;
let settings: Settings;
beforeAll(async () => {
  azurite = await startAzurite({ accounts: [{ name: 'partnerfail', key: partnerKey }] });
  settings = parseSettings({
    AzureWebJobsStorage: azurite.connectionString(DEV_STORE_ACCOUNT.name),
    PARTNER_STORAGE: azurite.connectionString('partnerfail'),
    EXPORT_CURRENCIES: 'EUR',
    EXPORT_SOURCE_HOSTS: '127.0.0.1',
  });
});
afterAll(async () => {
  await azurite?.stop();
});

describe('describeFailure', () => {
  it('a missing container: the URL, what is wrong, the setting to check', async () => {
    const partner = BlobServiceClient.fromConnectionString(azurite.connectionString('partnerfail'));
    const error = await rejectionOf(partner.getContainerClient('absent').getProperties());

    const failure = describeFailure(error, settings);

    expect(failure.exitCode).toBe(3);
    expect(failure.line).toBe(
      `${azurite.blobEndpoint('partnerfail')}/absent refused the request: the container does not exist (ContainerNotFound); check PARTNER_STORAGE and that the service is running and reachable from here.`,
    );
  });

  it('a refused key: named, but the key and the signature are not in the line', async () => {
    const wrongKey = randomBytes(64).toString('base64');
    const client = new BlobServiceClient(azurite.blobEndpoint('partnerfail'), new StorageSharedKeyCredential('partnerfail', wrongKey));
    const error = await rejectionOf(client.getContainerClient('any').getProperties());

    const failure = describeFailure(error, settings);

    expect(failure.exitCode).toBe(3);
    // Azure answers AuthenticationFailed; Azurite, AuthorizationFailure: both are named as such.
    expect(failure.line).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/partnerfail\/any refused the request: .* \((AuthenticationFailed|AuthorizationFailure)\); check PARTNER_STORAGE and/,
    );
    expect(failure.line).not.toContain(wrongKey);
    expect(failure.line).not.toContain(partnerKey);
    expect(failure.line).not.toMatch(/SharedKey |Authorization:/);
  });

  it('a SAS URL that cannot be reached: the query string is left out', async () => {
    const client = new BlobServiceClient('http://127.0.0.1:9/?sv=2024-08-04&sig=c2VjcmV0c2lnbmF0dXJl&se=2099-01-01');
    const error = await rejectionOf(client.getContainerClient('c').getProperties());

    const failure = describeFailure(error, settings);

    expect(failure.line).toMatch(/^Could not reach http:\/\/127\.0\.0\.1:9\/c: the connection was refused \(ECONNREFUSED\); check the settings that name it/);
    expect(failure.line).not.toMatch(/sig=|c2VjcmV0/);
  }, 60_000);

  it('anything else is an internal error, one line, secrets removed', () => {
    const failure = describeFailure(new TypeError('cannot read x of undefined at https://h.example/p?sig=abc\n    at frame (file.ts:1:1)'), settings);
    expect(failure).toEqual({
      exitCode: 3,
      line: 'Internal error: cannot read x of undefined at https://h.example/p?<redacted>. Please report it with the command you ran.',
    });
  });
});
