/**
 * The poll queue's message: a small versioned wake-up call naming a run. The ledger holds the
 * run's state; `seq` says which step of the run the message is for, so a duplicate or stale
 * delivery is recognised and dropped. The Functions queue trigger decodes base64 by default,
 * so messages are written as base64 JSON; the trigger hands the handler a parsed object, the
 * CLI's worker a string, and both are accepted here.
 */
import { InvalidMessageError } from '../errors';
import { describeJsonValue, isRecord } from './jsonValue';

export interface PollMessage {
  readonly v: 1;
  readonly runId: string;
  readonly seq: number;
  /** The data check's fan-out: which landed file (its index in the manifest) this message checks. */
  readonly file?: number;
  /** Times it came back for arriving before its step was saved (../core/policy.ts, earlyMessageDelaySeconds). */
  readonly early?: number;
}

/** Far below the queue's 64 KiB: a poll message is under 100 bytes. */
export const MAX_MESSAGE_BYTES = 4096;

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodePollMessage(message: PollMessage): string {
  return Buffer.from(
    JSON.stringify({
      v: message.v,
      runId: message.runId,
      seq: message.seq,
      ...(message.file === undefined ? {} : { file: message.file }),
      ...(message.early === undefined ? {} : { early: message.early }),
    }),
    'utf8',
  ).toString('base64');
}

export function parsePollMessage(raw: unknown): PollMessage {
  const value = typeof raw === 'string' ? parseText(raw) : raw;
  if (!isRecord(value)) throw new InvalidMessageError(`poll message is ${describeJsonValue(value)}: expected a JSON object {v, runId, seq}`);
  const problems: string[] = [];
  if (value.v !== 1) problems.push(`'v' is ${JSON.stringify(value.v) ?? 'missing'}: expected 1`);
  if (typeof value.runId !== 'string' || !RUN_ID.test(value.runId))
    problems.push(`'runId' is ${JSON.stringify(value.runId) ?? 'missing'}: expected a lower-case GUID`);
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 0)
    problems.push(`'seq' is ${JSON.stringify(value.seq) ?? 'missing'}: expected a whole number >= 0`);
  if (value.file !== undefined && (!Number.isSafeInteger(value.file) || (value.file as number) < 0))
    problems.push(`'file' is ${JSON.stringify(value.file)}: expected a whole number >= 0 (a file's index)`);
  if (value.early !== undefined && (!Number.isSafeInteger(value.early) || (value.early as number) < 1))
    problems.push(`'early' is ${JSON.stringify(value.early)}: expected a whole number >= 1 (times it came back early)`);
  if (problems.length > 0) throw new InvalidMessageError(`poll message is invalid: ${problems.join('; ')}`);
  return {
    v: 1,
    runId: value.runId as string,
    seq: value.seq as number,
    ...(value.file === undefined ? {} : { file: value.file as number }),
    ...(value.early === undefined ? {} : { early: value.early as number }),
  };
}

function parseText(text: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) {
    throw new InvalidMessageError(`poll message is ${Buffer.byteLength(text, 'utf8')} bytes: expected at most ${MAX_MESSAGE_BYTES}`);
  }
  const trimmed = text.trim();
  const json = trimmed.startsWith('{') ? trimmed : Buffer.from(trimmed, 'base64').toString('utf8');
  try {
    return JSON.parse(json);
  } catch {
    throw new InvalidMessageError('poll message is not JSON (nor base64-encoded JSON): expected {"v":1,"runId":"<guid>","seq":<n>}');
  }
}

/** The message that wakes the run for its current step: the one place the message is made. */
export function pollMessageFor(run: { readonly runId: string; readonly seq: number }): PollMessage {
  return { v: 1, runId: run.runId, seq: run.seq };
}

/** The message that checks one landed file of the run's current step (the data check's fan-out). */
export function fileCheckMessageFor(run: { readonly runId: string; readonly seq: number }, file: number): PollMessage {
  return { v: 1, runId: run.runId, seq: run.seq, file };
}
