#!/usr/bin/env bash
# Usage: scripts/bicep.sh <bicep arguments>     (for example: scripts/bicep.sh lint infra/main.bicep)
#
# Runs the Bicep CLI at the version pinned below. The CLI ships on NuGet as a self-contained
# binary in the package Azure.Bicep.CommandLine.<platform> (under tools/), so the .NET SDK
# fetches it: the first run restores the package through a throwaway project in a temporary
# folder, into a cache outside the repository; later runs use the cache and fetch nothing.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/partner-billing-export/bicep-<version>-<platform>
# (under $TMPDIR or /tmp when neither is set). Delete that folder to fetch again.
set -euo pipefail

readonly version='0.49.2'

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform='linux-x64' ;;
  Linux-aarch64 | Linux-arm64) platform='linux-arm64' ;;
  Darwin-x86_64) platform='osx-x64' ;;
  Darwin-arm64) platform='osx-arm64' ;;
  *)
    echo "scripts/bicep.sh: no Bicep CLI package for $(uname -s) $(uname -m); install Bicep ${version} by hand" >&2
    exit 1
    ;;
esac

readonly package="Azure.Bicep.CommandLine.${platform}"
cache_root="${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}"
readonly cache="${cache_root:-${TMPDIR:-/tmp}}/partner-billing-export/bicep-${version}-${platform}"
# NuGet lays packages out as <lower-case id>/<version>/; the binary is tools/bicep.
readonly binary="${cache}/packages/$(printf '%s' "$package" | tr '[:upper:]' '[:lower:]')/${version}/tools/bicep"

if [[ ! -f "$binary" ]]; then
  if ! command -v dotnet > /dev/null 2>&1; then
    echo "scripts/bicep.sh: the infra check needs the .NET SDK (dotnet on PATH) to fetch the Bicep CLI ${version} (NuGet package ${package}); install the .NET SDK and run it again" >&2
    exit 1
  fi
  echo "scripts/bicep.sh: fetching ${package} ${version} from NuGet into ${cache}" >&2

  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
  project_dir="$(mktemp -d "${TMPDIR:-/tmp}/pbe-bicep-restore.XXXXXX")"
  mkdir -p "$(dirname "$cache")"
  staging="$(mktemp -d "${cache}.partial.XXXXXX")"
  trap 'rm -rf "$project_dir" "$staging"' EXIT

  # PackageDownload fetches the package as it is, with no framework or dependency resolution;
  # a project needs some target framework to restore, and the SDK's own always works.
  sdk_major="$(dotnet --version | cut -d. -f1)"
  cat > "${project_dir}/fetch-bicep.csproj" << EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net${sdk_major}.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="${package}" Version="[${version}]" />
  </ItemGroup>
</Project>
EOF
  if ! restore_output="$(dotnet restore "${project_dir}/fetch-bicep.csproj" --packages "${staging}/packages" 2>&1)"; then
    printf '%s\n' "$restore_output" >&2
    echo "scripts/bicep.sh: dotnet restore of ${package} ${version} failed (output above)" >&2
    exit 1
  fi
  staged_binary="${staging}/packages/${binary#"${cache}/packages/"}"
  if [[ ! -f "$staged_binary" ]]; then
    echo "scripts/bicep.sh: ${package} ${version} has no tools/bicep; the package layout changed" >&2
    exit 1
  fi
  # NuGet extracts without guaranteeing the execute bit for everyone.
  chmod +x "$staged_binary"
  # Publish the finished cache in one step, so an interrupted fetch is never taken for a cached one.
  if [[ ! -e "$cache" ]]; then
    mv "$staging" "$cache"
  fi
  rm -rf "$project_dir" "$staging"
  trap - EXIT
fi

exec "$binary" "$@"
