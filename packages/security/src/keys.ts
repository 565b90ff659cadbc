import { createPrivateKey, createPublicKey, type KeyObject, type webcrypto } from 'node:crypto';
import { CertificateParseError, InvalidOptionError } from './errors.js';
import type { KeyType } from './options.js';
import { crypto } from './x509-setup.js';

const KEY_TYPES: readonly KeyType[] = ['P-256', 'P-384', 'RSA-2048', 'RSA-3072'];
const F4 = new Uint8Array([1, 0, 1]);

/** WebCrypto parameters of a key type: generation/import and signing (SHA-256 or stronger). */
export function algorithmFor(
  keyType: KeyType,
): (webcrypto.EcKeyGenParams & { hash: string }) | webcrypto.RsaHashedKeyGenParams {
  switch (keyType) {
    case 'P-256':
      return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    case 'P-384':
      return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    case 'RSA-2048':
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: F4, hash: 'SHA-256' };
    case 'RSA-3072':
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: F4, hash: 'SHA-256' };
    default:
      throw new InvalidOptionError(`keyType must be one of ${KEY_TYPES.join(', ')}, got ${String(keyType)}`);
  }
}

export function checkKeyType(keyType: KeyType | undefined): KeyType {
  if (keyType === undefined) return 'P-256';
  if (!KEY_TYPES.includes(keyType)) {
    throw new InvalidOptionError(`keyType must be one of ${KEY_TYPES.join(', ')}, got ${String(keyType)}`);
  }
  return keyType;
}

export async function generateKeys(keyType: KeyType): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(algorithmFor(keyType), true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

export async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}

/** Parses a PEM/DER private key (PKCS#8, SEC1 or PKCS#1) and tells which supported type it is. */
export function parsePrivateKey(key: string | Buffer): { keyObject: KeyObject; keyType: KeyType } {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (cause) {
    throw new CertificateParseError('private key could not be parsed', { cause });
  }
  return { keyObject, keyType: keyTypeOf(keyObject) };
}

export function keyTypeOf(key: KeyObject): KeyType {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1') return 'P-256';
    if (details?.namedCurve === 'secp384r1') return 'P-384';
  } else if (key.asymmetricKeyType === 'rsa') {
    if (details?.modulusLength === 2048) return 'RSA-2048';
    if (details?.modulusLength === 3072) return 'RSA-3072';
  }
  throw new CertificateParseError(
    `unsupported key: ${key.asymmetricKeyType} ${details?.namedCurve ?? details?.modulusLength ?? ''}`.trim() +
      `; supported: ${KEY_TYPES.join(', ')}`,
  );
}

/** Imports a Node private key as a non-extractable WebCrypto signing key. */
export async function importSigningKey(keyObject: KeyObject, keyType: KeyType): Promise<webcrypto.CryptoKey> {
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  return crypto.subtle.importKey('pkcs8', der, algorithmFor(keyType), false, ['sign']);
}

/** DER SubjectPublicKeyInfo of the public half of a key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}
