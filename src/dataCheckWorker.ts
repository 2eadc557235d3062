/**
 * The data check's thread (started by ./dataCheckThreads.ts): it reads landed files back from
 * the destination and checks them (./adapters/dataFile.ts), one request at a time, on its own
 * heap, and answers each with the outcome or the error, flattened to data: an Error's class does
 * not cross a thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createDataFiles, type DataFiles } from './adapters/dataFile';
import { destinationContainerFor } from './adapters/storageClients';
import { DataFileError, StorageRequestError, asError } from './errors';
import type { CheckFailure, CheckReply, CheckRequest, CheckThreadData } from './dataCheckThreads';

const data = workerData as CheckThreadData;
const dataFiles: DataFiles = createDataFiles(destinationContainerFor(data.destination), data.options);

parentPort!.on('message', (request: CheckRequest) => {
  void dataFiles.checkFile(request.file).then(
    (outcome) => parentPort!.postMessage({ id: request.id, outcome } satisfies CheckReply),
    (thrown: unknown) => parentPort!.postMessage({ id: request.id, failure: flattened(thrown) } satisfies CheckReply),
  );
});

function flattened(thrown: unknown): CheckFailure {
  if (thrown instanceof DataFileError) return { kind: 'dataFile', file: thrown.file, line: thrown.line, problem: thrown.problem };
  if (thrown instanceof StorageRequestError) return { kind: 'storage', message: thrown.message, details: thrown.details };
  const error = asError(thrown);
  return { kind: 'bug', message: error.message, stack: error.stack ?? '' };
}
