import { createHash, type KeyObject, sign } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  children,
  contextTag,
  namedBits,
  nullValue,
  octetString,
  oid,
  readNode,
  sequence,
  setOf,
  smallInteger,
  TAG,
  time,
  unsignedInteger,
  utf8String,
} from './der.js';
import type { KeyType } from './options.js';

/** RFC 5280 object identifiers used by the certificates this package issues. */
const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  nameConstraints: '2.5.29.30',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const;

/** keyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export type GeneralName =
  | { type: 'dns'; value: string }
  | { type: 'ip'; value: string }
  | { type: 'email'; value: string }
  | { type: 'uri'; value: string };

/** A name-constraint subtree: a DNS suffix, or an IP network given as address and prefix length. */
export type NameConstraint = { type: 'dns'; value: string } | { type: 'ip'; value: string; prefix: number };

export interface Extension {
  oid: string;
  critical: boolean;
  /** DER of the extension's value (wrapped in an OCTET STRING when encoded). */
  value: Buffer;
}

export interface CertificateFields {
  serialNumber: Buffer;
  /** DER of the issuer Name (a self-signed certificate passes its own subject). */
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  spki: Buffer;
  extensions: Extension[];
  /** The issuer's private key and type: the signature algorithm follows from it. */
  signingKey: KeyObject;
  signingKeyType: KeyType;
}

export function distinguishedName(commonName: string, organization?: string): Buffer {
  const rdns = [setOf(sequence(oid(OID.commonName), utf8String(commonName)))];
  if (organization !== undefined) rdns.push(setOf(sequence(oid(OID.organization), utf8String(organization))));
  return sequence(...rdns);
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand an IPv6 text form into 16 bytes (the text is canonical already, so '::' appears once).
  const [head = '', tail] = ip.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const missing = 8 - left.length - right.length;
  const all = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  const out = Buffer.alloc(16);
  for (const [i, group] of all.entries()) out.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  return out;
}

function generalName(name: GeneralName): Buffer {
  switch (name.type) {
    case 'email':
      return contextTag(1, Buffer.from(name.value, 'latin1'), false);
    case 'dns':
      return contextTag(2, Buffer.from(name.value, 'latin1'), false);
    case 'uri':
      return contextTag(6, Buffer.from(name.value, 'latin1'), false);
    case 'ip':
      return contextTag(7, ipBytes(name.value), false);
  }
}

function prefixMask(bits: number, length: number): Buffer {
  const mask = Buffer.alloc(length);
  for (let i = 0; i < bits; i++) mask[i >> 3]! |= 0x80 >> (i & 7);
  return mask;
}

export function basicConstraints(ca: boolean, pathLength?: number): Extension {
  const fields = ca ? [boolean(true), ...(pathLength === undefined ? [] : [smallInteger(pathLength)])] : [];
  return { oid: OID.basicConstraints, critical: true, value: sequence(...fields) };
}

export function keyUsage(bits: number[]): Extension {
  return { oid: OID.keyUsage, critical: true, value: namedBits(bits) };
}

export function extendedKeyUsage(usages: ('serverAuth' | 'clientAuth')[]): Extension {
  return { oid: OID.extKeyUsage, critical: false, value: sequence(...usages.map((u) => oid(OID[u]))) };
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function keyIdentifier(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }: hash what follows
  // the BIT STRING's unused-bits byte. Parsing is cheap and keeps this independent of key type.
  const [, key] = children(readNode(spki).contents);
  if (!key || key.tag !== TAG.BIT_STRING) throw new RangeError('not a SubjectPublicKeyInfo');
  return createHash('sha1').update(key.contents.subarray(1)).digest();
}

export function subjectKeyIdentifier(keyId: Buffer): Extension {
  return { oid: OID.subjectKeyIdentifier, critical: false, value: octetString(keyId) };
}

export function authorityKeyIdentifier(keyId: Buffer): Extension {
  return { oid: OID.authorityKeyIdentifier, critical: false, value: sequence(contextTag(0, keyId, false)) };
}

export function subjectAltName(names: GeneralName[]): Extension {
  // Our subjects always carry a CN, so RFC 5280 lets the SAN be non-critical.
  return { oid: OID.subjectAltName, critical: false, value: sequence(...names.map(generalName)) };
}

/**
 * RFC 5280 §4.2.1.10, always critical: the CA may only vouch for names inside these subtrees,
 * so a leaked development CA key cannot mint certificates for real sites.
 */
export function nameConstraints(permitted: NameConstraint[]): Extension {
  const subtrees = permitted.map((c) => {
    if (c.type === 'dns') return sequence(generalName({ type: 'dns', value: c.value }));
    const address = ipBytes(c.value);
    const mask = prefixMask(c.prefix, address.length);
    const network = Buffer.from(address.map((byte, i) => byte & mask[i]!));
    return sequence(contextTag(7, Buffer.concat([network, mask]), false));
  });
  return {
    oid: OID.nameConstraints,
    critical: true,
    value: sequence(contextTag(0, Buffer.concat(subtrees), true)),
  };
}

function signatureAlgorithm(keyType: KeyType): Buffer {
  switch (keyType) {
    case 'P-256':
      return sequence(oid(OID.ecdsaWithSha256));
    case 'P-384':
      return sequence(oid(OID.ecdsaWithSha384));
    default:
      return sequence(oid(OID.sha256WithRsa), nullValue());
  }
}

function encodeExtension(ext: Extension): Buffer {
  return sequence(oid(ext.oid), ...(ext.critical ? [boolean(true)] : []), octetString(ext.value));
}

/** Builds and signs an X.509 v3 certificate; returns its DER. */
export function buildCertificate(fields: CertificateFields): Buffer {
  const algorithm = signatureAlgorithm(fields.signingKeyType);
  const tbs = sequence(
    contextTag(0, smallInteger(2), true),
    unsignedInteger(fields.serialNumber),
    algorithm,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.spki,
    contextTag(3, sequence(...fields.extensions.map(encodeExtension)), true),
  );
  const hash = fields.signingKeyType === 'P-384' ? 'sha384' : 'sha256';
  // ECDSA signatures from node:crypto are DER (r, s) by default: what X.509 expects.
  const signature = sign(hash, tbs, fields.signingKey);
  return sequence(tbs, algorithm, bitString(signature));
}
