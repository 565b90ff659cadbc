import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import {
  authorityKeyIdentifier,
  basicConstraints,
  buildCertificate,
  distinguishedName,
  extendedKeyUsage,
  type Extension,
  type GeneralName,
  KEY_USAGE,
  keyIdentifier,
  keyUsage,
  type NameConstraint,
  nameConstraints,
  subjectAltName,
  subjectKeyIdentifier,
} from './cert-builder.js';
import { readCertificate } from './cert-reader.js';
import {
  CertificateExpiredError,
  CertificateParseError,
  InvalidOptionError,
  KeyMismatchError,
} from './errors.js';
import { fingerprint256 } from './fingerprint.js';
import {
  checkKeyType,
  exportPrivateKeyPem,
  generateKeys,
  type NodeKeyPair,
  parsePrivateKey,
} from './keys.js';
import { checkAttribute, normalizeDnsName, normalizeEmail, normalizeIp, normalizeUri } from './names.js';
import type { CAOptions, IssueOptions, KeyPair, KeyType } from './options.js';
import { splitCertificates, toPem } from './pem.js';

const DAY = 86_400_000;
/** Backdating absorbs small clock differences between the issuing and the verifying machine. */
const BACKDATE_MS = 60_000;

/** A certificate authority: its certificate and private key (PEM), plus facts about it. */
export interface CertificateAuthority extends KeyPair {
  keyType: KeyType;
  /** Subject common name. */
  name: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

/** A certificate issued by `issueCertificate()` or `selfSigned()`. */
export interface IssuedCertificate extends KeyPair {
  /**
   * The issuer's certificate PEM: what peers put in their `ca` option to trust this one. Named
   * `caCert`, not `ca`, so spreading the result into `serverOptions()` does not silently make the
   * issuer a trusted client CA.
   */
  caCert: string;
  keyType: KeyType;
  /** Hexadecimal serial number (128 random bits, top bit clear). */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
  /** SPKI pin of the new key, for `clientOptions({ pins })`. */
  spkiPin: string;
}

interface Signer {
  /** DER of the CA's subject Name: the issuer of everything it signs. */
  subject: Buffer;
  /** Readable subject, for error messages. */
  subjectText: string;
  notAfter: Date;
  /** The CA certificate as PEM, as returned in `caCert`. */
  pem: string;
  keyObject: NodeKeyPair['privateKey'];
  keyType: KeyType;
  keyId: Buffer | undefined;
}

// The parsed signer of a CA object, so issuing many leaves does not re-parse the CA each time.
const signers = new WeakMap<object, Promise<Signer>>();

function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  // Positive INTEGER of exactly 16 bytes: clear the sign bit, avoid a leading zero byte.
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}

/** Certificates carry whole seconds; report the dates as they are encoded. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function checkDays(what: string, days: number | undefined, fallback: number, max: number): number {
  const value = days ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new InvalidOptionError(`${what} must be a number in (0, ${max}], got ${String(days)}`);
  }
  return value;
}

function subjectName(cn: string, organization: string | undefined): Buffer {
  return distinguishedName(
    checkAttribute('common name', cn),
    organization === undefined ? undefined : checkAttribute('organization', organization),
  );
}

function parseRange(range: string): NameConstraint {
  const slash = range.lastIndexOf('/');
  const address = slash < 0 ? range : range.slice(0, slash);
  const canonical = normalizeIp(address);
  const max = canonical.includes(':') ? 128 : 32;
  const prefix = slash < 0 ? max : Number(range.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || range.slice(slash + 1) === '') {
    throw new InvalidOptionError(`invalid IP range ${JSON.stringify(range)}: use address/prefix`);
  }
  return { type: 'ip', value: canonical, prefix };
}

function constraintsOf(options: CAOptions): NameConstraint[] {
  const c = options.nameConstraints;
  if (c === undefined) return [];
  const out: NameConstraint[] = [];
  for (const n of c.dnsNames ?? []) out.push({ type: 'dns', value: normalizeDnsName(n) });
  for (const r of c.ipRanges ?? []) out.push(parseRange(r));
  if (out.length === 0)
    throw new InvalidOptionError('nameConstraints needs at least one DNS name or IP range');
  return out;
}

/**
 * Creates a new root CA (basicConstraints CA:TRUE pathlen 0, keyCertSign + cRLSign), optionally
 * limited by name constraints to the names it may vouch for.
 */
export async function createCA(options: CAOptions = {}): Promise<CertificateAuthority> {
  const keyType = checkKeyType(options.keyType);
  const days = checkDays('validityDays', options.validityDays, 3650, 36500);
  const constraints = constraintsOf(options);
  const cn = options.name ?? '@net development CA';
  const keys = await generateKeys(keyType);
  const now = Date.now();
  const notBefore = wholeSeconds(new Date(now - BACKDATE_MS));
  const notAfter = wholeSeconds(new Date(now + days * DAY));
  const keyId = keyIdentifier(keys.spki);
  const name = subjectName(cn, options.organization);
  const extensions: Extension[] = [
    basicConstraints(true, 0),
    keyUsage([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign, KEY_USAGE.digitalSignature]),
    subjectKeyIdentifier(keyId),
    authorityKeyIdentifier(keyId),
  ];
  if (constraints.length > 0) extensions.push(nameConstraints(constraints));
  const der = buildCertificate({
    serialNumber: randomSerial(),
    issuer: name,
    subject: name,
    notBefore,
    notAfter,
    spki: keys.spki,
    extensions,
    signingKey: keys.privateKey,
    signingKeyType: keyType,
  });
  const pem = toPem('CERTIFICATE', der);
  const ca: CertificateAuthority = {
    cert: pem,
    key: exportPrivateKeyPem(keys.privateKey),
    keyType,
    name: cn,
    notBefore,
    notAfter,
    fingerprint256: fingerprint256(der),
  };
  signers.set(
    ca,
    Promise.resolve({
      subject: name,
      subjectText: `CN=${cn}`,
      notAfter,
      pem,
      keyObject: keys.privateKey,
      keyType,
      keyId,
    }),
  );
  return ca;
}

async function loadSigner(ca: KeyPair): Promise<Signer> {
  const certPem = splitCertificates(ca.cert)[0]!;
  let parsed: X509Certificate;
  let parts: ReturnType<typeof readCertificate>;
  try {
    parsed = new X509Certificate(certPem);
    parts = readCertificate(parsed.raw);
  } catch (cause) {
    throw new CertificateParseError('CA certificate could not be parsed', { cause });
  }
  const { keyObject, keyType } = parsePrivateKey(ca.key);
  if (!parsed.checkPrivateKey(keyObject)) {
    throw new KeyMismatchError('the CA private key does not match the CA certificate');
  }
  const subjectText = parsed.subject.replace(/\n/g, ', ');
  if (!parts.isCA)
    throw new InvalidOptionError(`issuer ${subjectText} is not a CA (basicConstraints CA:FALSE)`);
  return {
    subject: parts.subject,
    subjectText,
    notAfter: new Date(parsed.validTo),
    pem: certPem,
    keyObject,
    keyType,
    keyId: parts.subjectKeyId,
  };
}

function signerFor(ca: KeyPair): Promise<Signer> {
  let signer = signers.get(ca);
  if (!signer) {
    signer = loadSigner(ca);
    signers.set(ca, signer);
    // A failed load must not be cached: the caller may fix the object and retry.
    signer.catch(() => signers.delete(ca));
  }
  return signer;
}

interface Prepared {
  keyType: KeyType;
  names: GeneralName[];
  cn: string;
  notBefore: Date;
  notAfter: Date;
}

function prepare(options: IssueOptions, requireName: boolean): Prepared {
  const keyType = checkKeyType(options.keyType);
  const usage = options.usage ?? 'server';
  if (usage !== 'server' && usage !== 'client' && usage !== 'both') {
    throw new InvalidOptionError(`usage must be 'server', 'client' or 'both', got ${String(usage)}`);
  }
  const names: GeneralName[] = [];
  for (const n of options.dnsNames ?? []) names.push({ type: 'dns', value: normalizeDnsName(n) });
  for (const n of options.ipAddresses ?? []) names.push({ type: 'ip', value: normalizeIp(n) });
  for (const n of options.emails ?? []) names.push({ type: 'email', value: normalizeEmail(n) });
  for (const n of options.uris ?? []) names.push({ type: 'uri', value: normalizeUri(n) });
  if (names.length > 1000) throw new InvalidOptionError('more than 1000 subjectAltName entries');
  if (requireName && names.length === 0 && usage !== 'client') {
    throw new InvalidOptionError(
      'a server certificate needs at least one of dnsNames, ipAddresses, emails, uris',
    );
  }
  const cn = options.commonName ?? names[0]?.value ?? (usage === 'client' ? 'client' : 'localhost');
  const notBefore = options.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  if (!(notBefore instanceof Date) || Number.isNaN(notBefore.getTime())) {
    throw new InvalidOptionError('notBefore must be a valid Date');
  }
  let notAfter: Date;
  if (options.notAfter !== undefined) {
    notAfter = options.notAfter;
    if (!(notAfter instanceof Date) || Number.isNaN(notAfter.getTime()) || notAfter <= notBefore) {
      throw new InvalidOptionError('notAfter must be a valid Date after notBefore');
    }
  } else {
    const days = checkDays('validityDays', options.validityDays, 365, 3650);
    notAfter = new Date(notBefore.getTime() + BACKDATE_MS + days * DAY);
  }
  return {
    keyType,
    names,
    cn: checkAttribute('common name', cn.slice(0, 64)),
    notBefore: wholeSeconds(notBefore),
    notAfter: wholeSeconds(notAfter),
  };
}

function leafExtensions(options: IssueOptions, prepared: Prepared, keyId: Buffer): Extension[] {
  const usage = options.usage ?? 'server';
  const bits: number[] = [KEY_USAGE.digitalSignature];
  // RSA key exchange is gone from our cipher list, but other peers may still use it with RSA keys.
  if (prepared.keyType.startsWith('RSA')) bits.push(KEY_USAGE.keyEncipherment);
  const eku: ('serverAuth' | 'clientAuth')[] = [];
  if (usage !== 'client') eku.push('serverAuth');
  if (usage !== 'server') eku.push('clientAuth');
  const extensions = [
    basicConstraints(false),
    keyUsage(bits),
    extendedKeyUsage(eku),
    subjectKeyIdentifier(keyId),
  ];
  if (prepared.names.length > 0) extensions.push(subjectAltName(prepared.names));
  return extensions;
}

function finish(
  der: Buffer,
  serial: Buffer,
  prepared: Prepared,
  keys: NodeKeyPair,
  caPem: string | undefined,
): IssuedCertificate {
  const pem = toPem('CERTIFICATE', der);
  return {
    cert: pem,
    key: exportPrivateKeyPem(keys.privateKey),
    caCert: caPem ?? pem,
    keyType: prepared.keyType,
    serialNumber: serial.toString('hex'),
    notBefore: prepared.notBefore,
    notAfter: prepared.notAfter,
    fingerprint256: fingerprint256(der),
    spkiPin: createHash('sha256').update(keys.spki).digest('base64'),
  };
}

/**
 * Issues a leaf certificate signed by `ca` (from `createCA()`, a dev CA, or any `{ cert, key }`
 * whose certificate is a CA). A leaf never outlives its CA: `notAfter` is clamped to the CA's.
 */
export async function issueCertificate(ca: KeyPair, options: IssueOptions = {}): Promise<IssuedCertificate> {
  const prepared = prepare(options, true);
  const signer = await signerFor(ca);
  if (signer.notAfter.getTime() <= Date.now()) {
    throw new CertificateExpiredError(`CA ${signer.subjectText} expired on ${signer.notAfter.toISOString()}`);
  }
  if (prepared.notAfter > signer.notAfter) prepared.notAfter = signer.notAfter;
  const keys = await generateKeys(prepared.keyType);
  const extensions = leafExtensions(options, prepared, keyIdentifier(keys.spki));
  if (signer.keyId) extensions.push(authorityKeyIdentifier(signer.keyId));
  const serial = randomSerial();
  const der = buildCertificate({
    serialNumber: serial,
    issuer: signer.subject,
    subject: subjectName(prepared.cn, options.organization),
    notBefore: prepared.notBefore,
    notAfter: prepared.notAfter,
    spki: keys.spki,
    extensions,
    signingKey: signer.keyObject,
    signingKeyType: signer.keyType,
  });
  return finish(der, serial, prepared, keys, signer.pem);
}

/**
 * A self-signed certificate for the simplest case (one service, the client trusts exactly this
 * certificate via `ca`). Prefer a CA when more than one certificate is involved.
 */
export async function selfSigned(options: IssueOptions = {}): Promise<IssuedCertificate> {
  const prepared = prepare({ dnsNames: ['localhost'], ...options }, true);
  const keys = await generateKeys(prepared.keyType);
  const extensions = leafExtensions(options, prepared, keyIdentifier(keys.spki));
  const name = subjectName(prepared.cn, options.organization);
  const serial = randomSerial();
  const der = buildCertificate({
    serialNumber: serial,
    issuer: name,
    subject: name,
    notBefore: prepared.notBefore,
    notAfter: prepared.notAfter,
    spki: keys.spki,
    extensions,
    signingKey: keys.privateKey,
    signingKeyType: prepared.keyType,
  });
  return finish(der, serial, prepared, keys, undefined);
}
