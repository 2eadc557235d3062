import { describe, expect, it } from 'vitest';
import { parseSettings } from '../../src/core/settings';
import { minimal, problemsOf } from '../support/settings';

describe('GRAPH_TOKEN_SCOPE', () => {
  it("is Microsoft Graph's, whatever host GRAPH_BASE_URL names", () => {
    expect(parseSettings(minimal).graphTokenScope).toBe('https://graph.microsoft.com/.default');
    expect(parseSettings({ ...minimal, GRAPH_BASE_URL: 'https://graph-proxy.contoso.example/v1.0' }).graphTokenScope).toBe(
      'https://graph.microsoft.com/.default',
    );
    expect(parseSettings({ ...minimal, GRAPH_BASE_URL: 'http://127.0.0.1:8080/v1.0' }).graphTokenScope).toBe('https://graph.microsoft.com/.default');
  });

  it.each(['https://graph.microsoft.com/.default', 'api://billing-gateway/.default', '00000003-0000-0000-c000-000000000000/.default'])(
    'accepts %s',
    (scope) => {
      expect(parseSettings({ ...minimal, GRAPH_TOKEN_SCOPE: scope }).graphTokenScope).toBe(scope);
    },
  );

  it.each([
    ['without /.default', 'https://graph.microsoft.com'],
    ['with two scopes', 'https://graph.microsoft.com/.default https://storage.azure.com/.default'],
    ['over plain http', 'http://graph.microsoft.com/.default'],
    ['with a query', 'https://graph.microsoft.com?x=1/.default'],
    ['that is a bare word', 'graph/.default'],
  ])('refuses a scope %s, naming the setting and the form it expects', (_case, scope) => {
    expect(problemsOf({ ...minimal, GRAPH_TOKEN_SCOPE: scope })).toEqual([
      `GRAPH_TOKEN_SCOPE is '${scope}': expected one scope '<resource>/.default' with an https URL or application id as the resource, such as https://graph.microsoft.com/.default`,
    ]);
  });
});
