<#
.SYNOPSIS
Grants the Microsoft Graph application role PartnerBilling.Read.All to the Function App's
managed identity, in the partner tenant (Microsoft Graph PowerShell).

.DESCRIPTION
The app needs the role to start unbilled-usage exports. A managed identity has no "API
permissions" page in the portal, so the role is assigned directly, as an appRoleAssignment on
the identity's service principal.

The script is idempotent. It checks the identity's existing assignments first, and changes
nothing if the role is already there.

Run it as a directory administrator of the partner tenant: Privileged Role Administrator or
Global Administrator. It signs in with the Graph scopes Application.Read.All and
AppRoleAssignment.ReadWrite.All. It needs the module Microsoft.Graph.Applications.

.PARAMETER PrincipalId
The identity's principal (object) ID: the azd output MANAGED_IDENTITY_PRINCIPAL_ID.

.PARAMETER IdentityName
The identity's name (the azd output MANAGED_IDENTITY_NAME), looked up among the tenant's
managed identities. Use -PrincipalId if more than one has this name.

.PARAMETER TenantId
The partner tenant to sign in to. Default: the account's home tenant.

.EXAMPLE
./scripts/grant-graph-permission.ps1 -PrincipalId (azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID)

.EXAMPLE
./scripts/grant-graph-permission.ps1 -IdentityName id-billing-export-abc123 -WhatIf
#>
[CmdletBinding(SupportsShouldProcess, DefaultParameterSetName = 'ById')]
param(
    [Parameter(Mandatory, ParameterSetName = 'ById')]
    [ValidatePattern('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')]
    [string] $PrincipalId,

    [Parameter(Mandatory, ParameterSetName = 'ByName')]
    [ValidateNotNullOrEmpty()]
    [string] $IdentityName,

    [string] $TenantId
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$graphAppId = '00000003-0000-0000-c000-000000000000'   # Microsoft Graph
$appRoleId = '7c3e1994-38ff-4412-a99b-9369f6bb7706'    # PartnerBilling.Read.All (application)
$appRoleValue = 'PartnerBilling.Read.All'

if (-not (Get-Module -ListAvailable -Name Microsoft.Graph.Applications)) {
    throw 'The Microsoft Graph PowerShell module is missing: Install-Module Microsoft.Graph.Applications -Scope CurrentUser'
}
Import-Module Microsoft.Graph.Applications

$connect = @{ Scopes = @('Application.Read.All', 'AppRoleAssignment.ReadWrite.All'); NoWelcome = $true }
if ($TenantId) { $connect.TenantId = $TenantId }
Connect-MgGraph @connect
Write-Host "Tenant: $((Get-MgContext).TenantId) (the managed identity must be in the partner tenant)"

# 1. The identity's service principal.
if ($PSCmdlet.ParameterSetName -eq 'ByName') {
    $candidates = @(Get-MgServicePrincipal -Filter "displayName eq '$($IdentityName -replace "'", "''")' and servicePrincipalType eq 'ManagedIdentity'" -All)
    if ($candidates.Count -eq 0) { throw "No managed identity named '$IdentityName' in this tenant. A new identity can take a few minutes to appear." }
    if ($candidates.Count -gt 1) { throw "$($candidates.Count) managed identities are named '$IdentityName'; pass -PrincipalId instead." }
    $identity = $candidates[0]
}
else {
    $identity = Get-MgServicePrincipal -ServicePrincipalId $PrincipalId -ErrorAction SilentlyContinue
    if (-not $identity) { throw "No service principal with object ID '$PrincipalId' in this tenant. A new identity can take a few minutes to appear." }
}
Write-Host "Managed identity: $($identity.DisplayName) (object ID $($identity.Id), type $($identity.ServicePrincipalType))"

# 2. Microsoft Graph's service principal and the app role on it.
$graph = Get-MgServicePrincipal -Filter "appId eq '$graphAppId'"
$role = $graph.AppRoles | Where-Object { $_.Id -eq $appRoleId }
if (-not $role -or $role.Value -ne $appRoleValue) { throw "Microsoft Graph in this tenant has no app role $appRoleId ($appRoleValue)." }

# 3. Already assigned?
$existing = Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $identity.Id -All |
    Where-Object { $_.AppRoleId -eq $appRoleId -and $_.ResourceId -eq $graph.Id }
if ($existing) {
    Write-Host "Already granted: $($identity.DisplayName) has $appRoleValue on Microsoft Graph (assignment $($existing.Id)). Nothing to do."
    return
}

# 4. Grant.
if ($PSCmdlet.ShouldProcess("$($identity.DisplayName) ($($identity.Id))", "Grant $appRoleValue on Microsoft Graph")) {
    $assignment = New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $identity.Id `
        -PrincipalId $identity.Id -ResourceId $graph.Id -AppRoleId $appRoleId
    Write-Host "Granted: $appRoleValue on Microsoft Graph to $($identity.DisplayName), assignment $($assignment.Id)."
    Write-Host 'It can take a while to take effect. The identity''s Graph tokens are cached, so Graph can answer 401/403 for up to 24 hours. The next scheduled firing retries a month that failed.'
}
