// The files scripts/bundle.mjs writes beside the entry point (package.json `main`), which
// scripts/stage-package.mjs deploys with it. A `lazy` chunk may only be loaded with import(), so
// none of it is read before first use; the others are required where they are imported.
export const CHUNKS = [
  { file: 'clients.js', source: 'src/clients.ts', lazy: true }, // the Azure SDK clients and the adapters over them
  { file: 'telemetry.js', source: 'src/azureMonitor.ts', lazy: true }, // OpenTelemetry and the Azure Monitor exporter
  { file: 'parquet.js', source: 'src/adapters/parquetFile.ts', lazy: true }, // hyparquet-writer: only a data check that writes Parquet loads it
  { file: 'dataCheckWorker.js', source: 'src/dataCheckWorker.ts', lazy: true }, // the data check's thread, started by its file name
  { file: 'errors.js', source: 'src/errors.ts', lazy: false }, // the app's error classes: one identity for every file
];
