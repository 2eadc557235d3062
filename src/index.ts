/**
 * The Functions entry point and composition root: the only module with side effects. It reads
 * the settings once (a bad setting stops the app here, naming every problem), builds the
 * clients, and registers the functions. Handlers live in ./functions and take their
 * dependencies as an argument.
 */
import { app } from '@azure/functions';
import { parseSettings } from './core/settings';
import { createDeps } from './deps';
import { receivePartnerCenterEvent } from './functions/invoiceEvents';
import { pollExport } from './functions/pollExport';
import { REVIVE_SCHEDULE, reviveRunsOnSchedule } from './functions/reviveRuns';
import { backfillApi } from './functions/backfill';
import { getRun, listRuns, startRun } from './functions/runsApi';
import { startExportsOnSchedule } from './functions/startExport';

const settings = parseSettings(process.env);
const deps = createDeps(settings);

/** Telemetry is buffered; the host may freeze the process once an invocation returns. */
async function flushingTelemetry<T>(invocation: Promise<T>): Promise<T> {
  try {
    return await invocation;
  } finally {
    await deps.telemetry.flush().catch(() => undefined);
  }
}

app.timer('startExports', {
  schedule: settings.exportSchedule,
  // A past-due firing after downtime is wanted: the ledger makes it a no-op when the month landed.
  runOnStartup: false,
  handler: (timer, context) => flushingTelemetry(startExportsOnSchedule(timer, context, deps)),
});

app.storageQueue('pollExport', {
  queueName: settings.pollQueue,
  connection: 'AzureWebJobsStorage',
  handler: (entry, context) => flushingTelemetry(pollExport(entry, context, deps)),
});

// Nothing stuck: re-sends the step of a run whose message was lost.
app.timer('reviveStalledRuns', {
  schedule: REVIVE_SCHEDULE,
  runOnStartup: false,
  handler: (timer, context) => flushingTelemetry(reviveRunsOnSchedule(timer, context, deps)),
});

// Run history and "run now". Function keys guard them; the bodies never carry secrets.
app.http('listRuns', { methods: ['GET'], authLevel: 'function', route: 'runs', handler: (request, context) => listRuns(request, context, deps) });
app.http('getRun', { methods: ['GET'], authLevel: 'function', route: 'runs/{runId}', handler: (request, context) => getRun(request, context, deps) });
app.http('startRun', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'runs',
  handler: (request, context) => flushingTelemetry(startRun(request, context, deps)),
});

app.http('backfill', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'backfill',
  handler: (request, context) => flushingTelemetry(backfillApi(request, context, deps)),
});

// Partner Center cannot send a function key: the event's signature is what is checked (./functions/invoiceEvents).
app.http('partnerCenterEvents', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'events/partner-center',
  handler: (request, context) => flushingTelemetry(receivePartnerCenterEvent(request, context, deps)),
});
