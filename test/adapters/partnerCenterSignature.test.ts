/**
 * The signature verifier against the emulated Partner Center sender: real RSA keys and X.509
 * certificates, the certificate downloaded over loopback HTTP, Node's crypto doing the checks.
 */
import { createServer, type RequestListener } from 'node:http';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../../emulator/httpServer';
import {
  ISSUING_CA_PATH,
  SIGNING_CERTIFICATE_PATH,
  startPartnerCenterEvents,
  type PartnerCenterEvents,
  type SendOptions,
} from '../../emulator/partnerCenterEvents';
import {
  createSignatureVerifier,
  RENEWAL_CHECK_AFTER_MS,
  WebhookSignatureError,
  type SignatureVerifierOptions,
} from '../../src/adapters/partnerCenterSignature';

let sender: PartnerCenterEvents;
const others: PartnerCenterEvents[] = [];
const servers: Array<ReturnType<typeof createServer>> = [];
beforeAll(async () => {
  sender = await startPartnerCenterEvents();
});
afterAll(async () => {
  await Promise.all([sender?.close(), ...others.map((other) => other.close()), ...servers.map((server) => closeServer(server))]);
});

async function otherSender(options: Parameters<typeof startPartnerCenterEvents>[0]): Promise<PartnerCenterEvents> {
  const started = await startPartnerCenterEvents(options);
  others.push(started);
  return started;
}

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  return `http://127.0.0.1:${await listenOnLoopback(server)}`;
}

const verifierFor = (from: PartnerCenterEvents, options: Partial<SignatureVerifierOptions> = {}) =>
  createSignatureVerifier({
    certificateHosts: ['127.0.0.1'],
    trustedRoots: [from.rootCertificatePem],
    ...options,
  });

function signed(from: PartnerCenterEvents, options: SendOptions = {}) {
  const { body, headers } = from.sign(from.invoiceReadyEvent('G016907411'), options);
  return { body, headers: new Headers(headers) };
}

async function rejection(promise: Promise<unknown>): Promise<WebhookSignatureError> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof WebhookSignatureError)) throw new Error(`expected a WebhookSignatureError, got ${String(error)}`);
  return error;
}

describe('a request signed by Partner Center', () => {
  it('verifies, naming the certificate it was signed with', async () => {
    const { body, headers } = signed(sender);
    const verified = await verifierFor(sender).verify(body, headers);
    expect(verified.certificateUrl).toBe(sender.certificateUrl);
    expect(verified.subject).toContain('O=Microsoft Corporation');
  });

  it('verifies with the signature in x-ms-signature (a registration with signatureTokenToMsSignatureHeader)', async () => {
    const { body, headers } = signed(sender, {
      signatureHeader: 'x-ms-signature',
    });
    expect(headers.has('authorization')).toBe(false);
    await expect(verifierFor(sender).verify(body, headers)).resolves.toMatchObject({ certificateUrl: sender.certificateUrl });
  });

  it('verifies when the certificate file bundles its issuing CA instead of naming it by AIA', async () => {
    const bundled = await otherSender({ chain: 'bundle' });
    const { body, headers } = signed(bundled);
    await expect(verifierFor(bundled).verify(body, headers)).resolves.toBeDefined();
  });
});

describe('a request not signed by Partner Center', () => {
  it('is refused when the body was changed after signing', async () => {
    const { body, headers } = signed(sender, { tamper: true });
    const error = await rejection(verifierFor(sender).verify(body, headers));
    expect(error.code).toBe('BadSignature');
    expect(error.transient).toBe(false);
  });

  it('is refused when signed with a key that is not the certificate’s', async () => {
    const { body, headers } = signed(sender, { wrongKey: true });
    expect((await rejection(verifierFor(sender).verify(body, headers))).code).toBe('BadSignature');
  });

  it.each([
    ['authorization', /Authorization header is missing/],
    ['x-ms-certificate-url', /X-MS-Certificate-Url header is missing/],
    ['x-ms-signature-algorithm', /X-MS-Signature-Algorithm header is missing: expected 'rsa-sha256'/],
  ])('is refused without the %s header, naming it', async (header, message) => {
    const { body, headers } = signed(sender, { omitHeaders: [header] });
    const error = await rejection(verifierFor(sender).verify(body, headers));
    expect(error.code).toBe('BadSignature');
    expect(error.message).toMatch(message);
  });

  it('is refused for another scheme, a non-base64 signature or another algorithm, without echoing the signature', async () => {
    const { body, headers } = signed(sender);
    const signature = headers.get('authorization')!.replace('Signature ', '');
    const verifier = verifierFor(sender);
    const withHeader = (name: string, value: string) => {
      const changed = new Headers(headers);
      changed.set(name, value);
      return verifier.verify(body, changed);
    };
    const errors = [
      await rejection(withHeader('authorization', `Bearer ${signature}`)),
      await rejection(withHeader('authorization', 'Signature not*base64')),
      await rejection(withHeader('x-ms-signature-algorithm', 'rsa-sha1')),
    ];
    expect(errors.map((error) => error.code)).toEqual(['BadSignature', 'BadSignature', 'BadSignature']);
    expect(errors[0]!.message).toMatch(/'Signature' scheme/);
    expect(errors[2]!.message).toMatch(/is 'rsa-sha1': expected 'rsa-sha256'/);
    for (const error of errors) expect(error.message).not.toContain(signature.slice(0, 16));
  });

  it('is refused when the signing certificate has expired, or is not valid yet', async () => {
    const day = 86_400_000;
    const expired = await otherSender({
      signingValidity: {
        notBefore: new Date(Date.now() - 400 * day),
        notAfter: new Date(Date.now() - day),
      },
    });
    const early = await otherSender({
      signingValidity: {
        notBefore: new Date(Date.now() + day),
        notAfter: new Date(Date.now() + 400 * day),
      },
    });
    for (const from of [expired, early]) {
      const { body, headers } = signed(from);
      const error = await rejection(verifierFor(from).verify(body, headers));
      expect(error.code).toBe('UntrustedCertificate');
      expect(error.message).toMatch(/is not valid now/);
    }
  });

  it('is refused when the certificate does not chain to a trusted root (another CA, or the system roots only)', async () => {
    const impostor = await otherSender({});
    const { body, headers } = signed(impostor);
    const error = await rejection(verifierFor(sender).verify(body, headers));
    expect(error.code).toBe('UntrustedCertificate');
    expect(error.message).toMatch(/'pcnotifications-dispatch\.microsoft\.com' does not chain to a trusted root/);
    expect((await rejection(verifierFor(impostor, { trustedRoots: rootCertificates }).verify(body, headers))).code).toBe('UntrustedCertificate');
  });

  it('is refused when the certificate is not issued to Microsoft Corporation', async () => {
    const contoso = await otherSender({ signingOrganisation: 'Contoso Ltd' });
    const { body, headers } = signed(contoso);
    const error = await rejection(verifierFor(contoso).verify(body, headers));
    expect(error.code).toBe('UntrustedCertificate');
    expect(error.message).toMatch(/subject organisation 'Contoso Ltd'.*expected 'Microsoft Corporation'/);
  });

  it('is refused when the certificate is issued to Microsoft Corporation by a CA that is not Microsoft’s', async () => {
    const reseller = await otherSender({
      issuerOrganisation: 'Fabrikam Certificates',
    });
    const { body, headers } = signed(reseller);
    const error = await rejection(verifierFor(reseller).verify(body, headers));
    expect(error.code).toBe('UntrustedCertificate');
    expect(error.message).toMatch(/issuer organisation 'Fabrikam Certificates'/);
  });

  it.each([
    ['a loopback host that is not allow-listed', (url: string) => url.replace('127.0.0.1', 'localhost')],
    ['another https host', () => 'https://certs.example.com/cert/pcnotifications-dispatch.microsoft.com.cer'],
    ['plain http on an allowed, non-loopback host', () => 'http://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer'],
    ['a non-default port on an allowed host', () => 'https://3psostorageacct.blob.core.windows.net:8443/cert/x.cer'],
    ['credentials in the URL', () => 'https://user:pass@3psostorageacct.blob.core.windows.net/cert/x.cer'],
    ['a relative URL', () => '/cert/pcnotifications-dispatch.microsoft.com.cer'],
  ])('is refused, without downloading anything, for a certificate on %s', async (_case, urlFor) => {
    const before = sender.certificateDownloads();
    const { body, headers } = signed(sender, {
      certificateUrl: urlFor(sender.certificateUrl),
    });
    const error = await rejection(
      verifierFor(sender, {
        certificateHosts: ['127.0.0.1', '3psostorageacct.blob.core.windows.net'],
      }).verify(body, headers),
    );
    expect(error.code).toBe('CertificateHostNotAllowed');
    expect(sender.certificateDownloads()).toBe(before);
  });

  it('is refused when the allowed host redirects the download to a host that is not allowed', async () => {
    const redirecting = await serve((_request, response) => {
      response
        .writeHead(302, {
          Location: sender.certificateUrl.replace('127.0.0.1', 'localhost'),
        })
        .end();
    });
    const { body, headers } = signed(sender, {
      certificateUrl: `${redirecting}${SIGNING_CERTIFICATE_PATH}`,
    });
    expect((await rejection(verifierFor(sender).verify(body, headers))).code).toBe('CertificateHostNotAllowed');
  });

  it('follows a redirect to an allowed URL', async () => {
    const redirecting = await serve((_request, response) => {
      response.writeHead(301, { Location: sender.certificateUrl }).end();
    });
    const { body, headers } = signed(sender, {
      certificateUrl: `${redirecting}${SIGNING_CERTIFICATE_PATH}`,
    });
    await expect(verifierFor(sender).verify(body, headers)).resolves.toBeDefined();
  });
});

describe('a certificate that cannot be fetched', () => {
  it('is a transient CertificateUnavailable: not found, a server error, too large, or nobody listening', async () => {
    const notFound = await serve((_request, response) => response.writeHead(404).end());
    const failing = await serve((_request, response) => response.writeHead(503).end());
    const huge = await serve((_request, response) => response.writeHead(200).end(Buffer.alloc(100_000, 0x41)));
    const closed = await serve(() => undefined);
    await closeServer(servers.pop()!);
    for (const origin of [notFound, failing, huge, closed]) {
      const { body, headers } = signed(sender, {
        certificateUrl: `${origin}${SIGNING_CERTIFICATE_PATH}`,
      });
      const error = await rejection(verifierFor(sender).verify(body, headers));
      expect(error.code, origin).toBe('CertificateUnavailable');
      expect(error.transient).toBe(true);
    }
  });

  it('is CertificateUnavailable when the download takes longer than the timeout', async () => {
    const hanging = await serve(() => undefined); // accepts, never answers
    const { body, headers } = signed(sender, {
      certificateUrl: `${hanging}${SIGNING_CERTIFICATE_PATH}`,
    });
    const error = await rejection(verifierFor(sender, { fetchTimeoutMs: 200 }).verify(body, headers));
    expect(error.code).toBe('CertificateUnavailable');
    expect(error.message).toMatch(/timed out/);
  });

  it('is UntrustedCertificate when the download is not a certificate', async () => {
    const junk = await serve((_request, response) => response.writeHead(200).end('<html>hello</html>'));
    const { body, headers } = signed(sender, {
      certificateUrl: `${junk}${SIGNING_CERTIFICATE_PATH}`,
    });
    const error = await rejection(verifierFor(sender).verify(body, headers));
    expect(error.code).toBe('UntrustedCertificate');
    expect(error.message).toMatch(/is not an X\.509 certificate/);
  });

  it('is retried on the next request after a failure, not cached', async () => {
    let up = false;
    const flaky = await serve((_request, response) => {
      if (!up) return void response.writeHead(503).end();
      response.writeHead(302, { Location: sender.certificateUrl }).end();
    });
    const verifier = verifierFor(sender);
    const { body, headers } = signed(sender, {
      certificateUrl: `${flaky}${SIGNING_CERTIFICATE_PATH}`,
    });
    expect((await rejection(verifier.verify(body, headers))).code).toBe('CertificateUnavailable');
    up = true;
    await expect(verifier.verify(body, headers)).resolves.toBeDefined();
  });
});

describe('the certificate cache', () => {
  it('downloads the certificate once for many events, including concurrent ones', async () => {
    const fresh = await otherSender({});
    const verifier = verifierFor(fresh);
    const requests = Array.from({ length: 8 }, () => signed(fresh));
    await Promise.all(requests.slice(0, 4).map(({ body, headers }) => verifier.verify(body, headers)));
    for (const { body, headers } of requests.slice(4)) await verifier.verify(body, headers);
    expect(fresh.certificateDownloads()).toBe(1);
  });

  it('downloads it again once the cache time has passed', async () => {
    const fresh = await otherSender({});
    let now = Date.now();
    const verifier = verifierFor(fresh, {
      cacheTtlMs: 60_000,
      now: () => new Date(now),
    });
    const { body, headers } = signed(fresh);
    await verifier.verify(body, headers);
    now += 59_000;
    await verifier.verify(body, headers);
    expect(fresh.certificateDownloads()).toBe(1);
    now += 2_000;
    await verifier.verify(body, headers);
    expect(fresh.certificateDownloads()).toBe(2);
  });

  it('never uses a cached certificate past its notAfter', async () => {
    const notAfter = Date.now() + 30_000;
    const shortLived = await otherSender({
      signingValidity: {
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(notAfter),
      },
    });
    let now = Date.now();
    const verifier = verifierFor(shortLived, {
      cacheTtlMs: 3_600_000,
      now: () => new Date(now),
    });
    const { body, headers } = signed(shortLived);
    await verifier.verify(body, headers);
    now = notAfter + 1_000;
    const error = await rejection(verifier.verify(body, headers));
    expect(error.code).toBe('UntrustedCertificate');
    expect(shortLived.certificateDownloads()).toBe(2);
  });

  it('downloads a renewed certificate behind the same URL when a signature no longer matches the cached one', async () => {
    const renewing = await otherSender({});
    let now = Date.now();
    const verifier = verifierFor(renewing, { now: () => new Date(now) });
    const before = signed(renewing);
    await verifier.verify(before.body, before.headers);
    renewing.renewSigningCertificate();
    const after = signed(renewing);
    // Right after a download, a mismatch is just a bad signature: no download per forged request.
    expect((await rejection(verifier.verify(after.body, after.headers))).code).toBe('BadSignature');
    expect(renewing.certificateDownloads()).toBe(1);
    now += RENEWAL_CHECK_AFTER_MS;
    await expect(verifier.verify(after.body, after.headers)).resolves.toBeDefined();
    expect(renewing.certificateDownloads()).toBe(2);
    // A forged signature still fails against the renewed certificate, and is not re-downloaded for.
    const forged = signed(renewing, { wrongKey: true });
    expect((await rejection(verifier.verify(forged.body, forged.headers))).code).toBe('BadSignature');
    expect(renewing.certificateDownloads()).toBe(2);
  });

  it('holds a bounded number of certificates', async () => {
    const [first, second] = [await otherSender({}), await otherSender({})];
    const verifier = createSignatureVerifier({
      certificateHosts: ['127.0.0.1'],
      trustedRoots: [first.rootCertificatePem, second.rootCertificatePem],
      maxCachedCertificates: 1,
    });
    for (const from of [first, second, first]) {
      const { body, headers } = signed(from);
      await verifier.verify(body, headers);
    }
    expect(first.certificateDownloads()).toBe(2);
    expect(second.certificateDownloads()).toBe(1);
  });
});

describe('the emulated issuer', () => {
  it('is served where the signing certificate’s AIA points', async () => {
    const response = await fetch(sender.certificateUrl.replace(SIGNING_CERTIFICATE_PATH, ISSUING_CA_PATH));
    expect(response.status).toBe(200);
  });
});
