// Usage: node scripts/load-like-worker.cjs <entry.js>
// Loads a Functions entry point the way the Functions Node.js worker does, with a stand-in for
// `@azure/functions-core` (the module only the worker provides) that captures the registrations
// the host would receive. Prints one JSON line: { scriptStart, required, registered, registrations,
// loaded }: the times in ms on the shared wall clock (performance.timeOrigin based), from the
// loader's start, just before the entry point is required and once it has registered; `loaded`
// are the files CommonJS has loaded by then.
'use strict';
const scriptStart = performance.timeOrigin + performance.now();
const Module = require('node:module');
const registrations = [];
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === '@azure/functions-core') {
    return {
      setProgrammingModel() {},
      registerFunction(metadata) {
        registrations.push(metadata);
        return { dispose() {} };
      },
      registerHook() {
        return { dispose() {} };
      },
      log() {},
    };
  }
  return load.call(this, request, ...rest);
};
const entry = require('node:path').resolve(process.argv[2]);
const required = performance.timeOrigin + performance.now();
try {
  require(entry);
} catch (error) {
  // The worker reports a failed load with the error's message and stack, then the host stops the
  // app; Node's own uncaught-exception report would print the minified bundle's whole line first.
  process.stderr.write(`Worker was unable to load entry point "${entry}": ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
  return;
}
const registered = performance.timeOrigin + performance.now();
const loaded = Object.keys(require.cache);
process.stdout.write(`${JSON.stringify({ scriptStart, required, registered, registrations, loaded })}\n`);
