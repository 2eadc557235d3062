import { describe, expect, it } from 'vitest';
import { interpretOperation } from '../../src/core/operation';

const type = (name: string) => `#microsoft.graph.partners.billing.${name}`;

describe('interpretOperation', () => {
  it.each([
    ['notStarted', { '@odata.type': type('runningOperation'), status: 'notStarted' }, { kind: 'pending', status: 'notStarted' }],
    ['lower-case notstarted (older APIs)', { '@odata.type': type('runningOperation'), status: 'notstarted' }, { kind: 'pending', status: 'notStarted' }],
    ['running', { '@odata.type': type('runningOperation'), status: 'running' }, { kind: 'pending', status: 'running' }],
    ['running without @odata.type', { status: 'Running' }, { kind: 'pending', status: 'running' }],
  ])('reads %s as pending', (_case, body, expected) => {
    expect(interpretOperation(body)).toEqual(expected);
  });

  it.each([
    [
      'succeeded + navigation link (the docs)',
      { '@odata.type': type('exportSuccessOperation'), status: 'succeeded', 'resourceLocation@odata.navigationLink': 'https://graph/m/1' },
    ],
    [
      'completed (the resource page)',
      { '@odata.type': type('exportSuccessOperation'), status: 'completed', 'resourceLocation@odata.navigationLink': 'https://graph/m/1' },
    ],
    ['Succeeded, other casing, no @odata.type', { status: 'Succeeded', 'resourceLocation@odata.navigationLink': 'https://graph/m/1' }],
    ['a string resourceLocation', { status: 'succeeded', resourceLocation: 'https://graph/m/1' }],
    [
      '@odata.type without the leading #, other casing',
      { '@odata.type': 'Microsoft.Graph.Partners.Billing.ExportSuccessOperation', 'resourceLocation@odata.navigationLink': 'https://graph/m/1' },
    ],
  ])('reads %s as a manifest link', (_case, body) => {
    expect(interpretOperation(body)).toEqual({ kind: 'succeeded', manifest: { kind: 'link', url: 'https://graph/m/1' } });
  });

  it('takes an inline resourceLocation manifest (the samples and SDKs)', () => {
    const manifest = { id: 'm', blobCount: 0, blobs: [] };
    expect(interpretOperation({ '@odata.type': type('exportSuccessOperation'), status: 'succeeded', resourceLocation: manifest })).toEqual({
      kind: 'succeeded',
      manifest: { kind: 'inline', manifest },
    });
  });

  it('trusts @odata.type over a contradicting status', () => {
    expect(interpretOperation({ '@odata.type': type('failedOperation'), status: 'running', error: { code: '5000', message: 'No data available' } }).kind).toBe(
      'failed',
    );
  });

  it("reads a failed operation's error code and message", () => {
    expect(interpretOperation({ '@odata.type': type('failedOperation'), status: 'failed', error: { message: 'No data available', code: '5000' } })).toEqual({
      kind: 'failed',
      code: '5000',
      message: 'No data available',
    });
    expect(interpretOperation({ status: 'failed', error: { code: 5000 } })).toEqual({
      kind: 'failed',
      code: '5000',
      message: 'Graph reported the export failed without an error message',
    });
    expect(interpretOperation({ status: 'failed' })).toMatchObject({ kind: 'failed', code: 'unknown' });
  });

  it.each([
    ['an unknown status', { status: 'unknownFutureValue' }, /unknown status 'unknownFutureValue'/],
    ['no status at all', { id: 'x' }, /unknown status '\(none\)'/],
    ['success without a manifest', { status: 'succeeded' }, /neither a resourceLocation object nor/],
    ['an array', [], /is an array: expected a JSON object/],
    ['null', null, /is null/],
    ['a string', 'oops', /is the string 'oops'/],
  ])('fails clearly on %s instead of polling forever', (_case, body, reason) => {
    const state = interpretOperation(body);
    expect(state.kind).toBe('invalid');
    expect(state.kind === 'invalid' && state.reason).toMatch(reason);
  });
});
