import { describe, expect, it } from 'vitest';
import { billingMonthFor, destinationFolder, eTagSegment, exportKeyString } from '../../src/core/naming';

const key = { kind: 'unbilled-usage', billingMonth: '2026-10', currency: 'EUR', attributeSet: 'full' } as const;

describe('billingMonthFor', () => {
  it.each([
    ['last', '2026-11-03T06:00:00Z', '2026-10'],
    ['current', '2026-11-03T06:00:00Z', '2026-11'],
    ['last', '2026-01-03T06:00:00Z', '2025-12'],
    ['current', '2026-12-31T23:59:59Z', '2026-12'],
    ['last', '2026-03-01T00:00:00Z', '2026-02'],
  ] as const)('%s at %s is %s (UTC)', (period, now, expected) => {
    expect(billingMonthFor(period, new Date(now))).toBe(expected);
  });
});

describe('destination naming', () => {
  it('is deterministic: the same export lands in the same folder', () => {
    expect(destinationFolder(key, 'WYjLro78HdMg6vUWR')).toBe('unbilled-usage/2026-10/EUR/full/WYjLro78HdMg6vUWR/');
    expect(exportKeyString(key)).toBe('unbilled-usage|2026-10|EUR|full');
  });

  it('keeps a safe eTag as it is', () => {
    expect(eTagSegment('0x8DC1-abc_1.2')).toBe('0x8DC1-abc_1.2');
  });

  it('makes an unsafe eTag one folder, distinct from its look-alikes', () => {
    const quoted = eTagSegment('"0x8D/../x"');
    expect(quoted).toMatch(/^0x8D-x-[0-9a-f]{12}$/);
    expect(quoted).not.toContain('/');
    expect(eTagSegment('"0x8D/../x"')).toBe(quoted);
    expect(eTagSegment('0x8D/../x')).not.toBe(quoted);
    expect(eTagSegment('..')).toMatch(/^[0-9a-f]{12}$/);
  });
});
