import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { CertificateExpiredError, CertificateParseError, KeyMismatchError } from './errors.js';
import { supportedKeyType } from './keys.js';
import type { KeyPair, KeyType } from './options.js';
import { splitCertificates } from './pem.js';
import { type PemLimits, readPemFile } from './pem.js';

/** A key pair that has been checked: parses, key matches the leaf, optionally within validity. */
export interface CheckedKeyPair extends KeyPair {
  /** The parsed leaf certificate. */
  leaf: X509Certificate;
  keyObject: KeyObject;
  /** The key type when it is one this package can issue with; undefined for others (e.g. RSA-4096). */
  keyType: KeyType | undefined;
}

/**
 * Parses a certificate (chain) and private key and checks that the key belongs to the leaf.
 * With `rejectExpired`, a leaf outside its validity period is refused too.
 */
export function checkKeyPair(
  pair: { cert: string | Buffer; key: string | Buffer },
  options: { rejectExpired?: boolean; now?: number } = {},
): CheckedKeyPair {
  const certText = typeof pair.cert === 'string' ? pair.cert : pair.cert.toString('utf8');
  const first = splitCertificates(certText)[0]!;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(first);
  } catch (cause) {
    throw new CertificateParseError('certificate could not be parsed', { cause });
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pair.key);
  } catch (cause) {
    throw new CertificateParseError('private key could not be parsed', { cause });
  }
  const keyType = supportedKeyType(keyObject);
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new KeyMismatchError(`private key does not match certificate ${leaf.subject.replace(/\n/g, ', ')}`);
  }
  if (options.rejectExpired) {
    const now = options.now ?? Date.now();
    if (Date.parse(leaf.validTo) <= now)
      throw new CertificateExpiredError(`certificate expired on ${leaf.validTo}`);
    if (Date.parse(leaf.validFrom) > now) {
      throw new CertificateExpiredError(`certificate not valid before ${leaf.validFrom}`);
    }
  }
  const key = typeof pair.key === 'string' ? pair.key : pair.key.toString('utf8');
  return { cert: certText, key, leaf, keyObject, keyType };
}

/** Reads `certPath` and `keyPath` (size-limited) and checks the pair with `checkKeyPair()`. */
export async function loadKeyPair(
  paths: { certPath: string; keyPath: string },
  options: PemLimits & { rejectExpired?: boolean } = {},
): Promise<CheckedKeyPair> {
  const [cert, key] = await Promise.all([
    readPemFile(paths.certPath, options),
    readPemFile(paths.keyPath, options),
  ]);
  return checkKeyPair({ cert, key }, options);
}
