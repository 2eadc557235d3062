import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../../src/errors';
import { encodePollMessage, parsePollMessage } from '../../src/core/pollMessage';

const message = { v: 1, runId: '6fe687d7-1e0f-4bd6-9091-4672691f64bc', seq: 3 } as const;

describe('poll messages', () => {
  it('are base64 JSON, which the Functions queue trigger decodes by default', () => {
    const text = encodePollMessage(message);
    expect(text).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(Buffer.from(text, 'base64').toString('utf8'))).toEqual(message);
  });

  it('parse from what the host hands over (an object), base64 text and JSON text', () => {
    expect(parsePollMessage(message)).toEqual(message);
    expect(parsePollMessage(encodePollMessage(message))).toEqual(message);
    expect(parsePollMessage(JSON.stringify(message))).toEqual(message);
  });

  it('carry the file a data check message checks and how often it came back early, both ways', () => {
    const returning = { ...message, file: 7, early: 3 };
    expect(parsePollMessage(encodePollMessage(returning))).toEqual(returning);
  });

  it('drop unknown fields', () => {
    expect(parsePollMessage({ ...message, sas: 'sig=secret' })).toEqual(message);
  });

  it.each([
    ['a non-object', 42, /poll message is a number: expected a JSON object/],
    ['the wrong version', { ...message, v: 2 }, /'v' is 2: expected 1/],
    ['a missing run id', { v: 1, seq: 0 }, /'runId' is missing: expected a lower-case GUID/],
    ['a negative seq', { ...message, seq: -1 }, /'seq' is -1: expected a whole number >= 0/],
    ['an early count of 0', { ...message, early: 0 }, /'early' is 0: expected a whole number >= 1/],
    ['text that is not JSON', 'hello world', /not JSON \(nor base64-encoded JSON\)/],
    ['an oversized text', 'A'.repeat(5000), /5000 bytes: expected at most 4096/],
  ])('reject %s with a message naming the problem', (_case, raw, expected) => {
    expect(() => parsePollMessage(raw)).toThrow(InvalidMessageError);
    expect(() => parsePollMessage(raw)).toThrow(expected);
  });
});
