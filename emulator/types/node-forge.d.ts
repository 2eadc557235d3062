/**
 * The part of node-forge (which ships no types) the Partner Center events emulator uses to build
 * X.509 certificates. Keys are made with Node's crypto and handed to forge as PEM.
 */
declare module 'node-forge' {
  namespace forge {
    namespace asn1 {
      interface Asn1 {
        readonly tagClass: number;
        readonly type: number;
      }
      const Class: {
        readonly UNIVERSAL: number;
        readonly CONTEXT_SPECIFIC: number;
      };
      const Type: { readonly SEQUENCE: number; readonly OID: number };
      function create(tagClass: number, type: number, constructed: boolean, value: string | Asn1[]): Asn1;
      function oidToDer(oid: string): util.ByteBuffer;
      function toDer(value: Asn1): util.ByteBuffer;
    }
    namespace util {
      interface ByteBuffer {
        getBytes(): string;
      }
    }
    namespace md {
      interface MessageDigest {
        readonly algorithm: string;
      }
      namespace sha256 {
        function create(): MessageDigest;
      }
    }
    namespace pki {
      interface PublicKey {
        readonly n: unknown;
      }
      interface PrivateKey {
        readonly d: unknown;
      }
      interface CertificateAttribute {
        readonly name?: string;
        readonly shortName?: string;
        readonly value: string;
      }
      interface Certificate {
        serialNumber: string;
        publicKey: PublicKey;
        validity: { notBefore: Date; notAfter: Date };
        setSubject(attributes: CertificateAttribute[]): void;
        setIssuer(attributes: CertificateAttribute[]): void;
        setExtensions(extensions: Array<Record<string, unknown>>): void;
        sign(key: PrivateKey, digest: md.MessageDigest): void;
      }
      function createCertificate(): Certificate;
      function publicKeyFromPem(pem: string): PublicKey;
      function privateKeyFromPem(pem: string): PrivateKey;
      function certificateToPem(certificate: Certificate): string;
      function certificateToAsn1(certificate: Certificate): asn1.Asn1;
    }
  }
  export = forge;
}
