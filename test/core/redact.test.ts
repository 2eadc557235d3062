import { describe, expect, it } from 'vitest';
import { redactSecrets, redactUrl } from '../../src/core/redact';

const sas =
  'skoid=0c41&sktid=975f&skt=2023-12-13T00%3A37%3A17Z&sv=2021-08-06&se=2023-12-13T12%3A37%3A17Z&sr=d&sp=rl&sig=RpVY0WBGUHJ2APB3N76jtMak8loAWY4oiA0%2FaoJX1bM%3D';
const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlLXZhbHVl';

describe('redaction', () => {
  it('removes the query of any URL in a text', () => {
    const text = `copy from https://acct.blob.core.windows.net/c/dir/part-1.json.gz?${sas} failed`;
    const clean = redactSecrets(text);
    expect(clean).toBe('copy from https://acct.blob.core.windows.net/c/dir/part-1.json.gz?<redacted> failed');
    expect(clean).not.toContain('RpVY0');
  });

  it('removes SAS signatures that stand outside a URL', () => {
    expect(redactSecrets(`token ${sas}`)).not.toMatch(/RpVY0|0c41|975f/);
  });

  it('removes bearer tokens and bare JWTs', () => {
    expect(redactSecrets(`Authorization: Bearer ${jwt}`)).toBe('Authorization: Bearer <redacted>');
    expect(redactSecrets(`token was ${jwt}.`)).toBe('token was <redacted-token>.');
  });

  it('removes credentials written into a URL', () => {
    expect(redactSecrets('GET http://op:S3CRET@127.0.0.1:9/v1.0/ops/1 failed')).toBe('GET http://<redacted>@127.0.0.1:9/v1.0/ops/1 failed');
    expect(redactUrl('https://user:pw@gw.example/v1.0/op')).toBe('https://gw.example/v1.0/op');
  });

  it('keeps origin and path of a URL', () => {
    expect(redactUrl(`https://acct.blob.core.windows.net/c/a%20b.gz?${sas}#frag`)).toBe('https://acct.blob.core.windows.net/c/a%20b.gz');
    expect(redactUrl('not a url?sig=abc')).toBe('not a url');
  });
});
