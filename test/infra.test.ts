/**
 * Holds the deployment (azure.yaml, infra/, scripts/grant-graph-permission.sh) to the code.
 * `npm run infra` compiles infra/main.bicep with the Bicep CLI and runs this file against the
 * compiled ARM template, which INFRA_ARM_JSON names. test/support/arm.ts deploys that template
 * in memory, with the parameters azd passes from infra/main.parameters.json for an azd
 * environment, and the tests read what Azure would be asked to deploy:
 *
 *   1. The app settings are exactly the settings the app reads, taken from the code
 *      (parseSettings with a recording environment) plus a short list of settings read
 *      elsewhere. Values use the identity-based forms, unset azd variables give the app's
 *      defaults, and the app starts with them.
 *   2. Every role is the documented built-in role, given to the app's identity on the resource
 *      it is for.
 *   3. Everything the bindings name exists: the entry point, loaded with the deployed settings,
 *      binds its queue trigger and timer to settings the deployment sets.
 *   4. Packaging agrees with package.json, host.json and .funcignore, and the azure.yaml hook
 *      really stages a deployable folder.
 *   5. The alert queries match the log lines the app writes, and expect the currencies it exports.
 *   6. azd can provision again: no output is fed back in as a parameter, and a second provision
 *      deploys the same as the first.
 *   7. The Graph permission script is idempotent (run against a stand-in for the Azure CLI).
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return -- ARM resource properties are arbitrary JSON, read here by the paths the templates write. */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../package.json';
import type { Deps } from '../src/deps';
import { DEFAULTS, parseSettings, type Settings } from '../src/core/settings';
import { exportKeyString } from '../src/core/naming';
import { type Run } from '../src/core/run';
import { failRun } from '../src/steps/runSteps';
import { startExport } from '../src/functions/startExport';
import { logEvent, type LogLevel, type RunLogger } from '../src/runLog';
import { consoleTelemetry } from '../src/telemetry';
import { aBilledRun, aRun } from './support/runs';
import { azdParameters, deploy, functionsCalled, resolveRuntimeRefs, runtimeRef, type DeployedResource, type Deployment, type Template } from './support/arm';

const armJsonPath = process.env.INFRA_ARM_JSON;
if (!armJsonPath) throw new Error('INFRA_ARM_JSON is not set: run these tests with "npm run infra", which compiles infra/main.bicep first');

const root = resolve(__dirname, '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'pbe-infra-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Deploying the compiled template
// ---------------------------------------------------------------------------------------------

const template = JSON.parse(readFileSync(armJsonPath, 'utf8')) as Template;
const parametersFile = read('infra/main.parameters.json');

const SUBSCRIPTION_ID = '5a1b2c3d-0000-4000-8000-00000000a001';
const CONTEXT = {
  subscriptionId: SUBSCRIPTION_ID,
  tenantId: '7e9d8c7b-0000-4000-8000-00000000b001',
  deploymentName: 'billing-test-1700000000',
  location: 'westeurope',
};

/** The azd environment after `azd env new` and the README's two `azd env set` (Deploy, step 1). */
const AZD_ENV: Readonly<Record<string, string>> = {
  AZURE_ENV_NAME: 'billing-test',
  AZURE_LOCATION: 'westeurope',
  AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID,
  EXPORT_CURRENCIES: 'EUR,USD',
  ALERT_EMAIL_ADDRESS: 'billing-ops@example.com',
};

/** A valid value, other than the app's default, for each app setting the azd environment can set. */
const TRACED_SETTINGS: Readonly<Record<keyof typeof DEFAULTS | 'EXPORT_CURRENCIES', string>> = {
  GRAPH_BASE_URL: 'https://graph.microsoft.com/beta',
  PARTNER_CONTAINER: 'partner-usage',
  EXPORT_SCHEDULE: '0 15 7 4 * *',
  EXPORT_CURRENCIES: 'EUR,USD,GBP',
  EXPORT_KINDS: 'unbilled-usage,unbilled-reconciliation',
  BILLED_EXPORT_KINDS: 'billed-reconciliation',
  EXPORT_BILLING_PERIOD: 'current',
  EXPORT_ATTRIBUTE_SET: 'basic',
  POLL_QUEUE: 'traced-poll-queue',
  POLL_INITIAL_DELAY_SECONDS: '30',
  POLL_MAX_DELAY_SECONDS: '900',
  EXPORT_DEADLINE_SECONDS: '7200',
  EXPORT_SOURCE_HOSTS: '.blob.core.windows.net,exports.example.com',
  OUTPUT_FORMATS: 'raw',
};

/** An existing destination account in another resource group and subscription (README, Parameters). */
const EXISTING_DESTINATION = {
  DESTINATION_STORAGE_ACCOUNT_NAME: 'stpartnerexports',
  DESTINATION_STORAGE_RESOURCE_GROUP: 'rg-partner-data',
  DESTINATION_STORAGE_SUBSCRIPTION_ID: '5a1b2c3d-0000-4000-8000-00000000a002',
};

/** What `azd provision` deploys for an azd environment. */
function provision(env: Readonly<Record<string, string>>): Deployment {
  return deploy(template, azdParameters(parametersFile, env, template), CONTEXT);
}

function resourcesOf(deployment: Deployment, type: string): DeployedResource[] {
  return deployment.resources.filter((resource) => resource.type.toLowerCase() === type.toLowerCase());
}

function theOne(deployment: Deployment, type: string): DeployedResource {
  const found = resourcesOf(deployment, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, the deployment has ${found.length}`);
  return found[0]!;
}

const props = (resource: DeployedResource): Record<string, any> => (resource.body.properties ?? {}) as Record<string, any>;

/** The Function App's settings, wherever the template puts them (siteConfig or a config resource). */
function appSettingsOf(deployment: Deployment): Record<string, string> {
  const site = theOne(deployment, 'Microsoft.Web/sites');
  const settings: Record<string, string> = {};
  for (const { name, value } of (props(site).siteConfig?.appSettings ?? []) as Array<{ name: string; value: string }>) settings[name] = value;
  for (const config of resourcesOf(deployment, 'Microsoft.Web/sites/config').filter((r) => r.name === `${site.name}/appsettings`)) {
    for (const [name, value] of Object.entries(props(config))) {
      if (name in settings) throw new Error(`app setting ${name} is set twice`);
      settings[name] = value as string;
    }
  }
  return settings;
}

/** The parts of a deployment the tests name. */
function parts(deployment: Deployment) {
  const site = theOne(deployment, 'Microsoft.Web/sites');
  const identity = theOne(deployment, 'Microsoft.ManagedIdentity/userAssignedIdentities');
  const accounts = resourcesOf(deployment, 'Microsoft.Storage/storageAccounts');
  const deploymentStorage = props(site).functionAppConfig?.deployment?.storage?.value as string;
  const appStorage = accounts.find((account) => deploymentStorage?.startsWith(runtimeRef(account.id, 'primaryEndpoints', 'blob')));
  if (!appStorage) throw new Error("no storage account holds the Function App's deployment package");
  return {
    site,
    identity,
    appStorage,
    /** The destination accounts this deployment creates: none, when it uses an existing one. */
    newDestinations: accounts.filter((account) => account !== appStorage),
    plan: theOne(deployment, 'Microsoft.Web/serverfarms'),
    workspace: theOne(deployment, 'Microsoft.OperationalInsights/workspaces'),
    applicationInsights: theOne(deployment, 'Microsoft.Insights/components'),
    settings: appSettingsOf(deployment),
  };
}

const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
const PRINCIPAL_ID = '66666666-7777-4888-9999-000000000000';

/** What Azure fills in at deployment time, for the app to start with. */
function standIn(resourceId: string, path: string): string {
  const type = /\/providers\/([^/]+\/[^/]+)\/[^/]+$/.exec(resourceId)?.[1]?.toLowerCase();
  const name = resourceId.split('/').pop()!;
  const value = (
    {
      'microsoft.managedidentity/userassignedidentities|clientId': CLIENT_ID,
      'microsoft.managedidentity/userassignedidentities|principalId': PRINCIPAL_ID,
      'microsoft.storage/storageaccounts|primaryEndpoints.blob': `https://${name}.blob.core.windows.net/`,
      'microsoft.storage/storageaccounts|primaryEndpoints.queue': `https://${name}.queue.core.windows.net/`,
      'microsoft.storage/storageaccounts|primaryEndpoints.table': `https://${name}.table.core.windows.net/`,
      'microsoft.insights/components|ConnectionString': 'InstrumentationKey=00000000-0000-4000-8000-0000000000c1;IngestionEndpoint=http://127.0.0.1:9/',
    } as Record<string, string>
  )[`${type}|${path}`];
  if (value === undefined) throw new Error(`no stand-in for ${path} of ${resourceId}: add one to standIn() in test/infra.test.ts`);
  return value;
}

const deployed = (settings: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(settings).map(([name, value]) => [name, resolveRuntimeRefs(value, standIn)]));

// ---------------------------------------------------------------------------------------------
// 1. App settings: what the app reads, from the code
// ---------------------------------------------------------------------------------------------

/** A complete, valid, connection-string-free environment, as the deployment sets it. */
const IDENTITY_BASED_ENVIRONMENT: Readonly<Record<string, string>> = {
  AzureWebJobsStorage__credential: 'managedidentity',
  AzureWebJobsStorage__clientId: CLIENT_ID,
  AzureWebJobsStorage__queueServiceUri: 'https://stfunc.queue.core.windows.net/',
  AzureWebJobsStorage__tableServiceUri: 'https://stfunc.table.core.windows.net/',
  PARTNER_STORAGE__credential: 'managedidentity',
  PARTNER_STORAGE__clientId: CLIENT_ID,
  PARTNER_STORAGE__blobServiceUri: 'https://stbill.blob.core.windows.net/',
  EXPORT_CURRENCIES: 'EUR,USD',
};

/** Runs parseSettings on a Proxy that records every name it reads: the names the app supports. */
function settingsTheAppReads(): Set<string> {
  const names = new Set<string>();
  const environment = new Proxy<Record<string, string | undefined>>(
    {},
    {
      get(_target, name) {
        if (typeof name !== 'string') return undefined;
        names.add(name);
        return IDENTITY_BASED_ENVIRONMENT[name];
      },
    },
  );
  parseSettings(environment);
  return names;
}

/**
 * Names the app supports that the deployment deliberately does not set. Each is an alternative
 * form of a setting the deployment sets in its identity-based form.
 */
const ALTERNATIVES_NOT_SET: Readonly<Record<string, string>> = {
  AzureWebJobsStorage: 'connection string, which needs an account key; replaced by the __… identity settings',
  AzureWebJobsStorage__accountName: 'shorthand for the service URIs, which are set explicitly',
  PARTNER_STORAGE: 'connection string, which needs an account key; replaced by the __… identity settings',
  GRAPH_TOKEN_SCOPE: 'an override for a gateway with its own audience; the default (Microsoft Graph) is right for a deployment',
  PARTNER_STORAGE__accountName: 'shorthand for the blob service URI, which is set explicitly (it names an existing account too)',
  AzureWebJobsStorage__managedIdentityResourceId: 'the identity is named by its client id (__clientId), as the host and @azure/identity both take it',
  PARTNER_STORAGE__managedIdentityResourceId: 'the identity is named by its client id (__clientId)',
  WEBHOOK_CERTIFICATE_HOSTS: "the default, Partner Center's documented certificate host, is right for a deployment",
};

/**
 * Settings read by something other than parseSettings (some of them by parseSettings too, which
 * the union below allows).
 */
const READ_ELSEWHERE: Readonly<Record<string, string>> = {
  AZURE_CLIENT_ID: '@azure/identity: DefaultAzureCredential selects the user-assigned identity for the Graph token',
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'the Functions host sends its own telemetry (requests, host logs) there',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "the Functions host's Entra ID auth for that telemetry; the component has local auth disabled",
  AzureWebJobsStorage__blobServiceUri: 'the Functions host: timer leases, host locks and function keys (the app itself uses queue and table)',
};

/** Platform settings Flex Consumption does not accept: the runtime is in functionAppConfig. */
const NOT_ON_FLEX = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_TIME_ZONE',
  'TZ',
];

describe('the Function App settings', () => {
  const deployment = provision(AZD_ENV);
  const { settings, identity, appStorage, newDestinations, applicationInsights } = parts(deployment);

  it('are every setting the app reads and nothing else', () => {
    const appReads = settingsTheAppReads();
    for (const name of Object.keys(ALTERNATIVES_NOT_SET)) {
      expect(appReads, `parseSettings no longer reads ${name}: update ALTERNATIVES_NOT_SET in test/infra.test.ts`).toContain(name);
    }
    const expected = new Set([...appReads].filter((name) => !(name in ALTERNATIVES_NOT_SET)).concat(Object.keys(READ_ELSEWHERE)));
    const missing = [...expected].filter((name) => !(name in settings)).sort();
    const extra = Object.keys(settings)
      .filter((name) => !expected.has(name))
      .sort();
    expect({ missing, extra }, `app settings: missing ${missing.join(', ') || 'none'}; not read by the app ${extra.join(', ') || 'none'}`).toEqual({
      missing: [],
      extra: [],
    });
  });

  it('leave out connection strings and the settings Flex Consumption rejects', () => {
    for (const name of [...Object.keys(ALTERNATIVES_NOT_SET), ...NOT_ON_FLEX]) expect(settings, `${name} must not be set`).not.toHaveProperty(name);
  });

  it('use the identity-based forms, with the user-assigned identity the app runs as', () => {
    expect(newDestinations).toHaveLength(1);
    const clientId = runtimeRef(identity.id, 'clientId');
    expect(settings).toMatchObject({
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: clientId,
      AzureWebJobsStorage__blobServiceUri: runtimeRef(appStorage.id, 'primaryEndpoints', 'blob'),
      AzureWebJobsStorage__queueServiceUri: runtimeRef(appStorage.id, 'primaryEndpoints', 'queue'),
      AzureWebJobsStorage__tableServiceUri: runtimeRef(appStorage.id, 'primaryEndpoints', 'table'),
      PARTNER_STORAGE__credential: 'managedidentity',
      PARTNER_STORAGE__clientId: clientId,
      PARTNER_STORAGE__blobServiceUri: runtimeRef(newDestinations[0]!.id, 'primaryEndpoints', 'blob'),
      AZURE_CLIENT_ID: clientId,
      APPLICATIONINSIGHTS_CONNECTION_STRING: runtimeRef(applicationInsights.id, 'ConnectionString'),
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `ClientId=${clientId};Authorization=AAD`,
    });
    const site = parts(deployment).site;
    expect(site.body.identity).toEqual({ type: 'UserAssigned', userAssignedIdentities: { [identity.id]: {} } });
  });

  it("are the app's defaults when the azd environment does not set them", () => {
    for (const [name, appDefault] of Object.entries(DEFAULTS)) expect(settings[name], name).toBe(appDefault);
    expect(settings.EXPORT_CURRENCIES).toBe(AZD_ENV.EXPORT_CURRENCIES);
  });

  it('are the azd environment variables of the same name when it sets them, and nothing else changes', () => {
    for (const [name, value] of Object.entries(TRACED_SETTINGS))
      expect(value, `${name}: pick a value other than the default`).not.toBe(DEFAULTS[name as keyof typeof DEFAULTS]);
    const traced = parts(provision({ ...AZD_ENV, ...TRACED_SETTINGS })).settings;
    const changed = Object.keys(traced)
      .filter((name) => traced[name] !== settings[name])
      .sort();
    expect(changed).toEqual(Object.keys(TRACED_SETTINGS).sort());
    for (const [name, value] of Object.entries(TRACED_SETTINGS)) expect(traced[name], name).toBe(value);
  });

  it('start the app: parseSettings accepts them and finds the identity, the accounts and the telemetry', () => {
    const parsed: Settings = parseSettings(deployed(settings));
    const destination = newDestinations[0]!.name;
    // The app uses queue and table in its own account (the host uses blob there too), and blob in the destination.
    expect(parsed.appStorage).toEqual({
      kind: 'identity',
      credential: 'managedidentity',
      clientId: CLIENT_ID,
      queueServiceUri: `https://${appStorage.name}.queue.core.windows.net`,
      tableServiceUri: `https://${appStorage.name}.table.core.windows.net`,
    });
    expect(parsed.partnerStorage).toEqual({
      kind: 'identity',
      credential: 'managedidentity',
      clientId: CLIENT_ID,
      blobServiceUri: `https://${destination}.blob.core.windows.net`,
    });
    expect(parsed.applicationInsights?.entraId).toEqual({ clientId: CLIENT_ID });
    expect(parsed.currencies).toEqual(['EUR', 'USD']);
    expect(parseSettings(deployed(parts(provision({ ...AZD_ENV, ...TRACED_SETTINGS })).settings)).currencies).toEqual(['EUR', 'USD', 'GBP']);
  });

  it('point PARTNER_STORAGE at an existing destination account, in its own resource group and subscription, and create none', () => {
    const existing = parts(provision({ ...AZD_ENV, ...EXISTING_DESTINATION }));
    const accountId = `/subscriptions/${EXISTING_DESTINATION.DESTINATION_STORAGE_SUBSCRIPTION_ID}/resourceGroups/${EXISTING_DESTINATION.DESTINATION_STORAGE_RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/${EXISTING_DESTINATION.DESTINATION_STORAGE_ACCOUNT_NAME}`;
    expect(existing.newDestinations).toEqual([]);
    expect(existing.settings.PARTNER_STORAGE__blobServiceUri).toBe(runtimeRef(accountId, 'primaryEndpoints', 'blob'));
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Roles
// ---------------------------------------------------------------------------------------------

/** The documented built-in role definition IDs (learn.microsoft.com, built-in roles). */
const DOCUMENTED_ROLE_IDS: Readonly<Record<string, string>> = {
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** Each role assignment as "<role> on <resource>", with the resources named by what they are. */
function roleAssignments(deployment: Deployment, resourceNames: Record<string, string>): string[] {
  const { identity } = parts(deployment);
  return resourcesOf(deployment, 'Microsoft.Authorization/roleAssignments').map((assignment) => {
    const { roleDefinitionId, principalId, principalType } = props(assignment);
    const scope = assignment.body.scope as string;
    const subscription = /^\/subscriptions\/([^/]+)/.exec(scope)?.[1];
    const guid = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/.exec(roleDefinitionId as string);
    const role = Object.entries(DOCUMENTED_ROLE_IDS).find(([, id]) => id === guid?.[2])?.[0] ?? `unknown role ${roleDefinitionId as string}`;
    expect(guid?.[1], `${role}: the role definition of the assignment's own subscription`).toBe(subscription);
    expect(principalId, `${role}: the app's identity`).toBe(runtimeRef(identity.id, 'principalId'));
    expect(principalType, role).toBe('ServicePrincipal');
    return `${role} on ${resourceNames[scope] ?? scope}`;
  });
}

describe('the role assignments', () => {
  it("give the app's identity the documented built-in roles on the resources they are for, and no more", () => {
    const deployment = provision(AZD_ENV);
    const { appStorage, newDestinations, applicationInsights } = parts(deployment);
    const names = {
      [appStorage.id]: 'the app storage account',
      [newDestinations[0]!.id]: 'the destination account',
      [applicationInsights.id]: 'Application Insights',
    };
    expect(roleAssignments(deployment, names).sort()).toEqual(
      [
        // The destination, where the exports land.
        'Storage Blob Data Contributor on the destination account',
        // The app's own account: the Functions host and deployment package, the poll queue, the run ledger.
        'Storage Blob Data Owner on the app storage account',
        'Storage Queue Data Contributor on the app storage account',
        'Storage Table Data Contributor on the app storage account',
        // Telemetry with Entra ID auth.
        'Monitoring Metrics Publisher on Application Insights',
      ].sort(),
    );
  });

  it('give the destination role on an existing account, in its own resource group and subscription', () => {
    const deployment = provision({ ...AZD_ENV, ...EXISTING_DESTINATION });
    const { appStorage, applicationInsights } = parts(deployment);
    const existing = `/subscriptions/${EXISTING_DESTINATION.DESTINATION_STORAGE_SUBSCRIPTION_ID}/resourceGroups/${EXISTING_DESTINATION.DESTINATION_STORAGE_RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/${EXISTING_DESTINATION.DESTINATION_STORAGE_ACCOUNT_NAME}`;
    const names = { [appStorage.id]: 'the app storage account', [existing]: 'the existing account', [applicationInsights.id]: 'Application Insights' };
    expect(roleAssignments(deployment, names)).toContain('Storage Blob Data Contributor on the existing account');
  });
});

describe('the storage accounts and monitoring', () => {
  const deployment = provision(AZD_ENV);
  const { appStorage, newDestinations, workspace, applicationInsights } = parts(deployment);

  it('take no keys and no anonymous reads, over HTTPS and TLS 1.2', () => {
    for (const account of resourcesOf(deployment, 'Microsoft.Storage/storageAccounts')) {
      expect(props(account), account.name).toMatchObject({
        allowSharedKeyAccess: false,
        allowBlobPublicAccess: false,
        minimumTlsVersion: 'TLS1_2',
        supportsHttpsTrafficOnly: true,
      });
    }
    for (const container of resourcesOf(deployment, 'Microsoft.Storage/storageAccounts/blobServices/containers'))
      expect(props(container).publicAccess, container.name).toBe('None');
    // Nothing reads a key or builds a SAS: no list*() call anywhere in the template.
    expect([...functionsCalled(template).keys()].filter((name) => /^list/i.test(name))).toEqual([]);
    expect(JSON.stringify(deployment.resources)).not.toMatch(/AccountKey=|SharedAccessSignature/);
  });

  it("let the destination accept copies from Microsoft's storage account", () => {
    const destination = props(newDestinations[0]!);
    // Unset means "from any storage account"; AAD or PrivateLink make every copy fail (403 CannotVerifyCopySource).
    expect(destination).not.toHaveProperty('allowedCopyScope');
    expect(destination).toMatchObject({ publicNetworkAccess: 'Enabled', networkAcls: { defaultAction: 'Allow' } });
  });

  it('keep what a re-run replaced or an operator deleted in the destination for a while (soft delete)', () => {
    const service = resourcesOf(deployment, 'Microsoft.Storage/storageAccounts/blobServices').find((s) => s.name === `${newDestinations[0]!.name}/default`)!;
    expect(props(service).deleteRetentionPolicy).toMatchObject({ enabled: true });
    expect(props(service).containerDeleteRetentionPolicy).toMatchObject({ enabled: true });
    expect(resourcesOf(deployment, 'Microsoft.Storage/storageAccounts/blobServices/containers').map((c) => c.name)).toContain(
      `${newDestinations[0]!.name}/default/${DEFAULTS.PARTNER_CONTAINER}`,
    );
    expect(appStorage.name).not.toBe(newDestinations[0]!.name);
  });

  it('accept telemetry only with Entra ID, into the workspace the alerts read', () => {
    expect(props(applicationInsights)).toMatchObject({ DisableLocalAuth: true, WorkspaceResourceId: workspace.id });
    expect(props(workspace).features).toMatchObject({ disableLocalAuth: true });
  });

  it('allow no user name and password publishing', () => {
    const policies = resourcesOf(deployment, 'Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    expect(policies.map((p) => [p.name.split('/').pop(), props(p).allow]).sort()).toEqual([
      ['ftp', false],
      ['scm', false],
    ]);
    expect(props(parts(deployment).site).httpsOnly).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Bindings
// ---------------------------------------------------------------------------------------------

/**
 * A copy of the project with the bundle built the way `npm run build` builds it (scripts/bundle.mjs
 * with no arguments), once.
 */
let builtProject: string | undefined;
function projectWithBundle(): string {
  if (!builtProject) {
    const project = join(scratch, 'built');
    mkdirSync(project, { recursive: true });
    for (const entry of ['src', 'node_modules', 'package.json']) symlinkSync(join(root, entry), join(project, entry));
    execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], { cwd: project, stdio: 'pipe' });
    builtProject = project;
  }
  return builtProject;
}

describe('the bindings of the entry point, loaded with the deployed settings', () => {
  const { settings } = parts(provision({ ...AZD_ENV, ...TRACED_SETTINGS }));
  let registrations: Array<{ name: string; bindings: Record<string, Record<string, unknown>> }>;

  beforeAll(() => {
    const bundle = join(scratch, 'bundle', basename(packageJson.main));
    mkdirSync(join(scratch, 'bundle'));
    // The entry point and the chunks bundle.mjs writes beside it, as the deploy package has them.
    const built = dirname(join(projectWithBundle(), packageJson.main));
    for (const file of readdirSync(built).filter((name) => name.endsWith('.js'))) copyFileSync(join(built, file), join(scratch, 'bundle', file));
    // The bundle is self-contained: load it from a folder with no node_modules, as Azure does.
    // Without the Application Insights settings: with them, the telemetry exporter would ask the
    // platform's managed identity endpoint for a token and call Azure; no binding reads them.
    const { APPLICATIONINSIGHTS_CONNECTION_STRING: _connection, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: _authentication, ...offline } = deployed(settings);
    const result = spawnSync(process.execPath, [join(root, 'scripts', 'load-like-worker.cjs'), bundle], {
      cwd: scratch,
      env: { PATH: process.env.PATH ?? '', ...offline },
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (result.status !== 0) throw new Error(`the entry point did not start with the deployed settings: ${result.stderr || result.error?.message}`);
    registrations = (JSON.parse(result.stdout) as { registrations: typeof registrations }).registrations;
  });

  const bindingsOf = (type: string): Array<Record<string, unknown> & { function: string }> =>
    registrations.flatMap((registration) =>
      Object.values(registration.bindings)
        .filter((binding) => binding.type === type)
        .map((binding) => ({ ...binding, function: registration.name })),
    );

  it('name only app settings that the deployment sets (%SETTING% expressions)', () => {
    const expressions = registrations.flatMap((registration) =>
      Object.values(registration.bindings).flatMap((binding) =>
        Object.values(binding).flatMap((value) => (typeof value === 'string' ? [...value.matchAll(/%([^%]+)%/g)].map((m) => m[1]!) : [])),
      ),
    );
    for (const name of expressions) expect(settings, `binding expression %${name}%`).toHaveProperty(name);
  });

  it('connect the queue trigger through identity-based settings the deployment sets, to the POLL_QUEUE queue', () => {
    const triggers = bindingsOf('queueTrigger');
    expect(triggers.map((t) => t.function)).toEqual(['pollExport']);
    for (const trigger of triggers) {
      const connection = trigger.connection as string;
      for (const suffix of ['__queueServiceUri', '__credential', '__clientId'])
        expect(settings, `${connection}${suffix}`).toHaveProperty(`${connection}${suffix}`);
      expect(settings, `${connection} (connection string)`).not.toHaveProperty(connection);
      expect(trigger.queueName).toBe(settings.POLL_QUEUE);
    }
  });

  it('fire the export timer on EXPORT_SCHEDULE', () => {
    const timers = bindingsOf('timerTrigger');
    expect(timers.find((t) => t.function === 'startExports')?.schedule).toBe(settings.EXPORT_SCHEDULE);
    expect(settings.EXPORT_SCHEDULE).toBe(TRACED_SETTINGS.EXPORT_SCHEDULE);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Packaging
// ---------------------------------------------------------------------------------------------

/** Whether a .funcignore (gitignore syntax: the subset it uses) excludes a path. */
function ignoredBy(ignoreFile: string, path: string): boolean {
  const toRegExp = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\/?/g, '\uE000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\uE000/g, '.*')}$`,
    );
  const segments = path.split('/');
  const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of ignoreFile.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    let pattern = negated ? line.slice(1) : line;
    const directoryOnly = pattern.endsWith('/');
    if (directoryOnly) pattern = pattern.slice(0, -1);
    const anchored = pattern.includes('/');
    const re = toRegExp(pattern.replace(/^\//, ''));
    const matches = prefixes.some((prefix, i) => {
      if (directoryOnly && i === prefixes.length - 1) return false;
      return re.test(anchored ? prefix : prefix.split('/').pop()!);
    });
    if (matches) ignored = !negated;
  }
  return ignored;
}

/** The azure.yaml service, read line by line (the file keeps a fixed, simple shape). */
function azureYamlService(): { name: string; fields: Map<string, string>; hook: (platform: 'posix' | 'windows') => string } {
  const text = read('azure.yaml');
  const service = /^services:\n {2}([\w-]+):\n([\s\S]*)$/m.exec(text);
  if (!service) throw new Error('azure.yaml: expected one service under "services:"');
  const fields = new Map([...service[2]!.matchAll(/^ {4}(\w+):[ \t]*(\S.*?)[ \t]*$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]));
  const hook = (platform: 'posix' | 'windows') => {
    const block = new RegExp(`^ {8}${platform}:\\n {10}shell: \\w+\\n {10}run: \\|\\n((?: {12}.*\\n|\\n)+)`, 'm').exec(service[2]!);
    if (!block) throw new Error(`azure.yaml: no ${platform} prepackage hook`);
    return block[1]!.replace(/^ {12}/gm, '');
  };
  return { name: service[1]!, fields, hook };
}

describe('packaging', () => {
  const service = azureYamlService();
  const { site, plan, appStorage, identity } = parts(provision(AZD_ENV));

  it('deploys the bundle that package.json main names, built by npm run build', () => {
    expect(packageJson.main).toBe('dist/main.js');
    expect(packageJson.scripts.build).toMatch(/node scripts\/bundle\.mjs$/);
    expect(existsSync(join(projectWithBundle(), packageJson.main)), `scripts/bundle.mjs writes ${packageJson.main}`).toBe(true);
  });

  it('keeps sources, tests, tools and node_modules out of a package, and the bundle in (.funcignore)', () => {
    const ignore = read('.funcignore');
    for (const path of [
      'node_modules/@azure/identity/package.json',
      'src/index.ts',
      'test/infra.test.ts',
      'cli/main.ts',
      'emulator/azurite.ts',
      'tsconfig.json',
      'local.settings.json',
      'vitest.infra.config.mts',
      'build/infra/main.json',
    ]) {
      expect(ignoredBy(ignore, path), `.funcignore should exclude ${path}`).toBe(true);
    }
    for (const path of [packageJson.main, `${packageJson.main}.map`, 'host.json', 'package.json']) {
      expect(ignoredBy(ignore, path), `.funcignore should keep ${path}`).toBe(false);
    }
  });

  it('has a host.json for Functions v4 that keeps the log lines the alerts read', () => {
    const host = JSON.parse(read('host.json')) as {
      version: string;
      extensionBundle: { id: string; version: string };
      logging: { logLevel: { default: string }; applicationInsights?: { samplingSettings?: { isEnabled?: boolean } } };
    };
    expect(host.version).toBe('2.0');
    expect(host.extensionBundle.id).toBe('Microsoft.Azure.Functions.ExtensionBundle');
    expect(host.extensionBundle.version).toMatch(/^\[4\./);
    // "run succeeded" is an information-level line, and sampling could drop any line.
    expect(['Trace', 'Debug', 'Information']).toContain(host.logging.logLevel.default);
    expect(host.logging.applicationInsights?.samplingSettings?.isEnabled).toBe(false);
  });

  it('is an azd Function App service whose app the deployment tags, on Flex Consumption and Node.js 22', () => {
    expect(service.fields.get('project')).toBe('.');
    expect(service.fields.get('language')).toBe('ts');
    expect(service.fields.get('host')).toBe('function');
    expect(service.fields.get('remoteBuild'), 'the bundle needs no remote build').not.toBe('true');
    // azd finds the app to deploy to by this tag, in the environment's resource group.
    expect(site.body.tags).toMatchObject({ 'azd-service-name': service.name, 'azd-env-name': AZD_ENV.AZURE_ENV_NAME });
    expect(site.id).toMatch(new RegExp(`^/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-${AZD_ENV.AZURE_ENV_NAME}/`));
    expect(site.body.kind).toBe('functionapp,linux');
    expect(props(site).serverFarmId).toBe(plan.id);
    expect(plan.body.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(props(plan).reserved).toBe(true);
    expect(props(site).functionAppConfig.runtime).toEqual({ name: 'node', version: '22' });
    expect(Number(/^>=(\d+)/.exec(packageJson.engines.node)?.[1])).toBeLessThanOrEqual(22);
  });

  it("takes the package from a container in the app storage account, with the app's identity", () => {
    const storage = props(site).functionAppConfig.deployment.storage as { type: string; value: string; authentication: Record<string, string> };
    const container = resourcesOf(provision(AZD_ENV), 'Microsoft.Storage/storageAccounts/blobServices/containers').find(
      (c) => storage.value === `${runtimeRef(appStorage.id, 'primaryEndpoints', 'blob')}${c.name.split('/').pop()}`,
    );
    expect(container?.name, 'the deployment container').toMatch(new RegExp(`^${appStorage.name}/default/`));
    expect(storage.type).toBe('blobContainer');
    expect(storage.authentication).toEqual({ type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id });
  });

  it('builds with npm ci and npm run build before packaging, on every platform', () => {
    for (const platform of ['posix', 'windows'] as const) {
      const hook = service.hook(platform);
      const commands = hook
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => /^(npm|node) /.test(line));
      expect(commands, `${platform} hook`).toEqual(['npm ci', 'npm run build', 'node scripts/stage-package.mjs']);
    }
  });

  it('stages host.json, a dependency-free package.json and the bundle into the folder azd zips', async () => {
    // The chunk list is the bundler's own (an ES module, so imported, not required).
    const { CHUNKS } = await import('../scripts/chunks.mjs');
    const project = join(scratch, 'project');
    mkdirSync(join(project, 'dist'), { recursive: true });
    writeFileSync(join(project, 'package.json'), read('package.json'));
    writeFileSync(join(project, 'host.json'), read('host.json'));
    const chunks = CHUNKS.map((chunk) => chunk.file);
    for (const file of ['main.js', 'main.js.map', 'main.js.LEGAL.txt', ...chunks]) writeFileSync(join(project, 'dist', file), `// ${file}\n`);
    writeFileSync(join(project, 'dist', 'unrelated.js'), '// not part of the bundle\n');

    execFileSync(process.execPath, [join(root, 'scripts', 'stage-package.mjs')], { cwd: project, stdio: 'pipe' });

    const staged = join(project, service.fields.get('dist')!);
    const files = (function list(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? list(join(dir, e.name)) : [relative(staged, join(dir, e.name))]));
    })(staged).sort();
    expect(files).toEqual(
      ['dist/main.js', 'dist/main.js.LEGAL.txt', 'dist/main.js.map', ...chunks.map((file) => `dist/${file}`), 'host.json', 'package.json'].sort(),
    );
    expect(chunks).toEqual(expect.arrayContaining(['clients.js', 'telemetry.js', 'parquet.js', 'dataCheckWorker.js', 'errors.js']));
    const stagedPackage = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(stagedPackage).toEqual({
      name: packageJson.name,
      version: packageJson.version,
      private: true,
      license: packageJson.license,
      main: packageJson.main,
    });
    expect(readFileSync(join(staged, 'host.json'), 'utf8')).toBe(read('host.json'));
    expect(existsSync(join(staged, 'node_modules'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Alerts
// ---------------------------------------------------------------------------------------------

/** A run that landed October 2026 in EUR. */
const landedRun = aRun({
  runId: '0b6a1c1e-0000-4000-8000-000000000001',
  state: 'succeeded',
  seq: 4,
  pollCount: 3,
  startedAt: '2026-11-03T06:00:00.000Z',
  updatedAt: '2026-11-03T06:20:00.000Z',
  finishedAt: '2026-11-03T06:20:00.000Z',
  bytesCopied: 1024,
  destinationContainer: 'billing-exports',
  destinationFolder: 'unbilled-usage/2026-10/EUR/full/etag/',
});

const landedBilledRun = aBilledRun({
  state: 'succeeded',
  seq: 4,
  pollCount: 3,
  startedAt: '2026-12-07T06:00:00.000Z',
  updatedAt: '2026-12-07T06:20:00.000Z',
  bytesCopied: 1024,
});

/** What a handler logs through its invocation context, by level, split the way the queries split it. */
function capture(): { logger: RunLogger; lines: Array<{ level: LogLevel; message: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: LogLevel; message: string; fields: Record<string, unknown> }> = [];
  const record = (level: LogLevel) => (line: unknown) => {
    // The queries' split: the message, then the JSON from the first " {".
    const text = String(line);
    const at = text.indexOf(' {');
    lines.push({ level, message: text.slice(0, at), fields: JSON.parse(text.slice(at + 1)) as Record<string, unknown> });
  };
  return { logger: { info: record('info'), warn: record('warn'), error: record('error') }, lines };
}

/** Just enough of the app's dependencies for one step, with the console telemetry. */
function stepDeps(overrides: Record<string, unknown>): Deps {
  return { now: () => new Date('2026-11-05T06:00:00Z'), telemetry: consoleTelemetry, ready: () => Promise.resolve(), ...overrides } as unknown as Deps;
}

type AlertRule = {
  displayName: string;
  severity: number;
  scopes: string[];
  overrideQueryTimeRange?: string;
  criteria: { allOf: Array<{ query: string; dimensions: Array<{ name: string }> }> };
  actions: { actionGroups: string[] };
};

function alertRules(deployment: Deployment): { runFailed?: AlertRule; missingMonth?: AlertRule; all: AlertRule[] } {
  const all = resourcesOf(deployment, 'Microsoft.Insights/scheduledQueryRules').map((rule) => props(rule) as AlertRule);
  return { runFailed: all.find((r) => /a run failed/.test(r.displayName)), missingMonth: all.find((r) => /has not landed/.test(r.displayName)), all };
}

describe('the alerts', () => {
  const deployment = provision(AZD_ENV);
  const { runFailed, missingMonth, all } = alertRules(deployment);
  const runFailedQuery = runFailed!.criteria.allOf[0]!.query;
  const missingMonthQuery = missingMonth!.criteria.allOf[0]!.query;

  it('split a log line the way the app writes it: message, one space, JSON', () => {
    const { logger, lines } = capture();
    logEvent(logger, 'error', 'run failed', { runId: 'r', note: 'nested {"x": 1}' });
    expect(lines).toEqual([{ level: 'error', message: 'run failed', fields: { runId: 'r', note: 'nested {"x": 1}' } }]);
  });

  it('fire on "run failed" at error level with the run\'s fields, one alert per run', async () => {
    expect(all).toHaveLength(2);
    expect(runFailedQuery).toContain('SeverityLevel == 3 and Message startswith "run failed {"');
    // Failing a run logs "run failed {json}" at error level to the invocation's log. (With a
    // connection string the same text goes to Application Insights at error severity:
    // test/telemetry.test.ts.)
    const { logger, lines } = capture();
    const saved: Run[] = [];
    const ledger = { saveRun: (run: Run, etag: string) => (saved.push(run), Promise.resolve({ run, etag: `${etag}+1` })) };
    await failRun({ run: { ...landedRun, state: 'polling' }, etag: 'e1' }, '5000', 'No data available', stepDeps({ ledger }), logger);
    expect(saved.map((run) => run.state)).toEqual(['failed']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', message: 'run failed' });
    for (const field of ['runId', 'kind', 'billingMonth', 'currency', 'errorCode', 'reason']) {
      expect(lines[0]!.fields, `the run failed line has ${field}`).toHaveProperty(field);
      expect(runFailedQuery).toContain(`Run.${field}`);
    }
    // A billed run's line names its kind and invoice, which the query reads too.
    const billed = capture();
    await failRun({ run: { ...landedBilledRun, state: 'polling' }, etag: 'e1' }, 'InvalidInvoiceId', 'unknown invoice', stepDeps({ ledger }), billed.logger);
    expect(billed.lines[0]).toMatchObject({ level: 'error', message: 'run failed', fields: { kind: 'billed-usage', invoiceId: 'G016907411' } });
    expect(runFailedQuery).toContain('Run.invoiceId');
    expect(runFailed!.criteria.allOf[0]!.dimensions.map((d) => d.name)).toEqual(['RunId', 'Kind', 'Subject', 'ErrorCode']);
    // Ends that are not failures log at information level, which the rule does not read.
    for (const state of ['noData', 'noNewData'] as const) {
      const ended = capture();
      consoleTelemetry.runChanged(ended.logger, { ...landedRun, state });
      expect(ended.lines).toEqual([expect.objectContaining({ level: 'info', message: `run ${state}` })]);
    }
  });

  it('find last month landed in the lines the app logs, by currency', async () => {
    expect(missingMonthQuery).toContain(
      'Message startswith "run succeeded {" or Message startswith "run noNewData {" or Message startswith "export not started {"',
    );
    expect(missingMonthQuery).toContain('tostring(Fields.kind)');
    expect(missingMonthQuery).toContain('tostring(Key[0])');
    expect(missingMonthQuery).toContain('join kind=leftanti LandedCurrencies on Kind, Currency');
    const succeeded = capture();
    consoleTelemetry.runChanged(succeeded.logger, landedRun);
    expect(succeeded.lines).toEqual([
      expect.objectContaining({ message: 'run succeeded', fields: expect.objectContaining({ billingMonth: '2026-10', currency: 'EUR' }) }),
    ]);
    expect(missingMonthQuery).toContain('tostring(Fields.billingMonth)');
    expect(missingMonthQuery).toContain('tostring(Fields.currency)');
    // A firing that finds the month landed logs "export not started" with the key and the
    // reason; the query reads month and currency from the key.
    const skipped = capture();
    const ledger = { latestForKey: () => Promise.resolve({ latest: { run: landedRun, etag: 'e4' }, keyEtag: 'k1' }) };
    const outcome = await startExport(
      { kind: 'unbilled-usage', currency: 'EUR', billingPeriod: 'last', attributeSet: 'full', trigger: 'timer' },
      stepDeps({ ledger, settings: { exportDeadlineSeconds: 21_600 } }),
      skipped.logger,
    );
    expect(outcome.kind).toBe('skipped');
    expect(skipped.lines).toEqual([
      { level: 'info', message: 'export not started', fields: { key: exportKeyString(landedRun), reason: expect.stringContaining('already landed') } },
    ]);
    expect(String(skipped.lines[0]!.fields.key).split('|').slice(1, 3)).toEqual(['2026-10', 'EUR']);
    expect(missingMonthQuery).toContain('tostring(Key[1])');
    expect(missingMonthQuery).toContain('tostring(Key[2])');
    expect(missingMonthQuery).toContain('contains "already landed"');
  });

  it('check the currencies the app exports, on the deadline day, with the defaults seeing a firing', () => {
    const expected = (query: string) => JSON.parse(/^let ExpectedCurrencies = dynamic\((.*)\);$/m.exec(query)?.[1] ?? 'null') as unknown;
    const deadline = (query: string) => Number(/^let DeadlineDay = (\d+);$/m.exec(query)?.[1]);
    expect(expected(missingMonthQuery)).toEqual(parseSettings(deployed(parts(deployment).settings)).currencies);
    // However EXPORT_CURRENCIES is written, the rule expects the codes the app exports.
    const messy = provision({ ...AZD_ENV, EXPORT_CURRENCIES: ' eur, USD,,gbp ', MISSING_EXPORT_DEADLINE_DAY: '9' });
    const messyQuery = alertRules(messy).missingMonth!.criteria.allOf[0]!.query;
    expect(expected(messyQuery)).toEqual(parseSettings(deployed(parts(messy).settings)).currencies);
    expect(expected(messyQuery)).toEqual(['EUR', 'USD', 'GBP']);
    expect(deadline(messyQuery)).toBe(9);
    expect(alertRules(messy).missingMonth!.criteria.allOf[0]!.dimensions.map((d) => d.name)).toEqual(['Kind', 'BillingMonth', 'Currency']);
    // Each unbilled kind the timer starts is expected, as the app reads EXPORT_KINDS.
    const kinds = (query: string) => JSON.parse(/^let ExpectedKinds = dynamic\((.*)\);$/m.exec(query)?.[1] ?? 'null') as unknown;
    expect(kinds(missingMonthQuery)).toEqual(['unbilled-usage']);
    const twoKinds = provision({ ...AZD_ENV, EXPORT_KINDS: ' unbilled-usage, Unbilled-Reconciliation,unbilled-usage' });
    expect(kinds(alertRules(twoKinds).missingMonth!.criteria.allOf[0]!.query)).toEqual(parseSettings(deployed(parts(twoKinds).settings)).exportKinds);
    expect(parseSettings(deployed(parts(twoKinds).settings)).exportKinds).toEqual(['unbilled-usage', 'unbilled-reconciliation']);
    // A log search alert reads at most two days: the query, and the rule's time range, agree.
    expect(missingMonthQuery).toContain('TimeGenerated > ago(2d)');
    expect(missingMonth!.overrideQueryTimeRange).toBe('P2D');
    // The check runs in the first 3 hours of the deadline day and sees the two days before it
    // from 03:00 on, so with the defaults the timer must fire then.
    expect(missingMonthQuery).toContain('now() - startofday(now()) < 3h');
    const defaultDeadline = deadline(missingMonthQuery);
    expect(defaultDeadline).toBe(template.parameters?.missingExportDeadlineDay?.defaultValue);
    const [, , hour, days] = DEFAULTS.EXPORT_SCHEDULE.split(' ');
    const [first, last] = days!.split('-').map(Number);
    const firingDays = Array.from({ length: last! - first! + 1 }, (_, i) => first! + i);
    expect(firingDays.some((day) => day === defaultDeadline - 1 || (day === defaultDeadline - 2 && Number(hour) >= 3))).toBe(true);
  });

  it("leave out the dead man's switch when the app exports the month to date", () => {
    const current = alertRules(provision({ ...AZD_ENV, EXPORT_BILLING_PERIOD: 'current' }));
    expect(current.runFailed).toBeDefined();
    expect(current.missingMonth).toBeUndefined();
  });

  it('query the workspace and e-mail the address azd asks for, through one action group', () => {
    const { workspace } = parts(deployment);
    const actionGroup = theOne(deployment, 'Microsoft.Insights/actionGroups');
    expect(props(actionGroup).emailReceivers).toEqual([expect.objectContaining({ emailAddress: AZD_ENV.ALERT_EMAIL_ADDRESS })]);
    for (const rule of all) {
      expect(rule.actions.actionGroups, rule.displayName).toEqual([actionGroup.id]);
      expect(rule.scopes, rule.displayName).toEqual([workspace.id]);
    }
    const { ALERT_EMAIL_ADDRESS: _email, ...withoutEmail } = AZD_ENV;
    expect(() => provision(withoutEmail)).toThrow('azd would prompt for parameter alertEmailAddress');
    const { EXPORT_CURRENCIES: _currencies, ...withoutCurrencies } = AZD_ENV;
    expect(() => provision(withoutCurrencies)).toThrow(/exportCurrencies/);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Provisioning again
// ---------------------------------------------------------------------------------------------

/** The variables main.parameters.json reads, by parameter, with their defaults. */
function parameterVariables(): Map<string, { variable: string; defaultValue?: string }> {
  const file = JSON.parse(parametersFile) as { parameters: Record<string, { value: unknown }> };
  const mappings = new Map<string, { variable: string; defaultValue?: string }>();
  for (const [name, { value }] of Object.entries(file.parameters)) {
    const match = typeof value === 'string' ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?\}$/.exec(value) : null;
    if (!match) throw new Error(`infra/main.parameters.json ${name}: expected "\${VARIABLE}" or "\${VARIABLE=default}", found ${JSON.stringify(value)}`);
    mappings.set(name, { variable: match[1]!, ...(match[2] === undefined ? {} : { defaultValue: match[2] }) });
  }
  return mappings;
}

/** azd writes every output into the environment after provisioning. */
function afterProvision(env: Readonly<Record<string, string>>, deployment: Deployment): Record<string, string> {
  return { ...env, ...Object.fromEntries(Object.entries(deployment.outputs).map(([name, value]) => [name, String(value)])) };
}

/** The variables azd sets itself; the outputs of the same name give back the value they came from. */
const AZD_OWN_VARIABLES = ['AZURE_LOCATION', 'AZURE_RESOURCE_GROUP'];

describe('azd provision, run again', () => {
  it("finds no output named like a variable that main.parameters.json reads, except azd's own", () => {
    const variables = new Set([...parameterVariables().values()].map(({ variable }) => variable));
    const fedBack = Object.keys(template.outputs ?? {}).filter((output) => variables.has(output) && !AZD_OWN_VARIABLES.includes(output));
    expect(fedBack, 'azd would pass these outputs back in as parameters on the next provision').toEqual([]);
  });

  it.each([
    ['a new destination account', AZD_ENV],
    ['an existing destination account', { ...AZD_ENV, ...EXISTING_DESTINATION }],
    ['every setting set', { ...AZD_ENV, ...TRACED_SETTINGS, AZURE_RESOURCE_GROUP: 'rg-billing-chosen' }],
  ])('deploys what the first provision deployed, with %s', (_, env) => {
    const first = provision(env);
    const second = provision(afterProvision(env, first));
    expect(second.resources).toEqual(first.resources);
    expect(second.outputs).toEqual(first.outputs);
  });

  it("would not, with an output that names the destination account as the user's (issue 13)", () => {
    // The check above is the one that matters; this shows it catches the old output name.
    const first = provision(AZD_ENV);
    const oldOutput = { DESTINATION_STORAGE_ACCOUNT_NAME: parts(first).newDestinations[0]!.name };
    const second = provision({ ...afterProvision(AZD_ENV, first), ...oldOutput });
    expect(parts(second).newDestinations, 'the account the first provision created drops out of the template').toEqual([]);
  });

  it("reads every template parameter from the environment, defaulting to the template's defaults", () => {
    const mappings = parameterVariables();
    expect([...mappings.keys()].sort()).toEqual(Object.keys(template.parameters ?? {}).sort());
    const variables = [...mappings.values()].map(({ variable }) => variable);
    expect(
      variables.filter((v, i) => variables.indexOf(v) !== i),
      'variables read twice',
    ).toEqual([]);
    for (const [name, { defaultValue }] of mappings) {
      const templateDefault = template.parameters?.[name]?.defaultValue;
      if (defaultValue !== undefined) expect(defaultValue, `${name}: the file's default is the template's`).toBe(String(templateDefault));
    }
    // An environment that sets nothing optional leaves every optional parameter at its default.
    const given = azdParameters(parametersFile, AZD_ENV, template);
    for (const [name, value] of Object.entries(given)) {
      const templateDefault = template.parameters?.[name]?.defaultValue;
      if (templateDefault !== undefined) expect(value, name).toEqual(templateDefault);
    }
  });

  it('takes the parameters the README names (Deploy, Parameters)', () => {
    const readme = read('README.md');
    const paragraph = /\*\*Parameters\.\*\*([\s\S]*?)\n\n/.exec(readme)?.[1] ?? '';
    const named = [...paragraph.matchAll(/`([A-Za-z][A-Za-z0-9_]*)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    const mappings = parameterVariables();
    const variables = new Set([...mappings.values()].map(({ variable }) => variable));
    for (const name of named) {
      expect(mappings.has(name) || variables.has(name), `README names ${name}, which infra/main.parameters.json does not take`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 7. The Graph permission script
// ---------------------------------------------------------------------------------------------

describe('scripts/grant-graph-permission.sh', () => {
  const identity = '6f1c9a3e-1111-4222-8333-944445555666';
  const graph = '9e8d7c6b-aaaa-4bbb-8ccc-ddddeeeeffff';
  const bin = join(scratch, 'bin');
  const log = join(scratch, 'az-calls.log');
  // A stand-in for the Azure CLI: answers the calls the script makes, and logs them.
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'az'),
    `#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$AZ_LOG"
case "$1 $2" in
  "account show") echo 'tenant-under-test'; exit 0 ;;
  "identity show") echo '${identity}'; exit 0 ;;
esac
method=''; url=''
while [[ $# -gt 0 ]]; do case "$1" in --method) method="$2"; shift 2 ;; --url) url="$2"; shift 2 ;; *) shift ;; esac; done
path="\${url#https://graph.microsoft.com/v1.0}"
case "$method $path" in
  "get /servicePrincipals/${identity}") echo '${identity}|id-billing-export-test|ManagedIdentity' ;;
  "get /servicePrincipals(appId='00000003-0000-0000-c000-000000000000')") echo '${graph}' ;;
  "get /servicePrincipals/${graph}?\\$select=appRoles") echo 'PartnerBilling.Read.All' ;;
  "get /servicePrincipals/${identity}/appRoleAssignments") echo "\${EXISTING_ASSIGNMENT:-none}|none" ;;
  "post /servicePrincipals/${identity}/appRoleAssignments")
    if [[ -n "\${DENY:-}" ]]; then echo 'Forbidden({"error":{"code":"Authorization_RequestDenied"}})' >&2; exit 1; fi
    echo 'new-assignment-id' ;;
  *) echo "unexpected az call: $method $url" >&2; exit 3 ;;
esac
`,
  );
  chmodSync(join(bin, 'az'), 0o755);

  function grant(args: string[], env: Record<string, string> = {}) {
    rmSync(log, { force: true });
    const result = spawnSync('bash', [join(root, 'scripts', 'grant-graph-permission.sh'), ...args], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, AZ_LOG: log, ...env },
      encoding: 'utf8',
    });
    const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
    return { ...result, calls, posts: calls.filter((call) => call.startsWith('rest --method post')) };
  }

  it('grants the app role when the identity does not have it', () => {
    const result = grant(['--principal-id', identity]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.posts).toHaveLength(1);
    const body = JSON.parse(/--body (\{.*\})/.exec(result.posts[0]!)![1]!) as Record<string, string>;
    expect(body).toEqual({ principalId: identity, resourceId: graph, appRoleId: '7c3e1994-38ff-4412-a99b-9369f6bb7706' });
    expect(result.stdout).toContain('Granted: PartnerBilling.Read.All');
  });

  it('changes nothing when the role is already assigned, or on a dry run', () => {
    const again = grant(['--principal-id', identity], { EXISTING_ASSIGNMENT: 'existing-assignment-id' });
    expect(again.status, again.stderr).toBe(0);
    expect(again.posts).toEqual([]);
    expect(again.stdout).toContain('Already granted');
    const dryRun = grant(['--principal-id', identity, '--dry-run']);
    expect(dryRun.status, dryRun.stderr).toBe(0);
    expect(dryRun.posts).toEqual([]);
    expect(dryRun.stdout).toContain('Dry run: would grant');
  });

  it('looks the identity up by resource group and name', () => {
    const result = grant(['--resource-group', 'rg-billing', '--identity-name', 'id-billing-export-test']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toContainEqual(expect.stringMatching(/^identity show --resource-group rg-billing --name id-billing-export-test/));
  });

  it('explains a missing directory role, and bad usage', () => {
    const denied = grant(['--principal-id', identity], { DENY: '1' });
    expect(denied.status).toBe(1);
    expect(denied.stderr).toContain('Privileged Role Administrator');
    const noIdentity = grant([]);
    expect(noIdentity.status).toBe(2);
    expect(noIdentity.stderr).toContain('--principal-id');
    const help = grant(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage:');
    expect(grant(['--principal-id', 'not-a-guid']).status).toBe(2);
  });
});
