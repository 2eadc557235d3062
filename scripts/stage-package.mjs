// Usage: node scripts/stage-package.mjs   (run by azure.yaml's prepackage hook, after npm run build)
// Stages the folder azd zips, dist/functionapp: host.json, the bundle that package.json `main`
// names (with its source map and licence file), and a package.json with no dependencies and no
// scripts, so a build in Azure has nothing to install or run.
import fs from 'node:fs';
import path from 'node:path';

const staging = 'dist/functionapp';
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
if (!fs.existsSync(pkg.main)) throw new Error(`${pkg.main} (package.json main) was not built: run npm run build first`);

const entryDir = path.dirname(pkg.main);
const entryFile = path.basename(pkg.main);
fs.rmSync(staging, { recursive: true, force: true });
fs.mkdirSync(path.join(staging, entryDir), { recursive: true });
for (const file of fs.readdirSync(entryDir).filter((name) => name.startsWith(entryFile))) {
  fs.copyFileSync(path.join(entryDir, file), path.join(staging, entryDir, file));
}
fs.copyFileSync('host.json', path.join(staging, 'host.json'));
const { name, version, license, type, main } = pkg;
fs.writeFileSync(path.join(staging, 'package.json'), `${JSON.stringify({ name, version, private: true, license, type, main }, null, 2)}\n`);
console.log(`Staged ${staging}: host.json, package.json and ${main} (self-contained, no node_modules)`);
