import { describe, expect, it } from 'vitest';
import { toCopying, toFailed, toLandingRetry, toPolling, toRestarting, toRevived, toSucceeded, toWaiting, type Run } from '../../src/core/run';
import { aRun } from '../support/runs';

const now = new Date('2026-11-04T06:00:00Z');
const later = new Date('2026-11-04T06:10:00Z');
/** A run carrying every field a transition might have to clear. */
const busy: Run = aRun({
  state: 'copying',
  seq: 7,
  operationUrl: 'https://graph.example/v1.0/reports/partners/billing/operations/op-1',
  operationId: 'op-1',
  landingClaimId: 'claim-1',
  landingClaimedUntil: '2026-11-04T06:02:00.000Z',
  nextActionAt: '2026-11-04T06:02:00.000Z',
  lastErrorCode: 'ServerBusy',
  lastErrorMessage: 'busy',
  lastErrorCount: 2,
  lastErrorAt: '2026-11-04T05:59:00.000Z',
  errorCode: 'Old',
  errorMessage: 'an old error',
});
const claimCleared = { landingClaimId: undefined, landingClaimedUntil: undefined };
const lastErrorCleared = { lastErrorCode: undefined, lastErrorMessage: undefined, lastErrorCount: undefined, lastErrorAt: undefined };

describe('run transitions', () => {
  it('an ended run holds no claim and has no next action, whether it succeeded or failed', () => {
    const succeeded = toSucceeded(busy, { manifestETag: 'e1', blobCount: 2, destinationContainer: 'c', destinationFolder: 'f/', bytesCopied: 10 }, later);
    const failed = toFailed(busy, 'Broken', 'it broke', later);
    for (const ended of [succeeded, failed]) {
      expect(ended).toMatchObject({ ...claimCleared, nextActionAt: undefined, updatedAt: later.toISOString(), finishedAt: later.toISOString() });
    }
    expect(succeeded).toMatchObject({ state: 'succeeded', ...lastErrorCleared, errorCode: undefined, errorMessage: undefined, bytesCopied: 10 });
    // A failure keeps what the run was waiting out: the likely cause.
    expect(failed).toMatchObject({ state: 'failed', errorCode: 'Broken', errorMessage: 'it broke', lastErrorCode: 'ServerBusy' });
  });

  it('polling clears the errors met on the way and takes the operation id from its URL', () => {
    expect(toPolling(aRun({ ...busy, state: 'starting' }), 'https://graph.example/v1.0/operations/op-2', now)).toMatchObject({
      state: 'polling',
      operationId: 'op-2',
      ...lastErrorCleared,
      errorCode: undefined,
      errorMessage: undefined,
    });
  });

  it('waiting takes the next seq and sets when the next action is due', () => {
    expect(toWaiting(busy, 90, now)).toMatchObject({ seq: 8, updatedAt: now.toISOString(), nextActionAt: '2026-11-04T06:01:30.000Z' });
  });

  it('a restart forgets the operation and the claim, and counts', () => {
    expect(toRestarting(busy, now)).toMatchObject({ state: 'starting', operationUrl: undefined, operationId: undefined, restarts: 1, ...claimCleared });
    expect(toRestarting({ ...busy, restarts: 2 }, now).restarts).toBe(3);
  });

  it('copying sets the claim and makes it the next action time', () => {
    const until = new Date('2026-11-04T06:02:00Z');
    expect(
      toCopying(
        aRun(),
        { manifestETag: 'e', partnerTenantId: 't', blobCount: 1, destinationContainer: 'c', destinationFolder: 'f/' },
        { id: 'claim-2', until },
        now,
      ),
    ).toMatchObject({
      state: 'copying',
      landingClaimId: 'claim-2',
      landingClaimedUntil: until.toISOString(),
      nextActionAt: until.toISOString(),
    });
  });

  it('a landing retry releases the claim and records its counts', () => {
    expect(toLandingRetry(busy, { landingAttempts: 2, copyWaits: 1 })).toMatchObject({ ...claimCleared, landingAttempts: 2, copyWaits: 1, state: 'copying' });
  });

  it('a revival keeps the step, counts, and marks where the run stood', () => {
    expect(toRevived(busy, 2, now)).toMatchObject({ seq: 7, revivals: 2, revivedAtMark: 'copying:7', nextActionAt: now.toISOString() });
  });
});
