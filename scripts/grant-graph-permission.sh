#!/usr/bin/env bash
# Grants the Microsoft Graph application role PartnerBilling.Read.All to the Function App's
# managed identity, in the partner tenant. The app needs the role to start unbilled-usage
# exports. A managed identity has no "API permissions" page in the portal, so the role is
# assigned directly, as an appRoleAssignment on the identity's service principal
# (POST /servicePrincipals/{id}/appRoleAssignments).
#
# Idempotent: the script checks the identity's existing assignments first, and changes nothing
# if the role is already there. It uses only the Azure CLI ("az rest" calls Microsoft Graph
# with your "az login" token).
#
# Who can run it: a directory administrator of the partner tenant. Granting an application role
# of Microsoft Graph needs Privileged Role Administrator or Global Administrator (the Graph
# permissions AppRoleAssignment.ReadWrite.All and Application.Read.All).

set -euo pipefail

readonly GRAPH='https://graph.microsoft.com/v1.0'
readonly GRAPH_APP_ID='00000003-0000-0000-c000-000000000000'         # Microsoft Graph
readonly APP_ROLE_ID='7c3e1994-38ff-4412-a99b-9369f6bb7706'          # PartnerBilling.Read.All (application)
readonly APP_ROLE_VALUE='PartnerBilling.Read.All'
readonly GUID_PATTERN='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

usage() {
  cat <<'EOF'
Usage:
  grant-graph-permission.sh --principal-id <object-id> [--dry-run]
  grant-graph-permission.sh --resource-group <group> --identity-name <name> [--subscription <id>] [--dry-run]

Grants the Microsoft Graph application role PartnerBilling.Read.All to the Function App's
managed identity. Run it once, as a directory administrator of the partner tenant, after the
first "azd up". Running it again changes nothing.

Options:
  --principal-id <id>       The identity's principal (object) ID: the azd output
                            MANAGED_IDENTITY_PRINCIPAL_ID. Its client ID also works.
                            Default: $MANAGED_IDENTITY_PRINCIPAL_ID, if set.
  --resource-group <group>  Look the identity up by resource group and name instead
  --identity-name <name>    (the azd outputs AZURE_RESOURCE_GROUP and MANAGED_IDENTITY_NAME).
  --subscription <id>       Subscription of that resource group (default: the current one).
  --dry-run                 Check and report, but grant nothing.
  -h, --help                Show this help.

Examples:
  ./scripts/grant-graph-permission.sh --principal-id "$(azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID)"
  ./scripts/grant-graph-permission.sh --resource-group rg-billing --identity-name id-billing-export-abc123

Exit codes: 0 granted or already granted, 1 failed, 2 bad usage.
EOF
}

die() { echo "error: $*" >&2; exit 1; }
usage_error() { echo "error: $*" >&2; echo "Run with --help for usage." >&2; exit 2; }

principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
resource_group=''
identity_name=''
subscription=''
dry_run=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; principal_id="$2"; shift 2 ;;
    --resource-group) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; resource_group="$2"; shift 2 ;;
    --identity-name) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; identity_name="$2"; shift 2 ;;
    --subscription) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; subscription="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

if [[ -n "$resource_group" || -n "$identity_name" ]]; then
  [[ -n "$resource_group" && -n "$identity_name" ]] || usage_error "--resource-group and --identity-name go together"
elif [[ -z "$principal_id" ]]; then
  usage_error "name the identity: --principal-id, or --resource-group with --identity-name"
fi

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not installed or not on PATH"

# Runs an az command. On failure, prints its error output and exits with the given message.
run_az() {
  local message="$1"; shift
  local output
  if ! output="$(az "$@" 2>&1)"; then
    echo "$output" >&2
    die "$message"
  fi
  printf '%s' "$output"
}

tenant_id="$(run_az "not signed in to Azure: run 'az login --tenant <partner tenant>' as a directory administrator" \
  account show --query tenantId -o tsv)"
echo "Tenant: $tenant_id (the managed identity must be in the partner tenant)"

# 1. The identity's principal (object) ID.
if [[ -n "$resource_group" ]]; then
  principal_id="$(run_az "could not read managed identity '$identity_name' in resource group '$resource_group'" \
    identity show --resource-group "$resource_group" --name "$identity_name" \
    ${subscription:+--subscription "$subscription"} --query principalId -o tsv)"
fi
[[ "$principal_id" =~ $GUID_PATTERN ]] || usage_error "'$principal_id' is not an object ID (a GUID)"

# 2. The identity's service principal. Accept its client ID too: look it up by appId if the
#    object ID finds nothing. A new identity can take a minute or two to appear in Graph.
identity_sp=''
if ! identity_sp="$(az rest --method get --url "$GRAPH/servicePrincipals/$principal_id" \
      --query "join('|', [id, displayName, servicePrincipalType])" -o tsv 2>/dev/null)"; then
  identity_sp="$(run_az "no service principal with object ID or client ID '$principal_id' in tenant $tenant_id. Is this the managed identity of this tenant? A new identity can take a few minutes to appear in Microsoft Graph; try again shortly." \
    rest --method get --url "$GRAPH/servicePrincipals(appId='$principal_id')" \
    --query "join('|', [id, displayName, servicePrincipalType])" -o tsv)"
fi
IFS='|' read -r principal_id identity_display_name identity_sp_type <<<"$identity_sp"
echo "Managed identity: $identity_display_name (object ID $principal_id, type $identity_sp_type)"
if [[ "$identity_sp_type" != 'ManagedIdentity' ]]; then
  echo "warning: this service principal is a(n) '$identity_sp_type', not a managed identity; granting anyway" >&2
fi

# 3. Microsoft Graph's service principal in this tenant, and the app role on it.
graph_sp_id="$(run_az "could not read the Microsoft Graph service principal (appId $GRAPH_APP_ID)" \
  rest --method get --url "$GRAPH/servicePrincipals(appId='$GRAPH_APP_ID')" --query id -o tsv)"
role_value="$(run_az "could not read the app roles of Microsoft Graph" \
  rest --method get --url "$GRAPH/servicePrincipals/$graph_sp_id?\$select=appRoles" \
  --query "appRoles[?id=='$APP_ROLE_ID'].value | [0]" -o tsv)"
[[ "$role_value" == "$APP_ROLE_VALUE" ]] \
  || die "Microsoft Graph in this tenant has no app role $APP_ROLE_ID ($APP_ROLE_VALUE); found '$role_value'"

# 4. Already assigned? Read every page of the identity's app role assignments.
existing_assignment=''
url="$GRAPH/servicePrincipals/$principal_id/appRoleAssignments"
while [[ -n "$url" ]]; do
  page="$(run_az "could not list the app role assignments of $principal_id" \
    rest --method get --url "$url" \
    --query "join('|', [not_null(value[?appRoleId=='$APP_ROLE_ID' && resourceId=='$graph_sp_id'].id | [0], 'none'), not_null(\"@odata.nextLink\", 'none')])" \
    -o tsv)"
  IFS='|' read -r found next <<<"$page"
  if [[ "$found" != 'none' ]]; then existing_assignment="$found"; break; fi
  if [[ "$next" == 'none' ]]; then url=''; else url="$next"; fi
done

if [[ -n "$existing_assignment" ]]; then
  echo "Already granted: $identity_display_name has $APP_ROLE_VALUE on Microsoft Graph (assignment $existing_assignment). Nothing to do."
  exit 0
fi

if [[ "$dry_run" == true ]]; then
  echo "Dry run: would grant $APP_ROLE_VALUE on Microsoft Graph to $identity_display_name ($principal_id)."
  exit 0
fi

# 5. Grant.
body="{\"principalId\":\"$principal_id\",\"resourceId\":\"$graph_sp_id\",\"appRoleId\":\"$APP_ROLE_ID\"}"
if ! assignment="$(az rest --method post --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers 'Content-Type=application/json' --body "$body" --query id -o tsv 2>&1)"; then
  echo "$assignment" >&2
  if [[ "$assignment" == *Authorization_RequestDenied* || "$assignment" == *Forbidden* || "$assignment" == *403* ]]; then
    die "not allowed to grant $APP_ROLE_VALUE: sign in as a Privileged Role Administrator or Global Administrator of tenant $tenant_id"
  fi
  die "could not grant $APP_ROLE_VALUE to $principal_id"
fi

echo "Granted: $APP_ROLE_VALUE on Microsoft Graph to $identity_display_name ($principal_id), assignment $assignment."
echo "It can take a while to take effect. The identity's Graph tokens are cached, so Graph can"
echo "answer 401/403 for up to 24 hours. The next scheduled firing retries a month that failed."
