// Log Analytics and workspace-based Application Insights. Local (key) authentication is off on
// both, so telemetry is accepted only with an Entra ID token. The app sends one with its
// managed identity, using APPLICATIONINSIGHTS_AUTHENTICATION_STRING and the Monitoring Metrics
// Publisher role. The alert rules query the workspace (table AppTraces).

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Region of both resources.')
param location string

@description('Tags for both resources.')
param tags object

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps logs. The run ledger, not the logs, is the record of every run.')
param retentionInDays int

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

@description('Resource ID of the Log Analytics workspace (the alert rules\' scope).')
output logAnalyticsWorkspaceId string = logAnalytics.id

@description('Name of the Application Insights component.')
output applicationInsightsName string = applicationInsights.name

@description('Application Insights connection string. It is not a credential: with local auth disabled, ingestion also needs an Entra ID token.')
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
