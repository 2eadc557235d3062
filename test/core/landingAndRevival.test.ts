/** The pure rules behind one landing at a time, revivals without progress, names and delays. */
import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors';
import { parseManifest } from '../../src/core/manifest';
import { MANIFEST_FILE_NAME, isAppFileName } from '../../src/core/naming';
import { queueDelaySeconds } from '../../src/core/polling';
import { landingClaimedByOther, progressMark, revivalsWithoutProgress } from '../../src/core/run';
import { MAX_QUEUE_DELAY_SECONDS } from '../../src/core/settings';
import { aRun } from '../support/runs';

const now = new Date('2026-11-04T06:00:00.000Z');
const inSeconds = (seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

describe('landingClaimedByOther', () => {
  it('is the claim expiry while another landing holds a fresh claim', () => {
    const run = aRun({ state: 'copying', landingClaimId: 'a', landingClaimedUntil: inSeconds(30) });
    expect(landingClaimedByOther(run, undefined, now)).toEqual(new Date(inSeconds(30)));
    expect(landingClaimedByOther(run, 'b', now)).toEqual(new Date(inSeconds(30)));
  });

  it('is undefined for no claim, a stale claim, or the caller own claim', () => {
    expect(landingClaimedByOther(aRun({ state: 'copying' }), undefined, now)).toBeUndefined();
    expect(landingClaimedByOther(aRun({ landingClaimId: 'a', landingClaimedUntil: inSeconds(-1) }), undefined, now)).toBeUndefined();
    expect(landingClaimedByOther(aRun({ landingClaimId: 'a', landingClaimedUntil: inSeconds(0) }), undefined, now)).toBeUndefined();
    expect(landingClaimedByOther(aRun({ landingClaimId: 'a', landingClaimedUntil: inSeconds(30) }), 'a', now)).toBeUndefined();
  });
});

describe('revivalsWithoutProgress', () => {
  it('counts revivals while the run stands where the last revival found it', () => {
    const run = aRun({ state: 'polling', seq: 4, revivals: 2, revivedAtMark: progressMark({ state: 'polling', seq: 4 }) });
    expect(revivalsWithoutProgress(run)).toBe(2);
  });

  it('starts again once the step or the state has moved since the last revival', () => {
    const mark = progressMark({ state: 'polling', seq: 4 });
    expect(revivalsWithoutProgress(aRun({ state: 'polling', seq: 5, revivals: 2, revivedAtMark: mark }))).toBe(0);
    expect(revivalsWithoutProgress(aRun({ state: 'copying', seq: 4, revivals: 2, revivedAtMark: mark }))).toBe(0);
  });

  it('is 0 for a run never revived, and keeps the count of a row from before the mark existed', () => {
    expect(revivalsWithoutProgress(aRun())).toBe(0);
    expect(revivalsWithoutProgress(aRun({ revivals: 2 }))).toBe(2);
  });
});

describe('names the app writes itself', () => {
  it.each([
    'manifest.json',
    'Manifest.JSON',
    'MANIFEST.json',
    'sub/manifest.json',
    'a/b/MaNiFeSt.JsOn',
    'manifest.json.',
    'manifest.json ',
    'manifest.json. .',
    'parquet/part-0.json.gz.parquet',
    'Parquet/x.json.gz',
    '/parquet/y',
  ])('%s passes for a file the app writes', (name) => {
    expect(isAppFileName(name)).toBe(true);
  });

  it.each([
    'manifest.json.gz',
    'part-00000-manifest.json',
    'manifest-json',
    'manifest.jsonl',
    'manifest.json/part-0.json.gz',
    'part-0.parquet',
    'sub/parquet/part-0.json.gz',
    'parquetry/part-0.json.gz',
  ])('%s does not', (name) => {
    expect(isAppFileName(name)).toBe(false);
  });

  it('a Graph manifest listing such a file is refused, naming it and why', () => {
    const body = {
      eTag: 'e1',
      rootDirectory: 'https://acct.blob.core.windows.net/c/dir',
      sasToken: 'sv=1&sig=x',
      blobCount: 3,
      blobs: [
        { name: 'part-0.json.gz', partitionValue: 'default' },
        { name: 'nested/Manifest.Json', partitionValue: 'default' },
        { name: 'parquet/part-0.json.gz.parquet', partitionValue: 'default' },
      ],
    };
    expect(() => parseManifest(body, ['.blob.core.windows.net'])).toThrow(ManifestError);
    try {
      parseManifest(body, ['.blob.core.windows.net']);
    } catch (error) {
      expect((error as ManifestError).problems).toEqual([
        `blobs[1].name 'nested/Manifest.Json' is named like the ${MANIFEST_FILE_NAME} this app writes last: expected a data file (consumers trigger on ${MANIFEST_FILE_NAME})`,
        "blobs[2].name 'parquet/part-0.json.gz.parquet' is in the parquet/ folder where this app writes its Parquet copies: expected a data file outside it",
      ]);
    }
  });
});

describe('queueDelaySeconds', () => {
  it('holds a delay to whole seconds within the queue limit of 7 days', () => {
    expect(MAX_QUEUE_DELAY_SECONDS).toBe(604_800);
    expect(queueDelaySeconds(1.2)).toBe(2);
    expect(queueDelaySeconds(-5)).toBe(0);
    expect(queueDelaySeconds(MAX_QUEUE_DELAY_SECONDS)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelaySeconds(MAX_QUEUE_DELAY_SECONDS + 0.5)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelaySeconds(30 * 86_400)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelaySeconds(Number.POSITIVE_INFINITY)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelaySeconds(Number.NaN)).toBe(0);
  });
});
