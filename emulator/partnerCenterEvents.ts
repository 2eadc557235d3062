/**
 * Partner Center's webhook sender, emulated: a PKI like the real one and events signed and
 * POSTed the way Partner Center documents them
 * (https://learn.microsoft.com/partner-center/developer/partner-center-webhooks):
 *
 *   root CA ("Emulated Root", trusted only by whoever is handed `rootCertificatePem`)
 *     -> issuing CA (O=Microsoft Corporation), served at /pki/issuing-ca.cer and named by the
 *        leaf's Authority Information Access "CA Issuers" URL, as Microsoft's TLS issuers are
 *     -> signing certificate CN=pcnotifications-dispatch.microsoft.com, O=Microsoft Corporation,
 *        served as DER at /cert/pcnotifications-dispatch.microsoft.com.cer (or as a PEM bundle
 *        with the issuing CA, `chain: 'bundle'`).
 *
 * A request carries `Authorization: Signature <base64 RSA-SHA256 over the exact body bytes>`,
 * `X-MS-Certificate-Url` and `X-MS-Signature-Algorithm: rsa-sha256`; the body is the event
 * serialised as in the documented sample (PascalCase, indented), so a receiver that re-serialises
 * the JSON before verifying fails, as it would against Partner Center.
 *
 * The certificate is served over plain http on 127.0.0.1: the app allows http for loopback hosts
 * only, and the test or local wiring allow-lists 127.0.0.1 in WEBHOOK_CERTIFICATE_HOSTS.
 * X.509 certificates are built with node-forge; keys and event signatures use Node's crypto.
 */
import { generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import forge from 'node-forge';
import { closeServer, listenOnLoopback, LOOPBACK_HOST } from './httpServer';

export const SIGNING_CERTIFICATE_PATH = '/cert/pcnotifications-dispatch.microsoft.com.cer';
export const ISSUING_CA_PATH = '/pki/issuing-ca.cer';
const DAY_MS = 86_400_000;

export interface PartnerCenterEventsOptions {
  /** The signing certificate's validity; default from a day ago for a year. */
  readonly signingValidity?: {
    readonly notBefore: Date;
    readonly notAfter: Date;
  };
  /** The signing certificate's subject organisation. @default Microsoft Corporation */
  readonly signingOrganisation?: string;
  /** The issuing CA's subject organisation. @default Microsoft Corporation */
  readonly issuerOrganisation?: string;
  /** How the receiver finds the issuing CA. @default 'aia' */
  readonly chain?: 'aia' | 'bundle';
}

export interface SendOptions {
  /** Changes the body after it was signed. */
  readonly tamper?: boolean;
  /** Signs with a key that is not the certificate's. */
  readonly wrongKey?: boolean;
  /** Names another certificate URL in X-MS-Certificate-Url. */
  readonly certificateUrl?: string;
  /** Leaves these headers out (lower case). */
  readonly omitHeaders?: readonly string[];
  /** Where the signature goes: Authorization (default) or x-ms-signature (`signatureTokenToMsSignatureHeader`). */
  readonly signatureHeader?: 'authorization' | 'x-ms-signature';
}

export interface SignedEvent {
  readonly body: Buffer;
  readonly headers: Record<string, string>;
}

export interface PartnerCenterEvents {
  /** The X-MS-Certificate-Url this sender names. */
  readonly certificateUrl: string;
  /** The emulated root CA: hand it to the app as its only trust anchor. */
  readonly rootCertificatePem: string;
  /** How many times the signing certificate was downloaded. */
  certificateDownloads(): number;
  invoiceReadyEvent(invoiceId: string, resourceChangeUtcDate?: string): Record<string, unknown>;
  testEvent(): Record<string, unknown>;
  /** Serialises and signs an event (an object, or the exact body text). */
  sign(event: Record<string, unknown> | string, options?: SendOptions): SignedEvent;
  /** Signs and POSTs an event to `url`, as Partner Center does. */
  send(url: string, event: Record<string, unknown> | string, options?: SendOptions): Promise<Response>;
  /** A new key and signing certificate behind the same URL, as when Microsoft renews it. */
  renewSigningCertificate(): void;
  sendInvoiceReady(url: string, invoiceId: string, options?: SendOptions & { readonly resourceChangeUtcDate?: string }): Promise<Response>;
  close(): Promise<void>;
}

interface KeyPair {
  readonly privateKey: KeyObject;
  readonly forgePublic: forge.pki.PublicKey;
  readonly forgePrivate: forge.pki.PrivateKey;
}

export async function startPartnerCenterEvents(options: PartnerCenterEventsOptions = {}): Promise<PartnerCenterEvents> {
  let downloads = 0;
  // Filled in once the port (which the AIA URL names) is known.
  const served: { leaf?: Buffer; issuer?: Buffer } = {};
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', `http://${LOOPBACK_HOST}`).pathname;
    const body = path === SIGNING_CERTIFICATE_PATH ? served.leaf : path === ISSUING_CA_PATH ? served.issuer : undefined;
    if (request.method !== 'GET' || !body) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (path === SIGNING_CERTIFICATE_PATH) downloads++;
    response
      .writeHead(200, {
        'Content-Type': 'application/pkix-cert',
        'Content-Length': body.length,
      })
      .end(body);
  });
  const port = await listenOnLoopback(server);
  const origin = `http://${LOOPBACK_HOST}:${port}`;

  const now = Date.now();
  const rootKey = keyPair();
  const issuerKey = keyPair();
  let signingKey = keyPair();
  const strangerKey = keyPair();
  const root = certificate({
    subject: [
      { shortName: 'CN', value: 'Emulated Partner Center Root CA' },
      { shortName: 'O', value: 'Emulated Root' },
    ],
    issuer: undefined,
    key: rootKey,
    signer: rootKey,
    validity: {
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 3650 * DAY_MS),
    },
    ca: true,
  });
  const issuerSubject = [
    { shortName: 'C', value: 'US' },
    {
      shortName: 'O',
      value: options.issuerOrganisation ?? 'Microsoft Corporation',
    },
    { shortName: 'CN', value: 'Emulated Microsoft Issuing CA 01' },
  ];
  const issuer = certificate({
    subject: issuerSubject,
    issuer: root.subject,
    key: issuerKey,
    signer: rootKey,
    validity: {
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 1825 * DAY_MS),
    },
    ca: true,
  });
  /** Issues a signing certificate for `signingKey` and serves it at the certificate URL. */
  const issueSigningCertificate = () => {
    const leaf = certificate({
      subject: [
        { shortName: 'C', value: 'US' },
        { shortName: 'ST', value: 'WA' },
        { shortName: 'L', value: 'Redmond' },
        {
          shortName: 'O',
          value: options.signingOrganisation ?? 'Microsoft Corporation',
        },
        { shortName: 'CN', value: 'pcnotifications-dispatch.microsoft.com' },
      ],
      issuer: issuerSubject,
      key: signingKey,
      signer: issuerKey,
      validity: options.signingValidity ?? {
        notBefore: new Date(now - DAY_MS),
        notAfter: new Date(now + 365 * DAY_MS),
      },
      ca: false,
      ...(options.chain === 'bundle' ? {} : { caIssuersUrl: `${origin}${ISSUING_CA_PATH}` }),
    });
    served.leaf = options.chain === 'bundle' ? Buffer.from(forge.pki.certificateToPem(leaf.cert) + forge.pki.certificateToPem(issuer.cert)) : der(leaf.cert);
    served.issuer = der(issuer.cert);
  };
  issueSigningCertificate();

  const certificateUrl = `${origin}${SIGNING_CERTIFICATE_PATH}`;

  function signEvent(event: Record<string, unknown> | string, sendOptions: SendOptions = {}): SignedEvent {
    const text = typeof event === 'string' ? event : JSON.stringify(event, null, 4);
    const signed = Buffer.from(text, 'utf8');
    const signature = sign('sha256', signed, (sendOptions.wrongKey ? strangerKey : signingKey).privateKey).toString('base64');
    const body = sendOptions.tamper ? Buffer.from(tampered(text), 'utf8') : signed;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-ms-certificate-url': sendOptions.certificateUrl ?? certificateUrl,
      'x-ms-signature-algorithm': 'rsa-sha256',
      ...(sendOptions.signatureHeader === 'x-ms-signature' ? { 'x-ms-signature': signature } : { authorization: `Signature ${signature}` }),
    };
    for (const name of sendOptions.omitHeaders ?? []) delete headers[name];
    return { body, headers };
  }

  async function send(url: string, event: Record<string, unknown> | string, sendOptions: SendOptions = {}): Promise<Response> {
    const { body, headers } = signEvent(event, sendOptions);
    return fetch(url, { method: 'POST', headers, body });
  }

  const invoiceReadyEvent = (invoiceId: string, resourceChangeUtcDate = new Date().toISOString().replace('Z', '0000+00:00')) => ({
    EventName: 'invoice-ready',
    ResourceUri: `https://api.partnercenter.microsoft.com/v1/invoices/${invoiceId}`,
    ResourceName: 'invoice',
    AuditUri: null,
    ResourceChangeUtcDate: resourceChangeUtcDate,
  });

  return {
    certificateUrl,
    rootCertificatePem: forge.pki.certificateToPem(root.cert),
    certificateDownloads: () => downloads,
    invoiceReadyEvent,
    testEvent: () => ({
      EventName: 'test-created',
      ResourceUri: `https://api.partnercenter.microsoft.com/webhooks/v1/registration/validationEvents/${randomUUID()}`,
      ResourceName: 'test',
      AuditUri: null,
      ResourceChangeUtcDate: new Date().toISOString(),
    }),
    sign: signEvent,
    send,
    sendInvoiceReady: (url, invoiceId, sendOptions = {}) => send(url, invoiceReadyEvent(invoiceId, sendOptions.resourceChangeUtcDate), sendOptions),
    renewSigningCertificate: () => {
      signingKey = keyPair();
      issueSigningCertificate();
    },
    close: () => closeServer(server),
  };
}

function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
  });
  return {
    privateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    forgePrivate: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()),
  };
}

interface CertificateSpec {
  readonly subject: forge.pki.CertificateAttribute[];
  /** The issuer's subject; undefined for a self-signed root. */
  readonly issuer: forge.pki.CertificateAttribute[] | undefined;
  readonly key: KeyPair;
  readonly signer: KeyPair;
  readonly validity: { readonly notBefore: Date; readonly notAfter: Date };
  readonly ca: boolean;
  readonly caIssuersUrl?: string;
}

function certificate(spec: CertificateSpec): {
  cert: forge.pki.Certificate;
  subject: forge.pki.CertificateAttribute[];
} {
  const cert = forge.pki.createCertificate();
  cert.publicKey = spec.key.forgePublic;
  // Positive, random, 16 bytes: what public CAs issue.
  cert.serialNumber = `7${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = spec.validity.notBefore;
  cert.validity.notAfter = spec.validity.notAfter;
  cert.setSubject(spec.subject);
  cert.setIssuer(spec.issuer ?? spec.subject);
  const extensions: Array<Record<string, unknown>> = [
    { name: 'basicConstraints', cA: spec.ca, critical: true },
    spec.ca ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true } : { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (spec.caIssuersUrl)
    extensions.push({
      id: '1.3.6.1.5.5.7.1.1',
      value: authorityInfoAccess(spec.caIssuersUrl),
    });
  cert.setExtensions(extensions);
  cert.sign(spec.signer.forgePrivate, forge.md.sha256.create());
  return { cert, subject: spec.subject };
}

/** AuthorityInfoAccessSyntax with one caIssuers AccessDescription (RFC 5280, 4.2.2.1). */
function authorityInfoAccess(url: string): forge.asn1.Asn1 {
  const { asn1 } = forge;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('1.3.6.1.5.5.7.48.2').getBytes()),
      // GeneralName uniformResourceIdentifier: [6] IA5String, implicit.
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, url),
    ]),
  ]);
}

function der(cert: forge.pki.Certificate): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

/** The body an attacker would want: another invoice (or, without one, any change at all). */
function tampered(text: string): string {
  const changed = text.replace(/G\d{9}/, (id) => `G${String((Number(id.slice(1)) + 1) % 1e9).padStart(9, '0')}`);
  return changed === text ? `${text} ` : changed;
}
