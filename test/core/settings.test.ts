import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseSettings } from '../../src/core/settings';
import { minimal, problemsOf } from '../support/settings';

describe('parseSettings', () => {
  it('applies the documented defaults', () => {
    const settings = parseSettings(minimal);
    expect(settings).toMatchObject({
      graphBaseUrl: 'https://graph.microsoft.com/v1.0',
      partnerContainer: 'billing-exports',
      exportSchedule: DEFAULTS.EXPORT_SCHEDULE,
      currencies: ['EUR'],
      billingPeriod: 'last',
      attributeSet: 'full',
      pollQueue: 'billing-export-polls',
      pollInitialDelaySeconds: 60,
      pollMaxDelaySeconds: 600,
      exportDeadlineSeconds: 21600,
      sourceHosts: ['.blob.core.windows.net'],
    });
    expect(settings.appStorage).toEqual({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' });
  });

  it('normalises currencies: trims, upper-cases and drops duplicates', () => {
    expect(parseSettings({ ...minimal, EXPORT_CURRENCIES: ' eur, USD ,EUR,' }).currencies).toEqual(['EUR', 'USD']);
  });

  it('drops a trailing slash from GRAPH_BASE_URL and allows http only on loopback', () => {
    expect(parseSettings({ ...minimal, GRAPH_BASE_URL: 'http://127.0.0.1:5000/v1.0/' }).graphBaseUrl).toBe('http://127.0.0.1:5000/v1.0');
    expect(problemsOf({ ...minimal, GRAPH_BASE_URL: 'http://graph.example.com/v1.0' })).toEqual([
      "GRAPH_BASE_URL is 'http://graph.example.com/v1.0': expected https (plain http is allowed only for a loopback host)",
    ]);
  });

  it('names every bad setting at once, with the form it expects', () => {
    const problems = problemsOf({
      EXPORT_CURRENCIES: 'EUR,EURO',
      EXPORT_BILLING_PERIOD: 'previous',
      EXPORT_ATTRIBUTE_SET: 'all',
      EXPORT_SCHEDULE: '0 6 3 * *',
      PARTNER_CONTAINER: 'Billing_Exports',
      POLL_QUEUE: 'a-queue-name-that-is-far-too-long-to-leave-room-for-poison-suffix',
      POLL_INITIAL_DELAY_SECONDS: '0',
      EXPORT_DEADLINE_SECONDS: 'soon',
      EXPORT_SOURCE_HOSTS: 'https://bad/',
    });
    expect(problems).toHaveLength(11);
    expect(problems.join('\n')).toMatch(
      /AzureWebJobsStorage is missing: expected AzureWebJobsStorage \(a connection string\), or AzureWebJobsStorage__accountName/,
    );
    expect(problems).toContain(
      'PARTNER_STORAGE is missing: expected PARTNER_STORAGE (a connection string), or PARTNER_STORAGE__accountName, or PARTNER_STORAGE__blobServiceUri',
    );
    expect(problems).toContain(
      "EXPORT_CURRENCIES is 'EUR,EURO': expected comma-separated ISO 4217 currency codes such as 'EUR,USD' ('EURO' is not an ISO 4217 code)",
    );
    expect(problems).toContain("EXPORT_BILLING_PERIOD is 'previous': expected 'current' or 'last'");
    expect(problems).toContain("EXPORT_ATTRIBUTE_SET is 'all': expected 'full' or 'basic'");
    expect(problems.join('\n')).toMatch(/EXPORT_SCHEDULE is '0 6 3 \* \*': expected a six-field NCRONTAB expression .* \(found 5 fields\)/);
    expect(problems.join('\n')).toMatch(/PARTNER_CONTAINER is 'Billing_Exports': expected a container name/);
    expect(problems.join('\n')).toMatch(/POLL_QUEUE is .*room is left for the '-poison' suffix/);
    expect(problems).toContain("POLL_INITIAL_DELAY_SECONDS is '0': expected a whole number of seconds, at least 1");
    expect(problems).toContain("EXPORT_DEADLINE_SECONDS is 'soon': expected a whole number of seconds, at least 1");
    expect(problems.join('\n')).toMatch(/EXPORT_SOURCE_HOSTS is 'https:\/\/bad\/': expected comma-separated host names/);
  });

  it('takes only ISO 4217 currencies, as the runtime lists them: EUT is three letters and no currency', () => {
    const problems = problemsOf({ ...minimal, EXPORT_CURRENCIES: 'eur,EUT,XYZ' });
    expect(problems).toEqual([
      "EXPORT_CURRENCIES is 'eur,EUT,XYZ': expected comma-separated ISO 4217 currency codes such as 'EUR,USD' ('EUT', 'XYZ' are not ISO 4217 codes)",
    ]);
  });

  it('says the currencies are required when they are missing', () => {
    const { EXPORT_CURRENCIES: _omitted, ...rest } = minimal;
    expect(problemsOf(rest)).toEqual(["EXPORT_CURRENCIES is missing: expected comma-separated ISO 4217 codes such as 'EUR' or 'EUR,USD'"]);
  });

  it('rejects backoff bounds in the wrong order or beyond the queue limit', () => {
    expect(problemsOf({ ...minimal, POLL_INITIAL_DELAY_SECONDS: '700', POLL_MAX_DELAY_SECONDS: '600' })).toEqual([
      'POLL_INITIAL_DELAY_SECONDS (700) is larger than POLL_MAX_DELAY_SECONDS (600): expected initial <= max',
    ]);
    expect(problemsOf({ ...minimal, POLL_MAX_DELAY_SECONDS: '604801' })[0]).toMatch(/at most 604800 \(7 days/);
  });

  it('reads identity-based connections in the Functions host shapes', () => {
    const settings = parseSettings({
      EXPORT_CURRENCIES: 'USD',
      AzureWebJobsStorage__accountName: 'appstore',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '11111111-2222-3333-4444-555555555555',
      PARTNER_STORAGE__blobServiceUri: 'https://partner.blob.core.windows.net/',
      PARTNER_STORAGE__clientId: '11111111-2222-3333-4444-555555555555',
    });
    expect(settings.appStorage).toEqual({
      kind: 'identity',
      queueServiceUri: 'https://appstore.queue.core.windows.net',
      tableServiceUri: 'https://appstore.table.core.windows.net',
      credential: 'managedidentity',
      clientId: '11111111-2222-3333-4444-555555555555',
    });
    expect(settings.partnerStorage).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://partner.blob.core.windows.net',
      clientId: '11111111-2222-3333-4444-555555555555',
    });
  });

  it('asks for both service URIs when the app account has no account name', () => {
    expect(problemsOf({ ...minimal, AzureWebJobsStorage: '', AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net' })).toEqual([
      'AzureWebJobsStorage is missing: expected AzureWebJobsStorage (a connection string), or AzureWebJobsStorage__accountName, or AzureWebJobsStorage__tableServiceUri',
    ]);
  });

  it('rejects a malformed client ID, credential or connection string', () => {
    const problems = problemsOf({
      ...minimal,
      PARTNER_STORAGE: '',
      PARTNER_STORAGE__blobServiceUri: 'https://p.blob.core.windows.net',
      PARTNER_STORAGE__clientId: 'my-identity',
      AzureWebJobsStorage: 'not a connection string',
    });
    expect(problems).toEqual([
      "AzureWebJobsStorage is not a storage connection string: expected 'AccountName=...;AccountKey=...' (or endpoints), or use the identity-based AzureWebJobsStorage__... settings",
      "PARTNER_STORAGE__clientId is 'my-identity': expected the client ID (a GUID) of a user-assigned managed identity",
    ]);
  });

  it('lists source hosts in lower case', () => {
    expect(parseSettings({ ...minimal, EXPORT_SOURCE_HOSTS: '.Blob.Core.Windows.Net, 127.0.0.1' }).sourceHosts).toEqual([
      '.blob.core.windows.net',
      '127.0.0.1',
    ]);
  });

  describe('setting names are case-insensitive, as in the Functions host', () => {
    const identity = { EXPORT_CURRENCIES: 'EUR', AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    it.each([
      ['a lower-case plain setting', { ...minimal, partner_container: 'other-exports' }, { partnerContainer: 'other-exports' }],
      ['an upper-case plain setting', { ...minimal, EXPORT_ATTRIBUTE_SET: undefined, export_attribute_set: 'basic' }, { attributeSet: 'basic' }],
      [
        '__BlobServiceUri',
        { ...identity, PARTNER_STORAGE__BlobServiceUri: 'https://p.blob.core.windows.net' },
        { partnerStorage: { kind: 'identity', blobServiceUri: 'https://p.blob.core.windows.net' } },
      ],
      [
        '__AccountName',
        { ...identity, AzureWebJobsStorage: undefined, AzureWebJobsStorage__AccountName: 'appstore', PARTNER_STORAGE: minimal.PARTNER_STORAGE },
        {
          appStorage: {
            kind: 'identity',
            queueServiceUri: 'https://appstore.queue.core.windows.net',
            tableServiceUri: 'https://appstore.table.core.windows.net',
          },
        },
      ],
      [
        'the connection name itself',
        { ...identity, partner_storage: minimal.PARTNER_STORAGE },
        { partnerStorage: { kind: 'connectionString', connectionString: minimal.PARTNER_STORAGE } },
      ],
      ['two spellings with the same value', { ...minimal, POLL_QUEUE: 'my-polls', poll_queue: 'my-polls' }, { pollQueue: 'my-polls' }],
      ['a blank spelling beside a set one', { ...minimal, POLL_QUEUE: 'my-polls', Poll_Queue: '  ' }, { pollQueue: 'my-polls' }],
    ] as const)('reads %s', (_case, env, expected) => {
      expect(parseSettings(env)).toMatchObject(expected);
    });

    it.each([
      [
        'a plain setting',
        { ...minimal, POLL_QUEUE: 'one-queue', poll_queue: 'other-queue' },
        'POLL_QUEUE is set more than once with different values (POLL_QUEUE, poll_queue)',
      ],
      [
        'an identity setting',
        {
          ...minimal,
          PARTNER_STORAGE: '',
          PARTNER_STORAGE__blobServiceUri: 'https://a.blob.core.windows.net',
          PARTNER_STORAGE__BLOBSERVICEURI: 'https://b.blob.core.windows.net',
        },
        'PARTNER_STORAGE__blobServiceUri is set more than once with different values (PARTNER_STORAGE__blobServiceUri, PARTNER_STORAGE__BLOBSERVICEURI)',
      ],
    ] as const)('rejects two spellings of %s that disagree, naming both', (_case, env, expected) => {
      expect(problemsOf(env)).toEqual([
        `${expected}: setting names are case-insensitive, as in the Functions host; expected one of them, or the same value in each`,
      ]);
    });

    it('never echoes the values of a conflicting connection string (they carry the account key)', () => {
      const [problem] = problemsOf({
        ...minimal,
        AzureWebJobsStorage: 'AccountName=a;AccountKey=c2VjcmV0MQ==',
        azurewebjobsstorage: 'AccountName=a;AccountKey=c2VjcmV0Mg==',
      });
      expect(problem).toMatch(/^AzureWebJobsStorage is set more than once with different values \(AzureWebJobsStorage, azurewebjobsstorage\)/);
      expect(problem).not.toMatch(/c2VjcmV0/);
    });
  });

  describe('identity-based connections: precedence and identities as the host has them', () => {
    const base = { EXPORT_CURRENCIES: 'EUR', AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    const resourceId =
      '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-billing/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-billing';
    it.each([
      [
        '__accountName for the destination',
        { ...base, PARTNER_STORAGE__accountName: 'partnerdata' },
        { kind: 'identity', blobServiceUri: 'https://partnerdata.blob.core.windows.net' },
      ],
      [
        'the connection string over __accountName',
        { ...base, PARTNER_STORAGE: minimal.PARTNER_STORAGE, PARTNER_STORAGE__accountName: 'partnerdata' },
        { kind: 'connectionString', connectionString: minimal.PARTNER_STORAGE },
      ],
      [
        '__accountName with a __blobServiceUri of the same account',
        { ...base, PARTNER_STORAGE__accountName: 'partnerdata', PARTNER_STORAGE__blobServiceUri: 'https://PartnerData.blob.core.windows.net/' },
        {
          kind: 'identity',
          blobServiceUri: 'https://partnerdata.blob.core.windows.net',
        },
      ],
      [
        '__managedIdentityResourceId with __credential',
        {
          ...base,
          PARTNER_STORAGE__blobServiceUri: 'https://p.blob.core.windows.net',
          PARTNER_STORAGE__credential: 'managedidentity',
          PARTNER_STORAGE__managedIdentityResourceId: resourceId,
        },
        {
          kind: 'identity',
          blobServiceUri: 'https://p.blob.core.windows.net',
          credential: 'managedidentity',
          resourceId,
        },
      ],
      [
        '__managedIdentityResourceId without __credential',
        { ...base, PARTNER_STORAGE__blobServiceUri: 'https://p.blob.core.windows.net', partner_storage__managedidentityresourceid: resourceId },
        {
          kind: 'identity',
          blobServiceUri: 'https://p.blob.core.windows.net',
          resourceId,
        },
      ],
    ] as const)('takes %s', (_case, env, expected) => {
      expect(parseSettings(env).partnerStorage).toEqual(expected);
    });

    it.each([
      [
        'a malformed account name',
        { PARTNER_STORAGE__accountName: 'Partner_Data' },
        "PARTNER_STORAGE__accountName is 'Partner_Data': expected a storage account name of 3-24 lower-case letters and digits",
      ],
      [
        'a resource ID that is not a user-assigned identity',
        { PARTNER_STORAGE__blobServiceUri: 'https://p.blob.core.windows.net', PARTNER_STORAGE__managedIdentityResourceId: 'id-billing' },
        "PARTNER_STORAGE__managedIdentityResourceId is 'id-billing': expected the resource ID of a user-assigned managed identity, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
      ],
      [
        '__accountName with a __blobServiceUri of another account (the queue trigger and the host would disagree)',
        { PARTNER_STORAGE__accountName: 'partnerdata', PARTNER_STORAGE__blobServiceUri: 'https://elsewhere.blob.core.windows.net' },
        "PARTNER_STORAGE__accountName is 'partnerdata' but PARTNER_STORAGE__blobServiceUri is 'https://elsewhere.blob.core.windows.net', account 'elsewhere': the queue trigger would use the account name and the Functions host the URI; expected one of them, or a URI of account 'partnerdata'",
      ],
      [
        '__accountName with a __blobServiceUri that names no account',
        { PARTNER_STORAGE__accountName: 'partnerdata', PARTNER_STORAGE__blobServiceUri: 'https://files.contoso.example' },
        "PARTNER_STORAGE__accountName is 'partnerdata' but PARTNER_STORAGE__blobServiceUri is 'https://files.contoso.example', not a URI naming a storage account: the queue trigger would use the account name and the Functions host the URI; expected one of them, or a URI of account 'partnerdata'",
      ],
      [
        'a client ID and a resource ID at once',
        {
          PARTNER_STORAGE__blobServiceUri: 'https://p.blob.core.windows.net',
          PARTNER_STORAGE__clientId: '11111111-2222-3333-4444-555555555555',
          PARTNER_STORAGE__managedIdentityResourceId: resourceId,
        },
        'PARTNER_STORAGE__clientId and PARTNER_STORAGE__managedIdentityResourceId are both set: expected one of them, to name one user-assigned managed identity',
      ],
    ] as const)('rejects %s', (_case, env, expected) => {
      expect(problemsOf({ ...base, ...env })).toEqual([expected]);
    });

    it('names both settings and both accounts for the app account too, per service', () => {
      expect(
        problemsOf({
          ...minimal,
          AzureWebJobsStorage: '',
          AzureWebJobsStorage__accountName: 'appstore',
          AzureWebJobsStorage__queueServiceUri: 'https://appstore.queue.core.windows.net',
          AzureWebJobsStorage__tableServiceUri: 'http://127.0.0.1:10002/devstoreaccount1',
        }),
      ).toEqual([
        "AzureWebJobsStorage__accountName is 'appstore' but AzureWebJobsStorage__tableServiceUri is 'http://127.0.0.1:10002/devstoreaccount1', account 'devstoreaccount1': the queue trigger would use the account name and the Functions host the URI; expected one of them, or a URI of account 'appstore'",
      ]);
    });
  });

  it('never echoes a SAS or credentials written into a URL setting', () => {
    const problems = problemsOf({
      EXPORT_CURRENCIES: 'EUR',
      AzureWebJobsStorage__queueServiceUri: 'ftp://app.queue.core.windows.net/?sv=2024&sig=SECRETSIG',
      AzureWebJobsStorage__tableServiceUri: 'https://app.table.core.windows.net',
      PARTNER_STORAGE: 'UseDevelopmentStorage=true',
      GRAPH_BASE_URL: 'https://user:PASSWORD@graph.example/v1.0?sig=OTHERSIG',
    });

    expect(problems.some((problem) => problem.startsWith('AzureWebJobsStorage__queueServiceUri is '))).toBe(true);
    expect(problems.some((problem) => problem.startsWith('GRAPH_BASE_URL is '))).toBe(true);
    expect(problems.join('\n')).not.toMatch(/SECRETSIG|OTHERSIG|PASSWORD/);
  });

  it("allows Partner Center's documented certificate host by default, and reads WEBHOOK_CERTIFICATE_HOSTS", () => {
    expect(parseSettings(minimal).webhookCertificateHosts).toEqual(['3psostorageacct.blob.core.windows.net']);
    expect(parseSettings({ ...minimal, WEBHOOK_CERTIFICATE_HOSTS: ' 3PSOstorageacct.blob.core.windows.net , 127.0.0.1' }).webhookCertificateHosts).toEqual([
      '3psostorageacct.blob.core.windows.net',
      '127.0.0.1',
    ]);
    expect(problemsOf({ ...minimal, WEBHOOK_CERTIFICATE_HOSTS: 'https://3psostorageacct.blob.core.windows.net/cert' })).toEqual([
      "WEBHOOK_CERTIFICATE_HOSTS is 'https://3psostorageacct.blob.core.windows.net/cert': expected comma-separated host names (exact) or suffixes starting with a dot, such as '3psostorageacct.blob.core.windows.net'",
    ]);
  });
});
