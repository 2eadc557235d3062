import { describe, expect, it } from 'vitest';
import { cutIntoPieces } from '../../src/adapters/fileChecks';

/** Half of a surrogate pair without its other half. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('cutIntoPieces: a result too long for one Table property, in pieces', () => {
  it('never cuts between the halves of a surrogate pair, and the pieces join to the text', () => {
    // An emoji (two UTF-16 code units) across every cut.
    for (const before of [0, 1, 2, 3]) {
      const text = `${'x'.repeat(9 - before)}${'😀'.repeat(10)}`;
      const pieces = cutIntoPieces(text, 10);
      expect(pieces.join('')).toBe(text);
      for (const piece of pieces) {
        expect(piece.length).toBeLessThanOrEqual(10);
        expect(piece, JSON.stringify(piece)).not.toMatch(LONE_SURROGATE);
      }
    }
  });

  it('plain text is cut at exactly the size', () => {
    expect(cutIntoPieces('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(cutIntoPieces('', 4)).toEqual([]);
  });
});
