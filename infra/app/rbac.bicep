// Roles for the Function App's identity on the app's own resources. The role on the
// destination account is in destination-storage.bicep, because that account can be in another
// resource group or subscription.

import { roleDefinitionIds } from '../core/role-definitions.bicep'

@description('Name of the app\'s own storage account (AzureWebJobsStorage).')
param appStorageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Principal (object) ID of the Function App\'s user-assigned identity.')
param principalId string

resource appStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: appStorageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The Functions host on identity-based AzureWebJobsStorage: timer leases, host locks, and
// reading the deployment package.
resource appStorageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, principalId, roleDefinitionIds.storageBlobDataOwner)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'partner-billing-export: Functions host storage and deployment package'
  }
}

// The poll queue: the queue trigger reads and deletes, the app sends delayed re-polls, and the
// host moves failing messages to <POLL_QUEUE>-poison. The app also creates the queues if they
// are missing.
resource appStorageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, principalId, roleDefinitionIds.storageQueueDataContributor)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'partner-billing-export: poll queue'
  }
}

// The run ledger (table BillingExportRuns), which the app creates if it is missing.
resource appStorageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, principalId, roleDefinitionIds.storageTableDataContributor)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'partner-billing-export: run ledger'
  }
}

// Telemetry with Entra ID auth (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource applicationInsightsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roleDefinitionIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'partner-billing-export: telemetry to Application Insights'
  }
}
