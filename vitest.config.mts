import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The infra tests read the compiled ARM template: npm run infra builds it and runs them
    // (vitest.infra.config.mts).
    exclude: [...configDefaults.exclude, 'test/infra.test.ts'],
    reporters: ['default', './test/summaryReporter.ts'],
    // Integration tests start real Azurite and emulator processes: give them room on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // tsx's loader in each test process: the data check's thread (src/dataCheckThreads.ts) runs
    // src/dataCheckWorker.ts from the source, and a thread inherits its process's loader.
    execArgv: ['--import', 'tsx'],
    maxWorkers: 2,
  },
});
