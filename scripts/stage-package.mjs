// Usage: node scripts/stage-package.mjs   (run by azure.yaml's prepackage hook, after npm run build)
// Stages the folder azd zips, dist/functionapp: host.json, the bundle that package.json `main`
// names and the chunks it loads beside it (scripts/chunks.mjs), each with its licence file and,
// if the build made one (BUNDLE_SOURCEMAP=1), its source map, and a package.json with no
// dependencies and no scripts, so a build in Azure has nothing to install or run.
import fs from 'node:fs';
import path from 'node:path';
import { CHUNKS } from './chunks.mjs';

const staging = 'dist/functionapp';
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
const entryDir = path.dirname(pkg.main);
const bundleFiles = [path.basename(pkg.main), ...CHUNKS.map((chunk) => chunk.file)];
const missing = bundleFiles.filter((file) => !fs.existsSync(path.join(entryDir, file)));
if (missing.length > 0)
  throw new Error(`${missing.map((file) => path.join(entryDir, file)).join(', ')} (package.json main and its chunks) not built: run npm run build first`);

fs.rmSync(staging, { recursive: true, force: true });
fs.mkdirSync(path.join(staging, entryDir), { recursive: true });
// Each bundle file, and what esbuild writes next to it under its name (.LEGAL.txt, .map).
for (const file of fs.readdirSync(entryDir).filter((name) => bundleFiles.some((bundleFile) => name.startsWith(bundleFile)))) {
  fs.copyFileSync(path.join(entryDir, file), path.join(staging, entryDir, file));
}
fs.copyFileSync('host.json', path.join(staging, 'host.json'));
const { name, version, license, type, main } = pkg;
fs.writeFileSync(path.join(staging, 'package.json'), `${JSON.stringify({ name, version, private: true, license, type, main }, null, 2)}\n`);
console.log(
  `Staged ${staging}: host.json, package.json, ${main} and its chunks ${CHUNKS.map((chunk) => chunk.file).join(', ')} (self-contained, no node_modules)`,
);
