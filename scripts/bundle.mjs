// Usage: node scripts/bundle.mjs [outfile] [entry]
// Bundles the Functions entry point into one file, so a cold start loads one module instead of
// the thousands under node_modules. `@azure/functions-core` stays external: only the Functions
// Node.js worker provides it at run time, and the library must find it there.
import { build } from 'esbuild';

/** The bundle's path: dist/main.js (package.json `main`), or the first argument. */
const outfile = process.argv[2] ?? 'dist/main.js';
/** What to bundle: the Functions entry point, or (for the benchmark's app process) the second argument. */
const entry = process.argv[3] ?? 'src/index.ts';

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  external: ['@azure/functions-core'],
  // Some dependencies resolve to their ESM builds, which derive require() and __dirname from
  // import.meta.url; in a CommonJS bundle that is empty unless defined as the bundle's own URL.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  minify: false,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});

const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`${outfile}: ${inputs} modules bundled, ${(bytes / 1024 / 1024).toFixed(1)} MiB with its map`);
