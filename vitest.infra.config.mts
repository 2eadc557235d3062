import { defineConfig } from 'vitest/config';

// npm run infra: the infra tests, against the ARM template that `bicep build` compiled from
// infra/main.bicep (scripts/infra.mjs sets INFRA_ARM_JSON). Plain `npm test` leaves them out.
export default defineConfig({
  test: {
    include: ['test/infra.test.ts'],
    reporters: ['default', './test/summaryReporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
