# Sourced by .ci/run: makes sure `node` on PATH is Node.js 22 or later. A machine whose own
# Node.js is older gets the official build from the npm registry's `node` package (its
# bin/node is the real binary), installed once into a cache folder outside the repo.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  node22_dir="${XDG_CACHE_HOME:-$HOME/.cache}/partner-billing-export/node22"
  if [ ! -x "$node22_dir/node_modules/node/bin/node" ]; then
    echo "Node.js $(node --version 2>/dev/null || echo none) found; installing Node.js 22 into $node22_dir" >&2
    npm install --prefix "$node22_dir" --no-save --no-package-lock --loglevel=error node@22 >&2
  fi
  export PATH="$node22_dir/node_modules/node/bin:$PATH"
fi
echo "Using Node.js $(node --version) and npm $(npm --version)" >&2
