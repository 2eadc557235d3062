/**
 * Holds the deployment (azure.yaml, infra/*.bicep, scripts/grant-graph-permission.sh) to the
 * code. The Bicep compiler does not run here, so these tests read the templates as text. The
 * places they read are kept in fixed shapes for that reason: the `var appSettings = { ... }`
 * block in infra/main.bicep, the role IDs in infra/core/role-definitions.bicep, and one
 * role assignment resource per role.
 *
 *   1. The app settings are exactly the settings the app reads, taken from the code
 *      (parseSettings with a recording environment) plus a short list of settings read
 *      elsewhere. Values use the identity-based forms, and defaults are the app's.
 *   2. Every role is the documented built-in role, assigned on the resource it is for.
 *   3. Everything the bindings name exists: %SETTING% expressions, the queue trigger's
 *      connection and its queue name, and the timer's schedule.
 *   4. Packaging agrees with package.json, host.json and .funcignore, and the azure.yaml hook
 *      really stages a deployable folder.
 *   5. The alert queries match the log lines the app writes.
 *   6. The Graph permission script is idempotent (run against a stand-in for the Azure CLI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import packageJson from '../package.json';
import { DEFAULTS, parseSettings, type Settings } from '../src/core/settings';
import { EXPORT_KIND, exportKeyString } from '../src/core/naming';
import { decideStart, type Run } from '../src/core/run';
import { logEvent, type LogLevel, type RunLogger } from '../src/runLog';
import { consoleTelemetry } from '../src/telemetry';

const root = resolve(__dirname, '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'pbe-infra-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Reading the templates
// ---------------------------------------------------------------------------------------------

/** Bicep without comments: `//` and `/* *\/` outside strings ('...' and '''...'''). */
function stripBicepComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("'''", i)) {
      const end = text.indexOf("'''", i + 3);
      const stop = end < 0 ? text.length : end + 3;
      out += text.slice(i, stop);
      i = stop;
    } else if (text[i] === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== "'") j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += text[i];
      i++;
    }
  }
  return out;
}

const bicepFiles = (function list(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? list(join(dir, entry.name)) : entry.name.endsWith('.bicep') ? [join(dir, entry.name)] : [],
  );
})('infra');
const bicep = (path: string): string => stripBicepComments(read(path));
const mainBicep = bicep('infra/main.bicep');

/** The `var appSettings = { NAME: value ... }` block of infra/main.bicep, in order. */
function bicepAppSettings(): Map<string, string> {
  const opening = 'var appSettings = {';
  const start = mainBicep.indexOf(opening);
  if (start < 0) throw new Error(`infra/main.bicep has no "${opening}" block: the Function App settings must be built there`);
  const end = mainBicep.indexOf('\n}', start);
  const settings = new Map<string, string>();
  for (const line of mainBicep.slice(start + opening.length, end).split('\n')) {
    const text = line.trim();
    if (!text) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$/.exec(text);
    if (!match) throw new Error(`infra/main.bicep appSettings: cannot read "${text}"; keep one "NAME: value" per line`);
    if (settings.has(match[1]!)) throw new Error(`infra/main.bicep appSettings sets ${match[1]} twice`);
    settings.set(match[1]!, match[2]!);
  }
  return settings;
}

interface BicepParam {
  readonly type: string;
  readonly defaultValue?: string;
}

/** `param name type = default` declarations of a Bicep file; string defaults unquoted. */
function bicepParams(text: string): Map<string, BicepParam> {
  const params = new Map<string, BicepParam>();
  for (const match of text.matchAll(/^param[ \t]+(\w+)[ \t]+(\w+)(?:[ \t]*=[ \t]*(.+?))?[ \t]*$/gm)) {
    const raw = match[3];
    const defaultValue = raw === undefined ? undefined : /^'(.*)'$/.exec(raw)?.[1] ?? raw;
    params.set(match[1]!, { type: match[2]!, ...(defaultValue === undefined ? {} : { defaultValue }) });
  }
  return params;
}

/** main.parameters.json: parameter -> the azd environment variable and its default. */
function azdParameterMappings(): Map<string, { variable: string; defaultValue?: string }> {
  const file = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: unknown }> };
  const mappings = new Map<string, { variable: string; defaultValue?: string }>();
  for (const [name, { value }] of Object.entries(file.parameters)) {
    const match = typeof value === 'string' ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?\}$/.exec(value) : null;
    if (!match) throw new Error(`infra/main.parameters.json ${name}: expected "\${VARIABLE}" or "\${VARIABLE=default}", found ${JSON.stringify(value)}`);
    mappings.set(name, { variable: match[1]!, ...(match[2] === undefined ? {} : { defaultValue: match[2] }) });
  }
  return mappings;
}

// ---------------------------------------------------------------------------------------------
// 1. App settings: what the app reads, from the code
// ---------------------------------------------------------------------------------------------

const CLIENT_ID = '11111111-2222-3333-4444-555555555555';

/**
 * A complete, valid, connection-string-free environment, as the deployment sets it. POLL_QUEUE
 * and EXPORT_SCHEDULE have non-default values, so a binding's value can be traced to its setting.
 */
const IDENTITY_BASED_ENVIRONMENT: Readonly<Record<string, string>> = {
  AzureWebJobsStorage__credential: 'managedidentity',
  AzureWebJobsStorage__clientId: CLIENT_ID,
  AzureWebJobsStorage__queueServiceUri: 'https://stfunc.queue.core.windows.net/',
  AzureWebJobsStorage__tableServiceUri: 'https://stfunc.table.core.windows.net/',
  PARTNER_STORAGE__credential: 'managedidentity',
  PARTNER_STORAGE__clientId: CLIENT_ID,
  PARTNER_STORAGE__blobServiceUri: 'https://stbill.blob.core.windows.net/',
  EXPORT_CURRENCIES: 'EUR,USD',
  POLL_QUEUE: 'traced-poll-queue',
  EXPORT_SCHEDULE: '0 15 7 4 * *',
};

/** Runs parseSettings on a Proxy that records every name it reads: the names the app supports. */
function settingsTheAppReads(): { names: Set<string>; settings: Settings } {
  const names = new Set<string>();
  const environment = new Proxy({} as Record<string, string | undefined>, {
    get(_target, name) {
      if (typeof name !== 'string') return undefined;
      names.add(name);
      return IDENTITY_BASED_ENVIRONMENT[name];
    },
  });
  return { names, settings: parseSettings(environment) };
}

/**
 * Names the app supports that the deployment deliberately does not set. Each is an alternative
 * form of a setting the deployment sets in its identity-based form.
 */
const ALTERNATIVES_NOT_SET: Readonly<Record<string, string>> = {
  AzureWebJobsStorage: 'connection string, which needs an account key; replaced by the __… identity settings',
  AzureWebJobsStorage__accountName: 'shorthand for the service URIs, which are set explicitly',
  PARTNER_STORAGE: 'connection string, which needs an account key; replaced by the __… identity settings',
};

/**
 * Settings read by something other than parseSettings (some of them by parseSettings too, which
 * the union below allows).
 */
const READ_ELSEWHERE: Readonly<Record<string, string>> = {
  AZURE_CLIENT_ID: '@azure/identity: DefaultAzureCredential selects the user-assigned identity for the Graph token',
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'the Functions host sends its own telemetry (requests, host logs) there',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'the Functions host\'s Entra ID auth for that telemetry; the component has local auth disabled',
  AzureWebJobsStorage__blobServiceUri: 'the Functions host: timer leases, host locks and function keys (the app itself uses queue and table)',
};

/** Platform settings Flex Consumption does not accept: the runtime is in functionAppConfig. */
const NOT_ON_FLEX = ['FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION', 'WEBSITE_RUN_FROM_PACKAGE', 'WEBSITE_CONTENTSHARE', 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', 'WEBSITE_TIME_ZONE', 'TZ'];

describe('the Function App settings in infra/main.bicep', () => {
  const appSettings = bicepAppSettings();
  const { names: appReads } = settingsTheAppReads();

  it('are every setting the app reads and nothing else', () => {
    for (const name of Object.keys(ALTERNATIVES_NOT_SET)) {
      expect(appReads, `parseSettings no longer reads ${name}: update ALTERNATIVES_NOT_SET in test/infra.test.ts`).toContain(name);
    }
    const expected = new Set([...appReads].filter((name) => !(name in ALTERNATIVES_NOT_SET)).concat(Object.keys(READ_ELSEWHERE)));
    const missing = [...expected].filter((name) => !appSettings.has(name)).sort();
    const extra = [...appSettings.keys()].filter((name) => !expected.has(name)).sort();
    expect(
      { missing, extra },
      `infra/main.bicep appSettings: missing ${missing.join(', ') || 'none'}; not read by the app ${extra.join(', ') || 'none'}`,
    ).toEqual({ missing: [], extra: [] });
  });

  it('leave out connection strings and the settings Flex Consumption rejects', () => {
    for (const name of [...Object.keys(ALTERNATIVES_NOT_SET), ...NOT_ON_FLEX]) {
      expect(appSettings.has(name), `${name} must not be set`).toBe(false);
    }
  });

  it('use the identity-based forms, with the user-assigned identity', () => {
    const clientId = 'identity.outputs.clientId';
    expect(appSettings.get('AzureWebJobsStorage__credential')).toBe("'managedidentity'");
    expect(appSettings.get('AzureWebJobsStorage__clientId')).toBe(clientId);
    expect(appSettings.get('AzureWebJobsStorage__blobServiceUri')).toBe('appStorage.outputs.blobEndpoint');
    expect(appSettings.get('AzureWebJobsStorage__queueServiceUri')).toBe('appStorage.outputs.queueEndpoint');
    expect(appSettings.get('AzureWebJobsStorage__tableServiceUri')).toBe('appStorage.outputs.tableEndpoint');
    expect(appSettings.get('PARTNER_STORAGE__credential')).toBe("'managedidentity'");
    expect(appSettings.get('PARTNER_STORAGE__clientId')).toBe(clientId);
    expect(appSettings.get('PARTNER_STORAGE__blobServiceUri')).toBe('destinationStorage.outputs.blobEndpoint');
    expect(appSettings.get('AZURE_CLIENT_ID')).toBe(clientId);
    expect(appSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe("'ClientId=${identity.outputs.clientId};Authorization=AAD'");
    expect(appSettings.get('APPLICATIONINSIGHTS_CONNECTION_STRING')).toBe('monitoring.outputs.applicationInsightsConnectionString');
  });

  it('come from parameters whose defaults are the app\'s, mapped to azd variables of the same name', () => {
    const params = bicepParams(mainBicep);
    const mappings = azdParameterMappings();
    const fromParameters = [...appSettings].filter(([, value]) => params.has(value));
    // Every setting with an app default, and EXPORT_CURRENCIES, is a parameter.
    expect(fromParameters.map(([name]) => name).sort()).toEqual([...Object.keys(DEFAULTS), 'EXPORT_CURRENCIES'].sort());
    for (const [setting, param] of fromParameters) {
      const appDefault = (DEFAULTS as Readonly<Record<string, string>>)[setting];
      expect(params.get(param)?.type, `param ${param}: app settings are strings`).toBe('string');
      expect(params.get(param)?.defaultValue, `param ${param} (${setting}) default`).toBe(appDefault);
      expect(mappings.get(param), `infra/main.parameters.json ${param}`).toEqual({ variable: setting, ...(appDefault === undefined ? {} : { defaultValue: appDefault }) });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Roles
// ---------------------------------------------------------------------------------------------

/** The documented built-in role definition IDs (learn.microsoft.com, built-in roles). */
const DOCUMENTED_ROLE_IDS = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
};

interface RoleAssignment {
  readonly file: string;
  readonly role: string;
  /** Type and `name:` expression of the resource the scope symbol declares. */
  readonly scope: string;
  readonly principal: string;
  readonly principalType: string;
}

function roleAssignments(): RoleAssignment[] {
  const found: RoleAssignment[] = [];
  for (const file of bicepFiles) {
    const text = bicep(file);
    for (const match of text.matchAll(/^resource\s+(\w+)\s+'Microsoft\.Authorization\/roleAssignments@[^']+'\s*=\s*\{([\s\S]*?)\n\}/gm)) {
      const [, symbol, body] = match;
      const field = (pattern: RegExp) => pattern.exec(body!)?.[1] ?? `(none in ${symbol})`;
      const scopeSymbol = field(/^\s*scope:\s*(\w+)\s*$/m);
      const declaration = new RegExp(`^resource\\s+${scopeSymbol}\\s+'([^'@]+)@[^']+'\\s+(?:existing\\s+)?=\\s*(?:if\\s*\\([^)]*\\)\\s*)?\\{\\s*name:\\s*(\\S+)`, 'm').exec(text);
      found.push({
        file: relative('infra', file),
        role: field(/roleDefinitionId:\s*subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions',\s*roleDefinitionIds\.(\w+)\)/),
        scope: declaration ? `${declaration[1]} ${declaration[2]}` : `(scope ${scopeSymbol} not declared in ${file})`,
        principal: field(/principalId:\s*(\w+)/),
        principalType: field(/principalType:\s*'(\w+)'/),
      });
    }
  }
  return found;
}

/** A module's `name: value` parameter as main.bicep passes it. */
function moduleParam(moduleSymbol: string, param: string): string | undefined {
  const block = new RegExp(`^module\\s+${moduleSymbol}\\s+'[^']+'\\s*=\\s*\\{([\\s\\S]*?)\\n\\}`, 'm').exec(mainBicep)?.[1] ?? '';
  return new RegExp(`^[ \\t]*${param}:[ \\t]*(.+?)[ \\t]*$`, 'm').exec(block)?.[1];
}

describe('the role assignments', () => {
  it('use the documented built-in role definition IDs, from one place', () => {
    const text = bicep('infra/core/role-definitions.bicep');
    const block = /var roleDefinitionIds = \{([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
    const declared = Object.fromEntries([...block.matchAll(/^\s*(\w+):\s*'([0-9a-f-]{36})'\s*$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(declared).toEqual(DOCUMENTED_ROLE_IDS);
    for (const file of bicepFiles.filter((f) => !f.endsWith('role-definitions.bicep'))) {
      for (const id of Object.values(DOCUMENTED_ROLE_IDS)) expect(read(file), `${file} repeats role ID ${id}`).not.toContain(id);
    }
  });

  it('give each role to the Function App identity, on the resource it is for, and no more', () => {
    const byRole = roleAssignments()
      .map(({ file, role, scope }) => `${role} on ${scope} (${file})`)
      .sort();
    expect(byRole).toEqual(
      [
        // The destination, where the exports land.
        'storageBlobDataContributor on Microsoft.Storage/storageAccounts accountName (app/destination-storage.bicep)',
        // The app's own account: the Functions host, the poll queue and the run ledger.
        'storageBlobDataOwner on Microsoft.Storage/storageAccounts appStorageAccountName (app/rbac.bicep)',
        'storageQueueDataContributor on Microsoft.Storage/storageAccounts appStorageAccountName (app/rbac.bicep)',
        'storageTableDataContributor on Microsoft.Storage/storageAccounts appStorageAccountName (app/rbac.bicep)',
        // Telemetry with Entra ID auth.
        'monitoringMetricsPublisher on Microsoft.Insights/components applicationInsightsName (app/rbac.bicep)',
      ].sort(),
    );
    for (const assignment of roleAssignments()) {
      expect(assignment.principal, `${assignment.role}: principalId`).toBe(assignment.file === 'app/destination-storage.bicep' ? 'writerPrincipalId' : 'principalId');
      expect(assignment.principalType, `${assignment.role}: principalType`).toBe('ServicePrincipal');
    }
    // ...and main.bicep passes the right resources and the identity to those modules.
    expect(moduleParam('destinationStorage', 'accountName')).toBe('names.destinationStorage');
    expect(moduleParam('destinationStorage', 'writerPrincipalId')).toBe('identity.outputs.principalId');
    expect(moduleParam('rbac', 'appStorageAccountName')).toBe('appStorage.outputs.name');
    expect(moduleParam('rbac', 'applicationInsightsName')).toBe('monitoring.outputs.applicationInsightsName');
    expect(moduleParam('rbac', 'principalId')).toBe('identity.outputs.principalId');
    expect(moduleParam('functionApp', 'identityId')).toBe('identity.outputs.id');
  });
});

describe('the storage accounts and monitoring', () => {
  it('take no keys and no anonymous reads, over TLS 1.2', () => {
    for (const file of ['infra/core/app-storage.bicep', 'infra/app/destination-storage.bicep']) {
      const text = bicep(file);
      expect(text, file).toContain('allowSharedKeyAccess: false');
      expect(text, file).toContain('allowBlobPublicAccess: false');
      expect(text, file).toContain("minimumTlsVersion: 'TLS1_2'");
    }
    for (const file of bicepFiles) {
      expect(bicep(file), `${file} must not read or build keys`).not.toMatch(/listKeys\(|AccountKey=|SharedAccessSignature|allowSharedKeyAccess:\s*true/);
    }
  });

  it('let the destination accept copies from Microsoft\'s storage account, and say why', () => {
    const text = bicep('infra/app/destination-storage.bicep');
    expect(text, 'allowedCopyScope must stay unset (any storage account)').not.toContain('allowedCopyScope');
    expect(text).toMatch(/networkAcls:\s*\{\s*defaultAction:\s*'Allow'/);
    expect(read('infra/app/destination-storage.bicep')).toMatch(/allowedCopyScope[\s\S]*CannotVerifyCopySource/);
  });

  it('accept telemetry only with Entra ID', () => {
    const text = bicep('infra/core/monitoring.bicep');
    expect(text).toContain('DisableLocalAuth: true');
    expect(text).toContain('disableLocalAuth: true');
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Bindings
// ---------------------------------------------------------------------------------------------

describe('the bindings', () => {
  const appSettings = bicepAppSettings();
  const entryPoint = read('src/index.ts');
  const functionsDir = join(root, 'src', 'functions');
  const sources = [entryPoint, ...readdirSync(functionsDir).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(functionsDir, f), 'utf8'))];

  it('name only app settings that the templates set (%SETTING% expressions)', () => {
    const expressions = sources.flatMap((source) => [...source.matchAll(/['"`][^'"`\n]*%([A-Za-z_][A-Za-z0-9_]*)%[^'"`\n]*['"`]/g)].map((m) => m[1]!));
    for (const name of expressions) expect(appSettings.has(name), `binding expression %${name}% has no app setting`).toBe(true);
  });

  it('connect the queue trigger through identity-based settings the templates set', () => {
    const connections = [...entryPoint.matchAll(/connection:\s*'([^']+)'/g)].map((m) => m[1]!);
    expect(connections).toEqual(['AzureWebJobsStorage']);
    for (const connection of connections) {
      for (const suffix of ['__queueServiceUri', '__credential', '__clientId']) {
        expect(appSettings.has(`${connection}${suffix}`), `${connection}${suffix}`).toBe(true);
      }
      expect(appSettings.has(connection), `${connection} (connection string)`).toBe(false);
    }
  });

  it('take the queue name and the schedule from settings the templates set', () => {
    const { settings } = settingsTheAppReads();
    const bound = [...entryPoint.matchAll(/\b(queueName|schedule):\s*settings\.(\w+)/g)].map((m) => m[2] as keyof Settings);
    expect(bound.sort()).toEqual(['exportSchedule', 'pollQueue']);
    for (const field of bound) {
      const value = settings[field];
      const source = Object.entries(IDENTITY_BASED_ENVIRONMENT).find(([, v]) => v === value)?.[0];
      expect(source, `settings.${field} does not come from one app setting`).toBeDefined();
      expect(appSettings.has(source!), `${source} (settings.${field})`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Packaging
// ---------------------------------------------------------------------------------------------

/** Whether a .funcignore (gitignore syntax: the subset it uses) excludes a path. */
function ignoredBy(ignoreFile: string, path: string): boolean {
  const toRegExp = (glob: string) =>
    new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`);
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

  it('deploys the bundle that package.json main names, built by npm run build', () => {
    expect(packageJson.main).toBe('dist/main.js');
    expect(packageJson.scripts.build).toMatch(/node scripts\/bundle\.mjs/);
    expect(read('scripts/bundle.mjs')).toContain(`process.argv[2] ?? '${packageJson.main}'`);
  });

  it('keeps sources, tests, tools and node_modules out of a package, and the bundle in (.funcignore)', () => {
    const ignore = read('.funcignore');
    for (const path of ['node_modules/@azure/identity/package.json', 'src/index.ts', 'test/infra.test.ts', 'cli/main.ts', 'emulator/azurite.ts', 'tsconfig.json', 'local.settings.json']) {
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

  it('is an azd Function App service that the Bicep tags point to, on Node.js 22', () => {
    expect(service.fields.get('project')).toBe('.');
    expect(service.fields.get('language')).toBe('ts');
    expect(service.fields.get('host')).toBe('function');
    expect(service.fields.get('remoteBuild'), 'the bundle needs no remote build').not.toBe('true');
    expect(mainBicep).toContain(`var serviceName = '${service.name}'`);
    expect(bicep('infra/app/function-app.bicep')).toContain("'azd-service-name': serviceName");
    const functionApp = bicep('infra/app/function-app.bicep');
    expect(functionApp).toMatch(/var runtime = \{\s*name: 'node'\s*version: '22'\s*\}/);
    expect(functionApp).toMatch(/name: 'FC1'\s*tier: 'FlexConsumption'/);
    expect(Number(/^>=(\d+)/.exec(packageJson.engines.node)?.[1])).toBeLessThanOrEqual(22);
  });

  it('builds with npm ci and npm run build before packaging, on every platform', () => {
    for (const platform of ['posix', 'windows'] as const) {
      const hook = service.hook(platform);
      const commands = hook.split('\n').map((line) => line.trim()).filter((line) => /^(npm|node) /.test(line));
      expect(commands, `${platform} hook`).toEqual(['npm ci', 'npm run build', 'node scripts/stage-package.mjs']);
    }
  });

  it('stages host.json, a dependency-free package.json and the bundle into the folder azd zips', () => {
    const project = join(scratch, 'project');
    mkdirSync(join(project, 'dist'), { recursive: true });
    writeFileSync(join(project, 'package.json'), read('package.json'));
    writeFileSync(join(project, 'host.json'), read('host.json'));
    for (const file of ['main.js', 'main.js.map', 'main.js.LEGAL.txt', 'clients.js', 'telemetry.js', 'errors.js']) writeFileSync(join(project, 'dist', file), `// ${file}\n`);
    writeFileSync(join(project, 'dist', 'unrelated.js'), '// not part of the bundle\n');

    execFileSync(process.execPath, [join(root, 'scripts', 'stage-package.mjs')], { cwd: project, stdio: 'pipe' });

    const staged = join(project, service.fields.get('dist')!);
    const files = (function list(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? list(join(dir, e.name)) : [relative(staged, join(dir, e.name))]));
    })(staged).sort();
    expect(files).toEqual(['dist/clients.js', 'dist/errors.js', 'dist/main.js', 'dist/main.js.LEGAL.txt', 'dist/main.js.map', 'dist/telemetry.js', 'host.json', 'package.json']);
    const stagedPackage = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(stagedPackage).toEqual({ name: packageJson.name, version: packageJson.version, private: true, license: packageJson.license, main: packageJson.main });
    expect(readFileSync(join(staged, 'host.json'), 'utf8')).toBe(read('host.json'));
    expect(existsSync(join(staged, 'node_modules'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Alerts
// ---------------------------------------------------------------------------------------------

/** A run that landed October 2026 in EUR. */
const landedRun = {
  kind: EXPORT_KIND,
  billingMonth: '2026-10',
  currency: 'EUR',
  attributeSet: 'full',
  runId: '0b6a1c1e-0000-4000-8000-000000000001',
  billingPeriod: 'last',
  trigger: 'timer',
  state: 'succeeded',
  seq: 4,
  pollCount: 3,
  startedAt: '2026-11-03T06:00:00.000Z',
  updatedAt: '2026-11-03T06:20:00.000Z',
  finishedAt: '2026-11-03T06:20:00.000Z',
  bytesCopied: 1024,
  destination: 'billing-exports/unbilled-usage/2026-10/EUR/full/etag/',
} satisfies Partial<Run> as Run;

describe('the alerts', () => {
  const alerts = read('infra/app/alerts.bicep');
  const queries = [...alerts.matchAll(/'''\n([\s\S]*?)'''/g)].map((m) => m[1]!);
  const [runFailedQuery, missingMonthQuery] = queries;

  /** What a handler logs through its invocation context, by level. */
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

  it('split a log line the way the app writes it: message, one space, JSON', () => {
    const { logger, lines } = capture();
    logEvent(logger, 'error', 'run failed', { runId: 'r', note: 'nested {"x": 1}' });
    expect(lines).toEqual([{ level: 'error', message: 'run failed', fields: { runId: 'r', note: 'nested {"x": 1}' } }]);
  });

  it('fire on "run failed" at error level with the run\'s fields', () => {
    expect(queries).toHaveLength(2);
    expect(runFailedQuery).toContain('SeverityLevel == 3 and Message startswith "run failed {"');
    // A failed run is reported through the app's telemetry...
    expect(read('src/functions/runSteps.ts')).toMatch(/export async function failRun[\s\S]*?deps\.telemetry\.runChanged\(log, failed\)/);
    // ...which logs "run failed {json}" at error level to the invocation's log...
    const { logger, lines } = capture();
    consoleTelemetry.runChanged(logger, { ...landedRun, state: 'failed', errorCode: '5000', errorMessage: 'No data available' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', message: 'run failed' });
    for (const field of ['runId', 'billingMonth', 'currency', 'errorCode', 'reason']) {
      expect(lines[0]!.fields, `the run failed line has ${field}`).toHaveProperty(field);
      expect(runFailedQuery).toContain(`Run.${field}`);
    }
    // ...and, with a connection string, the same text to Application Insights at error severity.
    const telemetry = read('src/azureMonitor.ts');
    expect(telemetry).toContain('body: redactSecrets(`run ${run.state} ${JSON.stringify(dimensions)}`)');
    expect(telemetry).toMatch(/severityNumber: run\.state === 'failed' \? SeverityNumber\.ERROR/);
  });

  it('find last month landed in the lines the app logs, by currency', () => {
    expect(missingMonthQuery).toContain('Message startswith "run succeeded {" or Message startswith "export not started {"');
    expect(read('src/functions/landExport.ts')).toMatch(/state: 'succeeded'[\s\S]*?deps\.telemetry\.runChanged\(log, succeeded\)/);
    const { logger, lines } = capture();
    consoleTelemetry.runChanged(logger, landedRun);
    expect(lines).toEqual([expect.objectContaining({ message: 'run succeeded', fields: expect.objectContaining({ billingMonth: '2026-10', currency: 'EUR' }) })]);
    // "export not started" carries the key and the reason; the query reads month and currency from the key.
    expect(read('src/functions/startExport.ts')).toMatch(/logEvent\(log, 'info', 'export not started', \{ key: exportKeyString\(key\), reason: decision\.reason \}\)/);
    expect(exportKeyString(landedRun).split('|').slice(1, 3)).toEqual(['2026-10', 'EUR']);
    expect(missingMonthQuery).toContain('tostring(Key[1])');
    expect(missingMonthQuery).toContain('tostring(Key[2])');
    const decision = decideStart(landedRun, { billingPeriod: 'last', currency: 'EUR', attributeSet: 'full', trigger: 'timer' }, new Date('2026-11-05T06:00:00Z'), 21_600);
    expect(decision.kind).toBe('skip');
    expect(decision.kind === 'skip' && decision.reason).toContain('already landed');
    expect(missingMonthQuery).toContain('contains "already landed"');
  });

  it('check the configured currencies on the deadline day, with the defaults seeing a firing', () => {
    expect(missingMonthQuery).toContain('dynamic(__EXPECTED_CURRENCIES__)');
    expect(alerts).toContain("'__EXPECTED_CURRENCIES__', string(expectedCurrencies)");
    expect(alerts).toContain("'__DEADLINE_DAY__', string(deadlineDayOfMonth)");
    expect(moduleParam('alerts', 'expectedCurrencies')).toBe('expectedCurrencies');
    expect(mainBicep).toMatch(/var expectedCurrencies = filter\(map\(split\(exportCurrencies, ','\)/);
    // A log search alert reads at most two days: the query, and the rule's time range, agree.
    expect(missingMonthQuery).toContain('TimeGenerated > ago(2d)');
    expect(alerts).toContain("overrideQueryTimeRange: 'P2D'");
    // The check runs in the first 3 hours of the deadline day and sees the two days before it
    // from 03:00 on, so with the defaults the timer must fire then.
    expect(missingMonthQuery).toContain('now() - startofday(now()) < 3h');
    const deadline = Number(bicepParams(mainBicep).get('missingExportDeadlineDay')?.defaultValue);
    const [, , hour, days] = DEFAULTS.EXPORT_SCHEDULE.split(' ');
    const [first, last] = days!.split('-').map(Number);
    const firingDays = Array.from({ length: last! - first! + 1 }, (_, i) => first! + i);
    expect(firingDays.some((day) => day === deadline - 1 || (day === deadline - 2 && Number(hour) >= 3))).toBe(true);
  });

  it('go to an action group whose e-mail address is a parameter', () => {
    expect(bicepParams(mainBicep).get('alertEmailAddress')).toEqual({ type: 'string' });
    expect(azdParameterMappings().get('alertEmailAddress')).toEqual({ variable: 'ALERT_EMAIL_ADDRESS' });
    expect(alerts.match(/actionGroups: \[\s*actionGroup\.id\s*\]/g)).toHaveLength(2);
  });
});


// ---------------------------------------------------------------------------------------------
// 6. The Graph permission script
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
