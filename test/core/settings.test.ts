import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/errors';
import { DEFAULTS, parseSettings } from '../../src/core/settings';

const minimal = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  PARTNER_STORAGE: 'DefaultEndpointsProtocol=https;AccountName=partner;AccountKey=a2V5;EndpointSuffix=core.windows.net',
  EXPORT_CURRENCIES: 'EUR',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseSettings(env);
  } catch (error) {
    if (error instanceof SettingsError) return [...error.problems];
    throw error;
  }
  return [];
}

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
    expect(problems.join('\n')).toMatch(/AzureWebJobsStorage is missing: expected AzureWebJobsStorage \(a connection string\), or AzureWebJobsStorage__accountName/);
    expect(problems.join('\n')).toMatch(/PARTNER_STORAGE is missing: expected PARTNER_STORAGE \(a connection string\) or PARTNER_STORAGE__blobServiceUri/);
    expect(problems).toContain("EXPORT_CURRENCIES is 'EUR,EURO': expected comma-separated three-letter ISO 4217 codes such as 'EUR,USD' ('EURO' is not one)");
    expect(problems).toContain("EXPORT_BILLING_PERIOD is 'previous': expected 'current' or 'last'");
    expect(problems).toContain("EXPORT_ATTRIBUTE_SET is 'all': expected 'full' or 'basic'");
    expect(problems.join('\n')).toMatch(/EXPORT_SCHEDULE is '0 6 3 \* \*': expected a six-field NCRONTAB expression .* \(found 5 fields\)/);
    expect(problems.join('\n')).toMatch(/PARTNER_CONTAINER is 'Billing_Exports': expected a container name/);
    expect(problems.join('\n')).toMatch(/POLL_QUEUE is .*room is left for the '-poison' suffix/);
    expect(problems).toContain("POLL_INITIAL_DELAY_SECONDS is '0': expected a whole number of seconds, at least 1");
    expect(problems).toContain("EXPORT_DEADLINE_SECONDS is 'soon': expected a whole number of seconds, at least 1");
    expect(problems.join('\n')).toMatch(/EXPORT_SOURCE_HOSTS is 'https:\/\/bad\/': expected comma-separated host names/);
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
    expect(settings.partnerStorage).toEqual({ kind: 'identity', blobServiceUri: 'https://partner.blob.core.windows.net', clientId: '11111111-2222-3333-4444-555555555555' });
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
    expect(parseSettings({ ...minimal, EXPORT_SOURCE_HOSTS: '.Blob.Core.Windows.Net, 127.0.0.1' }).sourceHosts).toEqual(['.blob.core.windows.net', '127.0.0.1']);
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
