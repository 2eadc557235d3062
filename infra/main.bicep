// partner-billing-export: everything the app needs in the partner's subscription, in the shape
// of the Azure Developer CLI Functions templates (azd up):
//   - a Flex Consumption (FC1) Function App on Node.js 22, running as a user-assigned identity;
//   - the app's own storage account (host, poll queue, run ledger), identity-based, no keys;
//   - the destination storage account and container, new or existing;
//   - the roles the identity needs (documented built-in role IDs, core/role-definitions.bicep);
//   - Log Analytics and Application Insights, Entra ID auth only;
//   - alerts: a run failed, and last month has not landed by a given day (dead man's switch).
// One step is not here. The identity's Microsoft Graph app role PartnerBilling.Read.All needs a
// directory administrator, so scripts/grant-graph-permission.sh grants it (see the outputs).

targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. It names the resource group and, hashed, every resource.')
param environmentName string

@minLength(1)
@description('Region for every new resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group to create or reuse. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

// ---------------------------------------------------------------------------------------------
// App settings. The defaults are the app's own (src/core/settings.ts DEFAULTS), and so are the
// types: every value is passed to the app as a string and validated by it at start-up, where a
// bad value stops the app with a message that names it. main.parameters.json maps each one to
// the azd environment variable with the same name.
// ---------------------------------------------------------------------------------------------

@minLength(3)
@description('EXPORT_CURRENCIES (required): comma-separated ISO 4217 codes to export, one export each, for example "EUR,USD".')
param exportCurrencies string

@description('EXPORT_SCHEDULE: when the timer starts the exports, as a six-field NCRONTAB expression in UTC. Default: 06:00 UTC on the 3rd to the 5th.')
param exportSchedule string = '0 0 6 3-5 * *'

@description('EXPORT_KINDS: comma-separated unbilled kinds the timer starts per currency: "unbilled-usage", "unbilled-reconciliation". The app refuses a billed kind here.')
param exportKinds string = 'unbilled-usage'

@description('BILLED_EXPORT_KINDS: comma-separated billed kinds an invoice-ready event (and a backfill by default) starts per invoice: "billed-usage", "billed-reconciliation".')
param billedExportKinds string = 'billed-usage,billed-reconciliation'

@allowed([
  'last'
  'current'
])
@description('EXPORT_BILLING_PERIOD: "last" exports the previous, closed month once; "current" exports the month to date, at most once a day.')
param exportBillingPeriod string = 'last'

@allowed([
  'full'
  'basic'
])
@description('EXPORT_ATTRIBUTE_SET: which usage attributes Graph exports, "full" or "basic".')
param exportAttributeSet string = 'full'

@description('GRAPH_BASE_URL: Microsoft Graph root, https.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('EXPORT_SOURCE_HOSTS: host names (exact) or suffixes (leading dot) allowed as the export manifest\'s rootDirectory.')
// The default names the host of Microsoft's billing storage, where Graph puts the exports (the
// copy source, not a resource deployed here), and must equal the app's own default. Graph's
// partner billing API is served from the global cloud only, so environment() does not apply.
#disable-next-line no-hardcoded-env-urls // Microsoft's billing storage, not a resource of this cloud
param exportSourceHosts string = '.blob.core.windows.net'

@allowed([
  'raw'
  'raw,parquet'
])
@description('OUTPUT_FORMATS: what lands beside the raw files, "raw" (only them) or "raw,parquet" (and a Parquet copy of each).')
param outputFormats string = 'raw,parquet'

@minLength(3)
@maxLength(63)
@description('PARTNER_CONTAINER: container in the destination account that the exports land in.')
param partnerContainer string = 'billing-exports'

@description('POLL_QUEUE: name of the poll queue in the app\'s storage account. The poison queue is <name>-poison, so at most 56 characters.')
param pollQueue string = 'billing-export-polls'

@description('POLL_INITIAL_DELAY_SECONDS: first poll delay, in seconds. It doubles on each poll.')
param pollInitialDelaySeconds string = '60'

@description('POLL_MAX_DELAY_SECONDS: longest poll delay, in seconds (at most 604800, seven days).')
param pollMaxDelaySeconds string = '600'

@description('EXPORT_DEADLINE_SECONDS: give up on an export that is still running after this many seconds.')
param exportDeadlineSeconds string = '21600'

// ---------------------------------------------------------------------------------------------
// Destination storage
// ---------------------------------------------------------------------------------------------

@description('Name of an existing storage account to land the exports in. Empty: create a new account. An existing account must allow copies from any storage account (Permitted scope for copy operations) and must not block the copy source in its firewall.')
param destinationStorageAccountName string = ''

@description('Resource group of the existing destination account. Empty: the app\'s resource group.')
param destinationStorageResourceGroupName string = ''

@description('Subscription of the existing destination account. Empty: this subscription.')
param destinationStorageSubscriptionId string = ''

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Redundancy of a new destination account.')
param destinationStorageSkuName string = 'Standard_LRS'

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

@minLength(3)
@description('E-mail address that receives the alerts (a run failed; last month has not landed).')
param alertEmailAddress string

@minValue(2)
@maxValue(28)
@description('Day of the month (UTC) by which last month must have landed. Early that day, the dead man\'s switch alerts for each currency with no sign of it. It looks at the two days before, so the timer must fire on one of them (the defaults: fires on the 3rd to the 5th, deadline 7th).')
param missingExportDeadlineDay int = 7

// ---------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------

@minValue(1)
@maxValue(1000)
@description('Most instances the Function App scales out to. One export a month needs few.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory of each Function App instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps the app\'s logs.')
param logRetentionInDays int = 30

// Optional names; empty means generated from the environment.
@description('Name of the Function App. Empty: generated.')
param functionAppName string = ''

@description('Name of the user-assigned managed identity. Empty: generated.')
param identityName string = ''

@description('Name of the app\'s own storage account. Empty: generated.')
param appStorageAccountName string = ''

@description('Name of the Log Analytics workspace. Empty: generated.')
param logAnalyticsName string = ''

@description('Name of the Application Insights component. Empty: generated.')
param applicationInsightsName string = ''

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

// The azd service in azure.yaml that deploys the code; the Function App carries it as a tag.
var serviceName = 'exporter'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'partner-billing-export'
}
var names = {
  resourceGroup: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  identity: !empty(identityName) ? identityName : 'id-billing-export-${resourceToken}'
  plan: 'plan-billing-export-${resourceToken}'
  functionApp: !empty(functionAppName) ? functionAppName : 'func-billing-export-${resourceToken}'
  appStorage: !empty(appStorageAccountName) ? appStorageAccountName : 'stfunc${resourceToken}'
  destinationStorage: !empty(destinationStorageAccountName) ? destinationStorageAccountName : 'stbill${resourceToken}'
  logAnalytics: !empty(logAnalyticsName) ? logAnalyticsName : 'log-billing-export-${resourceToken}'
  applicationInsights: !empty(applicationInsightsName) ? applicationInsightsName : 'appi-billing-export-${resourceToken}'
  actionGroup: 'ag-billing-export-${resourceToken}'
  runFailedAlert: 'alert-billing-export-run-failed-${resourceToken}'
  missingMonthAlert: 'alert-billing-export-month-missing-${resourceToken}'
}
var deploymentContainerName = 'deployment-package'
var useExistingDestination = !empty(destinationStorageAccountName)
var destinationSubscriptionId = !empty(destinationStorageSubscriptionId) ? destinationStorageSubscriptionId : subscription().subscriptionId
var destinationResourceGroupName = !empty(destinationStorageResourceGroupName) ? destinationStorageResourceGroupName : names.resourceGroup

// The configured currencies as the alert rule expects them: upper case, no blanks.
var expectedCurrencies = filter(map(split(exportCurrencies, ','), code => toUpper(trim(code))), code => !empty(code))
// The unbilled kinds the timer starts, as the alert rule expects them: lower case, no blanks, each once.
var expectedKinds = union(filter(map(split(exportKinds, ','), kind => toLower(trim(kind))), kind => !empty(kind)), [])

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module appStorage 'core/app-storage.bicep' = {
  name: 'app-storage'
  scope: rg
  params: {
    name: names.appStorage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module destinationStorage 'app/destination-storage.bicep' = {
  name: 'destination-storage'
  scope: resourceGroup(destinationSubscriptionId, destinationResourceGroupName)
  params: {
    useExistingAccount: useExistingDestination
    accountName: names.destinationStorage
    location: location
    tags: tags
    skuName: destinationStorageSkuName
    containerName: partnerContainer
    writerPrincipalId: identity.outputs.principalId
  }
  // Its default resource group is the one created above. No dependsOn is needed for that: the
  // module waits for the identity (writerPrincipalId), which is deployed into that group.
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appStorageAccountName: appStorage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    principalId: identity.outputs.principalId
  }
}

// The Function App's settings: every setting the app reads (README "Settings",
// src/core/settings.ts), in the identity-based forms, and nothing else. Flex Consumption takes
// the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are deliberately absent. test/infra.test.ts holds the compiled
// template's settings to what the app reads (npm run infra).
var appSettings = {
  // The app's own storage account, with the managed identity. The Functions host uses blob
  // (timer leases, host locks) and queue (the poll trigger); the app uses queue (re-polls) and
  // table (the run ledger).
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: appStorage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: appStorage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: appStorage.outputs.tableEndpoint
  // The destination account, with the same identity.
  PARTNER_STORAGE__credential: 'managedidentity'
  PARTNER_STORAGE__clientId: identity.outputs.clientId
  PARTNER_STORAGE__blobServiceUri: destinationStorage.outputs.blobEndpoint
  PARTNER_CONTAINER: partnerContainer
  // Microsoft Graph. The app's DefaultAzureCredential (@azure/identity) picks the user-assigned
  // identity by AZURE_CLIENT_ID.
  AZURE_CLIENT_ID: identity.outputs.clientId
  GRAPH_BASE_URL: graphBaseUrl
  // What to export, when, and from where.
  EXPORT_SCHEDULE: exportSchedule
  EXPORT_CURRENCIES: exportCurrencies
  EXPORT_KINDS: exportKinds
  BILLED_EXPORT_KINDS: billedExportKinds
  EXPORT_BILLING_PERIOD: exportBillingPeriod
  EXPORT_ATTRIBUTE_SET: exportAttributeSet
  EXPORT_SOURCE_HOSTS: exportSourceHosts
  OUTPUT_FORMATS: outputFormats
  // Polling the export operation.
  POLL_QUEUE: pollQueue
  POLL_INITIAL_DELAY_SECONDS: pollInitialDelaySeconds
  POLL_MAX_DELAY_SECONDS: pollMaxDelaySeconds
  EXPORT_DEADLINE_SECONDS: exportDeadlineSeconds
  // Telemetry with Entra ID auth; the component accepts nothing else.
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
}

module functionApp 'app/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    deploymentContainerUrl: appStorage.outputs.deploymentContainerUrl
    appSettings: appSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host starts as soon as the app exists; give its identity the roles first.
  dependsOn: [
    rbac
  ]
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    actionGroupName: names.actionGroup
    runFailedAlertName: names.runFailedAlert
    missingMonthAlertName: names.missingMonthAlert
    alertEmailAddress: alertEmailAddress
    expectedCurrencies: expectedCurrencies
    expectedKinds: expectedKinds
    deadlineDayOfMonth: missingExportDeadlineDay
    // The switch checks the closed month; a "current" (month to date) export has none.
    deployMissingMonthAlert: exportBillingPeriod == 'last'
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment: azd env get-values)
// ---------------------------------------------------------------------------------------------
// azd writes every output into the environment, and main.parameters.json reads parameters from
// the environment, so an output named like a variable that file reads is fed back in as that
// parameter by the next azd provision. So no output has such a name, except azd's own
// AZURE_LOCATION and AZURE_RESOURCE_GROUP, which come back as the value they were made from.
// (An output DESTINATION_STORAGE_ACCOUNT_NAME made a second provision take the account this
// template had created for an existing one, and the account dropped out of the template.)

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('For scripts/grant-graph-permission.sh: the identity that needs PartnerBilling.Read.All.')
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_NAME string = identity.outputs.name

output AZURE_APP_STORAGE_ACCOUNT_NAME string = appStorage.outputs.name
output AZURE_DESTINATION_STORAGE_ACCOUNT_NAME string = destinationStorage.outputs.name
output DESTINATION_CONTAINER string = partnerContainer
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsWorkspaceId
