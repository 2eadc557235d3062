/**
 * Verifies that a webhook request was signed by Partner Center.
 *
 * What Partner Center documents ("Receiving events" and "How to authenticate the callback",
 * https://learn.microsoft.com/partner-center/developer/partner-center-webhooks):
 *   - every event is signed with a certificate "that chains to the Microsoft Root"; the request
 *     links to it, so Microsoft can renew it without the receiver re-deploying;
 *   - headers: `Authorization: Signature <base64 signature of the content>`,
 *     `X-MS-Certificate-Url` (the documented sample is
 *     https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer,
 *     older revisions .../pcnotifications.microsoft.com.cer) and `X-MS-Signature-Algorithm: rsa-sha256`;
 *     a registration made with `"signatureTokenToMsSignatureHeader": true` carries the signature
 *     in `x-ms-signature` instead (for receivers that cannot see Authorization, e.g. Power Automate);
 *   - steps: the three headers are present; download the certificate; verify its chain; verify its
 *     "Organization"; read the content as UTF-8 bytes; verify the RSA signature over exactly those
 *     bytes with the named hash (SHA256).
 *   - The documented C# sample accepts a certificate when `X509Certificate2.Verify()` (chain to a
 *     trusted root, validity now) holds and its Issuer contains `O=Microsoft Corporation`.
 *
 * What this adds, because the samples trust whatever URL the request names: the certificate URL
 * must be https on an allow-listed host (WEBHOOK_CERTIFICATE_HOSTS, default the documented
 * 3psostorageacct.blob.core.windows.net; plain http only for a loopback host); redirects are
 * followed only to allowed URLs; downloads are bounded in size and time; the certificate must
 * be an RSA leaf (not a CA) whose subject AND issuer organisation are `Microsoft Corporation`,
 * valid now, chaining (through intermediates bundled with it or named by its Authority Information
 * Access "CA Issuers" URL, as Windows' chain engine fetches them) to one of `trustedRoots`. The
 * verified certificate is cached per URL, never past its notAfter; a signature that does not match
 * a certificate downloaded over a minute ago downloads it once more (a renewal behind the same URL).
 * Not checked: revocation (no CRL/OCSP client in Node). The signature covers only the body (no
 * timestamp or nonce), so replays are handled by the caller's dedupe, not here.
 *
 * Verification uses Node's crypto (OpenSSL): X509Certificate for parsing and issuer signatures,
 * crypto.verify for the RSA PKCS#1 v1.5 SHA-256 signature.
 */
import { X509Certificate, verify as verifySignature } from 'node:crypto';
import { isAllowedHost, isLoopbackHost } from '../core/hosts';
import { redactUrl } from '../core/redact';

export type SignatureErrorCode = 'BadSignature' | 'UntrustedCertificate' | 'CertificateHostNotAllowed' | 'CertificateUnavailable';

/**
 * Why a request was not verified. `transient` (CertificateUnavailable only) means the sender
 * should retry later; every other code means the request is not from Partner Center.
 * Messages name headers and the certificate URL (without query), never the signature.
 */
export class WebhookSignatureError extends Error {
  override readonly name = 'WebhookSignatureError';
  constructor(
    readonly code: SignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
  get transient(): boolean {
    return this.code === 'CertificateUnavailable';
  }
}

/** The headers of a request (the Functions `Headers` and fetch's both fit). */
export interface RequestHeaders {
  get(name: string): string | null;
}

export interface VerifiedSender {
  readonly certificateUrl: string;
  readonly subject: string;
  readonly fingerprint256: string;
}

export interface SignatureVerifier {
  /** Resolves when `body` was signed by a trusted Partner Center certificate; else throws WebhookSignatureError. */
  verify(body: Uint8Array, headers: RequestHeaders): Promise<VerifiedSender>;
}

export interface SignatureVerifierOptions {
  /** Hosts the certificate may come from: exact names or suffixes starting with a dot. */
  readonly certificateHosts: readonly string[];
  /** Trust anchors (PEM). The composition root passes Node's `tls.rootCertificates`. */
  readonly trustedRoots: readonly string[];
  readonly now?: () => Date;
  /** Per download (certificate or issuer). @default 10000 */
  readonly fetchTimeoutMs?: number;
  /** @default 65536 */
  readonly maxCertificateBytes?: number;
  /** How long a verified certificate is reused (never past its notAfter). @default 3600000 (1 h) */
  readonly cacheTtlMs?: number;
  /** @default 16 */
  readonly maxCachedCertificates?: number;
}

export const EXPECTED_ORGANISATION = 'Microsoft Corporation';
const SIGNATURE_ALGORITHM = 'rsa-sha256';
const MAX_REDIRECTS = 3;
/** Leaf, then at most this many intermediates before a root. */
const MAX_INTERMEDIATES = 4;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

interface CachedCertificate {
  readonly certificate: X509Certificate;
  /** The leaf and intermediates that chained to a root, re-checked for validity on each use. */
  readonly chain: readonly X509Certificate[];
  readonly expiresAt: number;
  readonly loadedAt: number;
}

/**
 * A signature that does not match a certificate downloaded at least this long ago makes the
 * verifier download it again, once: Microsoft renews the certificate behind the same URL.
 * The minimum age keeps a stream of forged requests from turning into a stream of downloads.
 */
export const RENEWAL_CHECK_AFTER_MS = 60_000;

export function createSignatureVerifier(options: SignatureVerifierOptions): SignatureVerifier {
  const now = options.now ?? (() => new Date());
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 10_000;
  const maxBytes = options.maxCertificateBytes ?? 64 * 1024;
  const cacheTtlMs = options.cacheTtlMs ?? 3_600_000;
  const maxCached = options.maxCachedCertificates ?? 16;
  const roots = options.trustedRoots.map((pem) => new X509Certificate(pem));
  // Promises, so concurrent events for one URL share one download.
  const cache = new Map<string, Promise<CachedCertificate>>();

  async function certificateFor(url: URL, replacing?: CachedCertificate): Promise<CachedCertificate> {
    const key = url.href;
    const cached = cache.get(key);
    if (cached) {
      const entry = await cached.catch(() => undefined);
      if (entry && entry !== replacing && entry.expiresAt > now().getTime() && entry.chain.every((c) => isValidAt(c, now()))) return entry;
      if (cache.get(key) === cached) cache.delete(key);
    }
    const loading = loadVerified(url);
    cache.set(key, loading);
    while (cache.size > maxCached) cache.delete(cache.keys().next().value as string);
    loading.catch(() => {
      if (cache.get(key) === loading) cache.delete(key);
    });
    return loading;
  }

  async function loadVerified(url: URL): Promise<CachedCertificate> {
    const certificates = parseCertificates(await download(url, 'the signing certificate', true), redactUrl(url.href));
    const leaf = certificates[0]!;
    const at = now();
    checkLeaf(leaf, at, url);
    const chain = await chainToRoot(leaf, certificates.slice(1), at);
    return {
      certificate: leaf,
      chain,
      expiresAt: Math.min(at.getTime() + cacheTtlMs, notAfter(leaf)),
      loadedAt: at.getTime(),
    };
  }

  async function chainToRoot(leaf: X509Certificate, bundled: readonly X509Certificate[], at: Date): Promise<X509Certificate[]> {
    const chain = [leaf];
    let current = leaf;
    for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
      const root = roots.find((candidate) => issued(candidate, current) && isValidAt(candidate, at));
      if (root) return chain;
      if (depth === MAX_INTERMEDIATES) break;
      let issuer = bundled.find((candidate) => candidate.ca && issued(candidate, current));
      issuer ??= await issuerFromAuthorityInfoAccess(current);
      if (!issuer) break;
      if (!isValidAt(issuer, at)) {
        throw new WebhookSignatureError(
          'UntrustedCertificate',
          `the certificate's issuer '${commonName(issuer)}' is not valid now (valid ${issuer.validFrom} to ${issuer.validTo})`,
        );
      }
      chain.push(issuer);
      current = issuer;
    }
    throw new WebhookSignatureError('UntrustedCertificate', `the signing certificate '${commonName(leaf)}' does not chain to a trusted root`);
  }

  /** The issuer named by the certificate's AIA "CA Issuers" URL; its signature is checked, so plain http is fine. */
  async function issuerFromAuthorityInfoAccess(certificate: X509Certificate): Promise<X509Certificate | undefined> {
    const urls = [...(certificate.infoAccess ?? '').matchAll(/^CA Issuers - URI:(\S+)$/gm)].map((m) => m[1]!);
    for (const href of urls) {
      let url: URL;
      try {
        url = new URL(href);
      } catch {
        continue;
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
      const candidates = parseCertificates(await download(url, `the issuer certificate of '${commonName(certificate)}'`, false), redactUrl(url.href));
      const issuer = candidates.find((candidate) => candidate.ca && issued(candidate, certificate));
      if (issuer) return issuer;
    }
    return undefined;
  }

  /** GET with no automatic redirects, a deadline and a size cap. */
  async function download(start: URL, what: string, checkHost: boolean): Promise<Buffer> {
    let url = start;
    for (let hop = 0; ; hop++) {
      if (checkHost) checkCertificateUrl(url, options.certificateHosts);
      let response: Response;
      try {
        response = await fetch(url, {
          redirect: 'manual',
          signal: AbortSignal.timeout(fetchTimeoutMs),
        });
      } catch (error) {
        throw new WebhookSignatureError('CertificateUnavailable', `could not download ${what} from ${redactUrl(url.href)}: ${reason(error)}`);
      }
      if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS)
          throw new WebhookSignatureError('CertificateUnavailable', `${what} at ${redactUrl(start.href)} redirects more than ${MAX_REDIRECTS} times`);
        url = new URL(response.headers.get('location')!, url);
        continue;
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new WebhookSignatureError(
          'CertificateUnavailable',
          `${what} at ${redactUrl(url.href)} answered HTTP ${response.status}: expected 200 with the certificate`,
        );
      }
      return readBounded(response, maxBytes, what, url);
    }
  }

  return {
    async verify(body, headers) {
      const signature = signatureFrom(headers);
      const algorithm = headers.get('x-ms-signature-algorithm')?.trim();
      if (!algorithm) throw new WebhookSignatureError('BadSignature', `the X-MS-Signature-Algorithm header is missing: expected '${SIGNATURE_ALGORITHM}'`);
      if (algorithm.toLowerCase() !== SIGNATURE_ALGORITHM) {
        throw new WebhookSignatureError(
          'BadSignature',
          `the X-MS-Signature-Algorithm header is '${algorithm.slice(0, 40)}': expected '${SIGNATURE_ALGORITHM}'`,
        );
      }
      const certificateUrl = headers.get('x-ms-certificate-url')?.trim();
      if (!certificateUrl)
        throw new WebhookSignatureError('BadSignature', 'the X-MS-Certificate-Url header is missing: expected the https URL of the signing certificate');
      let url: URL;
      try {
        url = new URL(certificateUrl);
      } catch {
        throw new WebhookSignatureError(
          'CertificateHostNotAllowed',
          `the X-MS-Certificate-Url header is not an absolute URL: expected https://<allowed host>/...`,
        );
      }
      // The URL (and each redirect) is checked against the allow-list before anything is downloaded.
      // RSA PKCS#1 v1.5 with SHA-256 over the exact bytes received.
      const signedBy = (entry: CachedCertificate) => verifySignature('sha256', body, entry.certificate.publicKey, signature);
      let entry = await certificateFor(url);
      if (!signedBy(entry) && now().getTime() - entry.loadedAt >= RENEWAL_CHECK_AFTER_MS) entry = await certificateFor(url, entry);
      const certificate = entry.certificate;
      if (!signedBy(entry)) {
        throw new WebhookSignatureError('BadSignature', `the signature does not match the body for the certificate at ${redactUrl(url.href)}`);
      }
      return {
        certificateUrl: redactUrl(url.href),
        subject: certificate.subject,
        fingerprint256: certificate.fingerprint256,
      };
    },
  };
}

/** https on an allowed host and its default port; plain http (any port) only for loopback. */
function checkCertificateUrl(url: URL, allowedHosts: readonly string[]): void {
  const shown = redactUrl(url.href);
  const loopback = isLoopbackHost(url.hostname);
  const schemeOk = url.protocol === 'https:' || (url.protocol === 'http:' && loopback);
  if (!schemeOk || url.username || url.password || (url.port !== '' && !loopback) || !isAllowedHost(url.hostname, allowedHosts)) {
    throw new WebhookSignatureError(
      'CertificateHostNotAllowed',
      `the certificate URL ${shown} is not allowed: expected https on one of ${allowedHosts.join(', ')} (WEBHOOK_CERTIFICATE_HOSTS)`,
    );
  }
}

function signatureFrom(headers: RequestHeaders): Buffer {
  const authorization = headers.get('authorization')?.trim();
  const msSignature = headers.get('x-ms-signature')?.trim();
  let encoded: string;
  if (authorization) {
    const match = /^Signature\s+(\S+)$/i.exec(authorization);
    if (!match) throw new WebhookSignatureError('BadSignature', "the Authorization header does not use the 'Signature' scheme: expected 'Signature <base64>'");
    encoded = match[1]!;
  } else if (msSignature) {
    encoded = msSignature.replace(/^Signature\s+/i, '');
  } else {
    throw new WebhookSignatureError('BadSignature', "the Authorization header is missing: expected 'Signature <base64>' (or an x-ms-signature header)");
  }
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) throw new WebhookSignatureError('BadSignature', 'the signature is not base64');
  return Buffer.from(encoded, 'base64');
}

function checkLeaf(leaf: X509Certificate, at: Date, url: URL): void {
  const where = redactUrl(url.href);
  if (!isValidAt(leaf, at)) {
    throw new WebhookSignatureError(
      'UntrustedCertificate',
      `the signing certificate at ${where} is not valid now (valid ${leaf.validFrom} to ${leaf.validTo})`,
    );
  }
  if (leaf.ca)
    throw new WebhookSignatureError('UntrustedCertificate', `the certificate at ${where} is a CA certificate: expected a signing (end-entity) certificate`);
  if (leaf.publicKey.asymmetricKeyType !== 'rsa') {
    throw new WebhookSignatureError(
      'UntrustedCertificate',
      `the certificate at ${where} has a ${leaf.publicKey.asymmetricKeyType ?? 'unknown'} key: expected RSA for rsa-sha256`,
    );
  }
  const subjectOrg = organisation(leaf.subject);
  const issuerOrg = organisation(leaf.issuer);
  if (subjectOrg !== EXPECTED_ORGANISATION || issuerOrg !== EXPECTED_ORGANISATION) {
    throw new WebhookSignatureError(
      'UntrustedCertificate',
      `the certificate at ${where} has subject organisation '${subjectOrg ?? ''}' and issuer organisation '${issuerOrg ?? ''}': expected '${EXPECTED_ORGANISATION}' for both`,
    );
  }
}

function parseCertificates(bytes: Buffer, where: string): X509Certificate[] {
  const text = bytes.toString('latin1');
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  try {
    // A .cer file is DER or PEM; a PEM file may bundle the intermediates after the leaf.
    return pems ? pems.map((pem) => new X509Certificate(pem)) : [new X509Certificate(bytes)];
  } catch {
    throw new WebhookSignatureError('UntrustedCertificate', `${where} is not an X.509 certificate (DER or PEM)`);
  }
}

async function readBounded(response: Response, maxBytes: number, what: string, url: URL): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  const tooLarge = () => new WebhookSignatureError('CertificateUnavailable', `${what} at ${redactUrl(url.href)} is larger than ${maxBytes} bytes`);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
      size += read.value.byteLength;
      if (size > maxBytes) {
        await reader!.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(read.value);
    }
  } catch (error) {
    if (error instanceof WebhookSignatureError) throw error;
    throw new WebhookSignatureError('CertificateUnavailable', `could not read ${what} from ${redactUrl(url.href)}: ${reason(error)}`);
  }
  return Buffer.concat(chunks);
}

/** `issuer` signed `subject`: names match and the signature verifies with issuer's key. */
function issued(issuer: X509Certificate, subject: X509Certificate): boolean {
  return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
}

function isValidAt(certificate: X509Certificate, at: Date): boolean {
  return Date.parse(certificate.validFrom) <= at.getTime() && at.getTime() <= notAfter(certificate);
}

function notAfter(certificate: X509Certificate): number {
  return Date.parse(certificate.validTo);
}

function organisation(distinguishedName: string): string | undefined {
  return distinguishedName
    .split('\n')
    .find((line) => line.startsWith('O='))
    ?.slice(2);
}

function commonName(certificate: X509Certificate): string {
  return (
    certificate.subject
      .split('\n')
      .find((line) => line.startsWith('CN='))
      ?.slice(3) ?? certificate.subject.replace(/\n/g, ', ')
  );
}

function reason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return error instanceof Error ? `${error.message}${cause}` : String(error);
}
