// The built-in Azure roles this deployment assigns, by their documented IDs. Built-in role
// definition IDs are the same in every tenant, so they are constants. They live in one place so
// that every module uses the same values; test/infra.test.ts holds the deployed assignments to
// the documented IDs.
// Reference: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles

@export()
@description('Built-in role definition IDs (GUIDs), by role.')
var roleDefinitionIds = {
  // Storage Blob Data Contributor: read, write and delete blobs and containers. Given on the
  // destination account, where the app copies the exports and writes manifest.json.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Storage Blob Data Owner: what the Functions host needs on its own account when
  // AzureWebJobsStorage is identity-based (timer leases, host locks, the deployment package).
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Queue Data Contributor: the poll queue (trigger, delayed re-polls, <queue>-poison).
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: the run ledger (table BillingExportRuns).
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Monitoring Metrics Publisher: send telemetry to Application Insights with Entra ID auth,
  // which is the only way in once local (instrumentation key) auth is disabled.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}
