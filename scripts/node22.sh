# Sourced by .ci/run (and by hand: `source scripts/node22.sh`): makes sure `node` on PATH is
# Node.js 22 or later. A machine whose own Node.js is older gets the official build from the npm
# registry's `node` package (its bin/node is the real binary), one pinned version, installed once
# into a cache folder outside the repo.
NODE22_VERSION=22.23.3
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  node22_dir="${XDG_CACHE_HOME:-$HOME/.cache}/partner-billing-export/node-$NODE22_VERSION"
  if [ ! -x "$node22_dir/node_modules/node/bin/node" ]; then
    echo "Node.js $(node --version 2>/dev/null || echo none) found; installing Node.js $NODE22_VERSION into $node22_dir" >&2
    npm install --prefix "$node22_dir" --no-save --no-package-lock --loglevel=error "node@$NODE22_VERSION" >&2
  fi
  export PATH="$node22_dir/node_modules/node/bin:$PATH"
fi
echo "Using Node.js $(node --version) and npm $(npm --version)" >&2
