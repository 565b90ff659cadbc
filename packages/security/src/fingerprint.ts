import { createHash, createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import { CertificateParseError } from './errors.js';
import { spkiOf } from './keys.js';
import { parsePem } from './pem.js';

/** A certificate as PEM text, DER bytes, or a parsed Node `X509Certificate`. */
export type CertificateInput = string | Uint8Array | X509Certificate;

/** DER bytes of the first certificate in the input. */
export function certificateDer(input: CertificateInput): Buffer {
  if (input instanceof X509Certificate) return input.raw;
  if (typeof input === 'string' || (input.length > 0 && input[0] === 0x2d) /* '-' of PEM */) {
    const block = parsePem(typeof input === 'string' ? input : Buffer.from(input)).find(
      (b) => b.type === 'CERTIFICATE',
    );
    if (!block) throw new CertificateParseError('no CERTIFICATE block in input');
    return block.der;
  }
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/** Parses a certificate given as PEM, DER or `X509Certificate`; `CertificateParseError` if it cannot. */
export function parseCertificate(input: CertificateInput): X509Certificate {
  if (input instanceof X509Certificate) return input;
  try {
    return new X509Certificate(certificateDer(input));
  } catch (cause) {
    if (cause instanceof CertificateParseError) throw cause;
    throw new CertificateParseError('certificate could not be parsed', { cause });
  }
}

/**
 * SHA-256 of the certificate's DER as colon-separated uppercase hex, the same text as Node's
 * `X509Certificate#fingerprint256` and `openssl x509 -fingerprint -sha256`.
 */
export function fingerprint256(cert: CertificateInput): string {
  const hex = createHash('sha256').update(certificateDer(cert)).digest('hex').toUpperCase();
  return hex.replace(/(..)(?!$)/g, '$1:');
}

/**
 * SPKI pin: base64 SHA-256 of the DER SubjectPublicKeyInfo (RFC 7469 `pin-sha256`). Pinning the
 * key rather than the certificate survives renewals that keep the key. Accepts a certificate, a
 * public or private key (PEM or KeyObject).
 */
export function spkiPin(input: CertificateInput | KeyObject): string {
  let spki: Buffer;
  if (input instanceof KeyObject) {
    spki = spkiOf(input);
  } else if (typeof input === 'string' && !/-----BEGIN CERTIFICATE-----/.test(input)) {
    try {
      spki = spkiOf(createPublicKey(input));
    } catch (cause) {
      throw new CertificateParseError('input is neither a certificate nor a key', { cause });
    }
  } else {
    spki = parseCertificate(input).publicKey.export({ type: 'spki', format: 'der' });
  }
  return createHash('sha256').update(spki).digest('base64');
}
