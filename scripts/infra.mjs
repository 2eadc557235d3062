// Usage: npm run infra [-- <vitest arguments>]
//
// The infra check, in three steps; the first failure stops it with a non-zero exit:
//   1. bicep lint on every .bicep file under infra/;
//   2. bicep build infra/main.bicep into build/infra/main.json (git-ignored);
//   3. test/infra.test.ts against that compiled ARM template (vitest.infra.config.mts), with
//      INFRA_ARM_JSON naming it.
// Any Bicep diagnostic above "info" fails steps 1 and 2: errors, and warnings too, although
// bicep itself exits 0 on warnings. A warning that must stay gets
// `#disable-next-line <rule> // reason` where it is raised.
//
// The Bicep CLI comes from scripts/bicep.sh (fetched once from NuGet, which needs the .NET SDK).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const armJson = join(root, 'build', 'infra', 'main.json');

/**
 * Runs scripts/bicep.sh. bicep writes its SARIF to stdout (lint) or stderr (build): both are
 * read, and whatever else it or scripts/bicep.sh prints is passed through.
 */
function bicep(args) {
  const result = spawnSync('bash', [join(root, 'scripts', 'bicep.sh'), ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  const out = splitSarif(result.stdout);
  const err = splitSarif(result.stderr);
  if (out.rest.trim()) process.stdout.write(out.rest);
  if (err.rest.trim()) process.stderr.write(err.rest);
  return { status: result.status ?? 1, documents: [...out.documents, ...err.documents] };
}

/** bicep prints one SARIF document per file it reads, back to back: split them from the rest. */
function splitSarif(text) {
  const documents = [];
  let rest = '';
  let depth = 0;
  let start = -1;
  let inString = false;
  let restFrom = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (depth > 0 && inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (depth > 0 && char === '"') inString = true;
    else if (char === '{') {
      if (depth++ === 0) {
        start = i;
        rest += text.slice(restFrom, i);
      }
    } else if (char === '}' && depth > 0 && --depth === 0) {
      try {
        documents.push(JSON.parse(text.slice(start, i + 1)));
      } catch {
        rest += text.slice(start, i + 1);
      }
      restFrom = i + 1;
    }
  }
  rest += depth === 0 ? text.slice(restFrom) : text.slice(start);
  return { documents, rest: rest.replace(/^\s+$/gm, '').replace(/\n{2,}/g, '\n') };
}

/** Every diagnostic in the SARIF documents, as "file(line,col) : level rule: message", without repeats. */
function diagnostics(documents) {
  const seen = new Map();
  for (const document of documents) {
    for (const run of document.runs ?? []) {
      for (const result of run.results ?? []) {
        const location = result.locations?.[0]?.physicalLocation;
        const file = location?.artifactLocation?.uri ? relative(root, fileURLToPath(location.artifactLocation.uri)) : '?';
        // SARIF: a result without a level is a warning.
        const level = result.level ?? 'warning';
        const line = `${file}(${location?.region?.startLine ?? '?'},${location?.region?.charOffset ?? '?'}) : ${level} ${result.ruleId}: ${result.message?.text ?? ''}`;
        seen.set(line, level);
      }
    }
  }
  return [...seen].map(([line, level]) => ({ line, level }));
}

function check(step, { status, documents }) {
  // No SARIF at all: bicep did not run (scripts/bicep.sh has said why) or could not read its input.
  if (status !== 0 && documents.length === 0) process.exit(status);
  const found = diagnostics(documents);
  const failing = found.filter(({ level }) => level !== 'note' && level !== 'none');
  for (const { line } of found) console.error(line);
  if (status !== 0 || failing.length > 0) {
    console.error(`npm run infra: ${step} failed: ${failing.length} error(s) or warning(s)${status !== 0 ? `, bicep exited ${status}` : ''}`);
    process.exit(1);
  }
}

const bicepFiles = (function list(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? list(join(dir, entry.name)) : entry.name.endsWith('.bicep') ? [relative(root, join(dir, entry.name))] : [],
  );
})(join(root, 'infra'));

const started = Date.now();
check('bicep lint', bicep(['lint', '--pattern', 'infra/**/*.bicep', '--diagnostics-format', 'sarif']));
console.log(`bicep lint: ${bicepFiles.length} files, no errors or warnings`);

mkdirSync(dirname(armJson), { recursive: true });
check('bicep build', bicep(['build', 'infra/main.bicep', '--outfile', armJson, '--diagnostics-format', 'sarif']));
console.log(`bicep build: ${relative(root, armJson)} (${((Date.now() - started) / 1000).toFixed(1)} s with lint)`);

const vitest = spawnSync(
  process.execPath,
  [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'vitest.infra.config.mts', ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, INFRA_ARM_JSON: armJson },
  },
);
if (vitest.error) throw vitest.error;
process.exit(vitest.status ?? 1);
