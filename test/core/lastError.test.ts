import { describe, expect, it } from 'vitest';
import { noteTransientFailure, withoutLastError } from '../../src/core/lastError';
import { BOUNDED_FAILURES } from '../../src/core/policy';
import type { Run } from '../../src/core/run';
import { aRun } from '../support/runs';

const now = new Date('2026-11-04T05:10:00.000Z');

describe('noteTransientFailure', () => {
  it('records the failure on the run, so status can say why it is waiting', () => {
    const decision = noteTransientFailure(aRun(), { code: 'ServiceUnavailable', message: 'polling: GET failed with 503' }, now);

    expect(decision).toEqual({
      kind: 'retry',
      run: {
        ...aRun(),
        lastErrorCode: 'ServiceUnavailable',
        lastErrorMessage: 'polling: GET failed with 503',
        lastErrorCount: 1,
        lastErrorAt: '2026-11-04T05:10:00.000Z',
      },
    });
  });

  it('counts the same failure in a row, and starts again at one for another', () => {
    const once = noteTransientFailure(aRun(), { code: 'Timeout', message: 'a' }, now).run;
    const twice = noteTransientFailure(once, { code: 'Timeout', message: 'b' }, now).run;
    const other = noteTransientFailure(twice, { code: 'NetworkError', message: 'c' }, now).run;

    expect([once.lastErrorCount, twice.lastErrorCount, other.lastErrorCount]).toEqual([1, 2, 1]);
    expect(twice.lastErrorMessage).toBe('b');
  });

  it('retries ordinary transient failures without a limit of its own (the export deadline bounds them)', () => {
    let run: Run = aRun();
    for (let i = 0; i < 50; i++) {
      const decision = noteTransientFailure(run, { code: 'ServiceUnavailable', message: '503' }, now);
      expect(decision.kind).toBe('retry');
      run = decision.run;
    }
  });

  it.each(['IdentityUnavailable', 'AuthenticationFailed', 'InvalidJson'])('gives up on %s after three tries in a row', (code) => {
    expect(BOUNDED_FAILURES[code]).toBe(3);
    const first = noteTransientFailure(aRun(), { code, message: 'm' }, now);
    const second = noteTransientFailure(first.run, { code, message: 'm' }, now);
    const third = noteTransientFailure(second.run, { code, message: 'm' }, now);

    expect([first.kind, second.kind, third.kind]).toEqual(['retry', 'retry', 'giveUp']);
    expect(third).toMatchObject({ tries: 3, run: { lastErrorCode: code, lastErrorCount: 3 } });
  });

  it('does not give up on a bounded failure whose tries were interrupted by progress', () => {
    const twice = noteTransientFailure(
      noteTransientFailure(aRun(), { code: 'InvalidJson', message: 'm' }, now).run,
      { code: 'InvalidJson', message: 'm' },
      now,
    ).run;

    expect(noteTransientFailure(withoutLastError(twice), { code: 'InvalidJson', message: 'm' }, now).kind).toBe('retry');
  });

  it('counts every answer that was not JSON on the run, across progress', () => {
    const first = noteTransientFailure(aRun(), { code: 'InvalidJson', message: 'm' }, now).run;
    const second = noteTransientFailure(withoutLastError(first), { code: 'InvalidJson', message: 'm' }, now).run;
    const unrelated = noteTransientFailure(second, { code: 'Timeout', message: 'm' }, now).run;

    expect([first.malformedAnswers, second.malformedAnswers, unrelated.malformedAnswers]).toEqual([1, 2, 2]);
  });
});

describe('withoutLastError', () => {
  it('clears the last error and keeps everything else', () => {
    const noted = noteTransientFailure(aRun({ pollCount: 4 }), { code: 'InvalidJson', message: 'm' }, now).run;

    const cleared = withoutLastError(noted);

    expect(Object.fromEntries(Object.entries(cleared).filter(([, value]) => value !== undefined))).toEqual({ ...aRun({ pollCount: 4 }), malformedAnswers: 1 });
  });
});
