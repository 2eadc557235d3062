// The Function App's user-assigned managed identity. A user-assigned identity, unlike a
// system-assigned one, exists before the app does. Its roles and its Microsoft Graph app role
// (granted separately by scripts/grant-graph-permission.sh) therefore outlive a re-created app.

@description('Name of the user-assigned managed identity.')
param name string

@description('Region of the identity.')
param location string

@description('Tags for the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource ID of the identity, for the Function App identity block.')
output id string = identity.id

@description('Name of the identity.')
output name string = identity.name

@description('Principal (object) ID: what role assignments and the Graph app role assignment name.')
output principalId string = identity.properties.principalId

@description('Client (application) ID: what the app and the Functions host select the identity by.')
output clientId string = identity.properties.clientId
