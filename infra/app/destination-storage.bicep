// The partner's destination: the storage account and container the exports land in
// (PARTNER_STORAGE, PARTNER_CONTAINER). It can be a new account or an existing one, which may
// be in another resource group or subscription. Either way, the Function App's identity gets
// Storage Blob Data Contributor on the account.

import { roleDefinitionIds } from '../core/role-definitions.bicep'

@description('Use the existing account named accountName (true), or create it (false).')
param useExistingAccount bool

@minLength(3)
@maxLength(24)
@description('Name of the destination storage account.')
param accountName string

@description('Region of a new account. Not used for an existing account.')
param location string

@description('Tags for a new account. Not used for an existing account.')
param tags object

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Redundancy of a new account. Not used for an existing account.')
param skuName string

@minLength(3)
@maxLength(63)
@description('Container the exports land in (PARTNER_CONTAINER). It is created here in a new account. In an existing account the app creates it, private, if it is missing.')
param containerName string

@description('Principal (object) ID of the identity that copies the exports in.')
param writerPrincipalId string

resource newAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = if (!useExistingAccount) {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // Entra ID only: no account keys, no anonymous reads. The app and the people who read the
    // exports use RBAC roles.
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // The exports are copied server side. This account fetches each file from Microsoft's
    // billing storage account, which is in another tenant, using the read SAS in the export
    // manifest. Two settings would break that:
    // - allowedCopyScope is deliberately left unset, which means "from any storage account".
    //   'AAD' (same tenant only) or 'PrivateLink' makes every copy fail with
    //   403 CannotVerifyCopySource.
    // - The firewall admits all networks. A network rule that does not admit the copy source
    //   fails the same way. So does one that blocks the app itself, which runs on Flex
    //   Consumption without a virtual network and so has no fixed outbound addresses.
    // Access is still controlled: Entra ID only (see above), HTTPS and TLS 1.2 only.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource newBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = if (!useExistingAccount) {
  parent: newAccount
  name: 'default'
  properties: {
    // A re-run overwrites the same paths, and an operator can delete a folder by mistake.
    // Soft delete keeps what was replaced or deleted for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource newContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!useExistingAccount) {
  parent: newBlobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

// The destination account, whether it was created above or is the partner's own. An existing
// container is left as it is; the deployment does not change its properties.
resource destination 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: accountName
}

// The role is granted on the account, not the container: the app creates the container if it
// is missing (README, PARTNER_CONTAINER), and that needs the account scope.
resource destinationBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(destination.id, writerPrincipalId, roleDefinitionIds.storageBlobDataContributor)
  scope: destination
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.storageBlobDataContributor)
    principalId: writerPrincipalId
    principalType: 'ServicePrincipal'
    description: 'partner-billing-export: copy the exported usage files into the destination container'
  }
  dependsOn: [
    newAccount
  ]
}

@description('Name of the destination account.')
output name string = destination.name

@description('Resource ID of the destination account.')
output id string = destination.id

@description('Blob endpoint of the destination account (PARTNER_STORAGE__blobServiceUri), with a trailing slash.')
output blobEndpoint string = destination.properties.primaryEndpoints.blob
