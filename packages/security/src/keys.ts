import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { CertificateParseError, InvalidOptionError } from './errors.js';
import type { KeyType } from './options.js';

const KEY_TYPES: readonly KeyType[] = ['P-256', 'P-384', 'RSA-2048', 'RSA-3072'];

export function checkKeyType(keyType: KeyType | undefined): KeyType {
  if (keyType === undefined) return 'P-256';
  if (!KEY_TYPES.includes(keyType)) {
    throw new InvalidOptionError(`keyType must be one of ${KEY_TYPES.join(', ')}, got ${String(keyType)}`);
  }
  return keyType;
}

export interface NodeKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of the public key. */
  spki: Buffer;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * EC keys are generated synchronously (well under a millisecond, cheaper than a thread-pool hop);
 * RSA keys take 50-500 ms, so they are generated off the event loop.
 */
export async function generateKeys(keyType: KeyType): Promise<NodeKeyPair> {
  checkKeyType(keyType);
  const pair = keyType.startsWith('RSA')
    ? await generateKeyPairAsync('rsa', {
        modulusLength: keyType === 'RSA-2048' ? 2048 : 3072,
        publicExponent: 65537,
      })
    : generateKeyPairSync('ec', { namedCurve: keyType === 'P-256' ? 'prime256v1' : 'secp384r1' });
  return { ...pair, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

export function exportPrivateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
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

/** The supported key type of a key, or undefined for other keys (Ed25519, P-521, RSA-4096...). */
export function supportedKeyType(key: KeyObject): KeyType | undefined {
  try {
    return keyTypeOf(key);
  } catch {
    return undefined;
  }
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

/** DER SubjectPublicKeyInfo of the public half of a key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}
