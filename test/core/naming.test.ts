import { describe, expect, it } from 'vitest';
import {
  BILLED_KINDS,
  EXPORT_KINDS,
  UNBILLED_KINDS,
  billingMonthFor,
  destinationFolder,
  eTagSegment,
  exportKeyOf,
  exportKeyString,
  exportRequestFor,
  isBilledKind,
  parseInvoiceId,
} from '../../src/core/naming';

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

describe('export kinds', () => {
  it('are four, each either unbilled (by month and currency) or billed (by invoice)', () => {
    expect(EXPORT_KINDS).toEqual(['unbilled-usage', 'unbilled-reconciliation', 'billed-usage', 'billed-reconciliation']);
    expect(EXPORT_KINDS.filter(isBilledKind)).toEqual(BILLED_KINDS);
    expect(EXPORT_KINDS.filter((kind) => !isBilledKind(kind))).toEqual(UNBILLED_KINDS);
  });

  it('key and lay out an invoice by its id, an unbilled kind by month and currency', () => {
    const billed = { kind: 'billed-reconciliation', invoiceId: 'G016907411', attributeSet: 'basic' } as const;
    expect(exportKeyString(billed)).toBe('billed-reconciliation|G016907411|basic');
    expect(destinationFolder(billed, 'e1')).toBe('billed-reconciliation/G016907411/basic/e1/');
    const reconciliation = { ...key, kind: 'unbilled-reconciliation' } as const;
    expect(exportKeyString(reconciliation)).toBe('unbilled-reconciliation|2026-10|EUR|full');
    expect(destinationFolder(reconciliation, 'e1')).toBe('unbilled-reconciliation/2026-10/EUR/full/e1/');
    // Two kinds of one month never share a key or a folder.
    expect(exportKeyString(reconciliation)).not.toBe(exportKeyString(key));
  });

  it('keep only the key of a run or request', () => {
    expect(exportKeyOf({ ...key, runId: 'r1', billingPeriod: 'last' } as never)).toEqual(key);
    expect(exportKeyOf({ kind: 'billed-usage', invoiceId: 'G016907411', attributeSet: 'full', trigger: 'event' } as never)).toEqual({
      kind: 'billed-usage',
      invoiceId: 'G016907411',
      attributeSet: 'full',
    });
  });

  it("ask Graph with each kind's documented body", () => {
    expect(exportRequestFor({ ...key, billingPeriod: 'current' })).toEqual({
      kind: 'unbilled-usage',
      body: { currencyCode: 'EUR', billingPeriod: 'current', attributeSet: 'full' },
    });
    expect(exportRequestFor({ kind: 'billed-usage', invoiceId: 'G016907411', attributeSet: 'basic' })).toEqual({
      kind: 'billed-usage',
      body: { invoiceId: 'G016907411', attributeSet: 'basic' },
    });
  });
});

describe('parseInvoiceId', () => {
  it("takes 'G' and 9 digits, as Partner Center writes them", () => {
    expect(parseInvoiceId('G016907411')).toBe('G016907411');
  });

  it.each([
    ['G016907411/..'],
    ['G01 6907411'],
    ['016907411'],
    ['G12345678'],
    ['G0123456789'],
    ['GG016907411'],
    ['g016907411'],
    ['D016907411'],
    [''],
    [16907411],
    [undefined],
  ])('refuses %j', (value) => {
    expect(parseInvoiceId(value)).toBeUndefined();
  });
});
