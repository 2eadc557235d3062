/**
 * Ends the test output with one plain line, `Tests: N passed, N failed, N skipped`, which CI
 * reads as the run's closing count (it does not parse vitest's own summary). A test file that
 * failed to load (an import that does not resolve, an error in a hook outside any test) and an
 * unhandled error each count as one failure: a run with them must not close as all passed.
 */
import type { Reporter, SerializedError, TestModule } from 'vitest/node' with { 'resolution-mode': 'import' };

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    for (const module of testModules) {
      let failedInModule = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') failedInModule++;
        else counts.skipped++;
      }
      // The module's own errors (it did not load, or a hook failed) when no test says so already.
      counts.failed += failedInModule > 0 ? failedInModule : module.state() === 'failed' || module.errors().length > 0 ? 1 : 0;
    }
    process.stdout.write(`\nTests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
