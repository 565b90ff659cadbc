import { createHash, type KeyObject, sign, webcrypto } from 'node:crypto';
import type { KeyType } from './options.js';

/**
 * The slice of WebCrypto that @peculiar/x509 uses while building a certificate (digest for key
 * identifiers, sign for the signature), implemented with synchronous node:crypto calls. WebCrypto
 * runs every operation on the libuv thread pool; on a busy machine those hops, not the maths,
 * dominated certificate generation. Here the only asynchronous step left is RSA key generation.
 */

/** A private key in the shape x509 reads (`algorithm`), carrying the Node KeyObject that signs. */
export interface NodeSigningKey {
  readonly type: 'private';
  readonly algorithm: { name: string; namedCurve?: string; hash?: { name: string } };
  readonly keyObject: KeyObject;
}

type AlgorithmArg = string | { name: string; hash?: string | { name: string } };

function hashOf(alg: AlgorithmArg | undefined): string {
  const raw = typeof alg === 'string' ? alg : alg?.name;
  switch (raw?.toUpperCase()) {
    case 'SHA-1':
      return 'sha1';
    case 'SHA-256':
      return 'sha256';
    case 'SHA-384':
      return 'sha384';
    case 'SHA-512':
      return 'sha512';
    default:
      throw new Error(`unsupported hash ${String(raw)}`);
  }
}

function bytes(data: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(data)
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(data as ArrayBuffer);
}

function arrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

const subtle = {
  async digest(alg: AlgorithmArg, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> {
    return arrayBuffer(createHash(hashOf(alg)).update(bytes(data)).digest());
  },
  async sign(
    alg: { name: string; hash?: string | { name: string } },
    key: NodeSigningKey,
    data: ArrayBuffer | ArrayBufferView,
  ): Promise<ArrayBuffer> {
    const hash = hashOf(alg.hash);
    if (alg.name === 'ECDSA') {
      // WebCrypto's ECDSA signature format (r || s), which x509 converts to DER itself.
      return arrayBuffer(sign(hash, bytes(data), { key: key.keyObject, dsaEncoding: 'ieee-p1363' }));
    }
    if (alg.name === 'RSASSA-PKCS1-v1_5') return arrayBuffer(sign(hash, bytes(data), key.keyObject));
    throw new Error(`unsupported signature algorithm ${alg.name}`);
  },
};

/** Passed as the `crypto` argument of x509 calls. Typed loosely: x509 declares DOM `Crypto`. */
export const nodeCrypto = {
  subtle,
  getRandomValues: <T extends ArrayBufferView>(array: T): T => webcrypto.getRandomValues(array as never) as T,
} as unknown as webcrypto.Crypto;

export function signingKey(keyObject: KeyObject, keyType: KeyType): NodeSigningKey {
  const algorithm = keyType.startsWith('RSA')
    ? { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } }
    : { name: 'ECDSA', namedCurve: keyType };
  return { type: 'private', algorithm, keyObject };
}
