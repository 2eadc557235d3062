// Usage: node scripts/bundle.mjs [outfile] [entry]     (BUNDLE_SOURCEMAP=1: also write source maps)
// Bundles the Functions entry point, so a cold start loads a few files instead of the thousands
// under node_modules. `@azure/functions-core` stays external: only the Functions Node.js worker
// provides it at run time, and the library must find it there.
//
// The entry point holds what registering the functions needs (@azure/functions, the handlers,
// the pure core). The Azure SDKs are most of the bytes, and V8 pays to compile every byte of a
// file it loads, so they live in chunks beside it that the app imports on first use (CHUNKS).
// esbuild splits only ESM output, and the Functions host loads `main` as CommonJS, so each chunk
// is a separate entry point (scripts/chunks.mjs), and an import of a chunk's source becomes an
// import of its file. Code both sides use is then bundled twice; that is harmless for pure functions, but a class
// must exist once, or `instanceof` fails across files: the app's errors are a (small) chunk too.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { CHUNKS } from './chunks.mjs';

/** The bundle's path: dist/main.js (package.json `main`), or the first argument. */
const outfile = process.argv[2] ?? 'dist/main.js';
/** What to bundle: the Functions entry point, or (for the benchmark's app process) the second argument. */
const entry = process.argv[3] ?? 'src/index.ts';
/** Source maps only when asked for: they are twice the code, and a deployment does not need them. */
const sourcemap = process.env.BUNDLE_SOURCEMAP === '1';

const root = path.resolve(import.meta.dirname, '..');
const chunkBySource = new Map(CHUNKS.map((chunk) => [path.join(root, chunk.source), chunk]));

/** Turns each import of a chunk's source into an import of the chunk's file. */
const chunkImports = {
  name: 'chunk-imports',
  setup(builder) {
    builder.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const target = path.resolve(args.resolveDir, args.path).replace(/\.js$/, '');
      const chunk = chunkBySource.get(`${target}.ts`) ?? chunkBySource.get(target);
      if (!chunk) return undefined;
      if (chunk.lazy && args.kind !== 'dynamic-import') {
        return {
          errors: [
            {
              text: `${chunk.source} is loaded on first use: import it with import('./${path.basename(chunk.source, '.ts')}.js') or 'import type', not ${args.kind}`,
            },
          ],
        };
      }
      return { path: `./${chunk.file}`, external: true };
    });
  },
};

const outdir = path.dirname(outfile);
// A map left by an earlier BUNDLE_SOURCEMAP=1 build would otherwise be deployed with the new code.
for (const name of [path.basename(outfile), ...CHUNKS.map((chunk) => chunk.file)]) fs.rmSync(path.join(outdir, `${name}.map`), { force: true });
const result = await build({
  entryPoints: [{ in: entry, out: path.basename(outfile, '.js') }, ...CHUNKS.map((chunk) => ({ in: chunk.source, out: path.basename(chunk.file, '.js') }))],
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  // import() of a chunk becomes require() in a promise: CommonJS loads a CommonJS file about
  // twice as fast as the ESM loader does (which also scans it for export names first).
  supported: { 'dynamic-import': false },
  external: ['@azure/functions-core'],
  plugins: [chunkImports],
  // Some dependencies resolve to their ESM builds, which derive require() and __dirname from
  // import.meta.url; in a CommonJS bundle that is empty unless defined as the bundle's own URL.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: sourcemap ? 'linked' : false,
  // Less to read and compile at every cold start. Identifiers are not renamed: stack traces
  // need them, and the storage SDK tells credentials apart by constructor name
  // (StorageSharedKeyCredential). Keeping names that way costs nothing at load; esbuild's
  // keepNames after renaming took a quarter more time to register the functions.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});

for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (file.endsWith('.map') || file.endsWith('.txt')) continue;
  console.log(`${file}: ${Object.keys(output.inputs).length} modules, ${(output.bytes / 1024).toFixed(0)} KiB`);
}
