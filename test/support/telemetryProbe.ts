/**
 * Bundled by test/telemetry.test.ts with scripts/bundle.mjs, as the entry point is: the app's
 * composition root sends one run event through whatever telemetry the settings ask for, flushes,
 * and prints the bundle files it loaded, so the test sees the chunk the bundle really loads.
 */
import { InvocationContext } from '@azure/functions';
import { dirname } from 'node:path';
import { parseSettings } from '../../src/core/settings';
import { createDeps } from '../../src/deps';
import { aRun } from './runs';

const deps = createDeps(parseSettings(process.env));
deps.telemetry.runChanged(new InvocationContext(), aRun({ runId: process.env.PROBE_RUN_ID ?? '', state: 'starting' }));
void deps.telemetry.flush().then(() => {
  const bundleDir = dirname(__filename);
  const loaded = Object.keys(require.cache).filter((file) => dirname(file) === bundleDir);
  process.stdout.write(`${JSON.stringify({ loaded })}\n`);
});
