import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { CertificateExpiredError, InvalidOptionError, KeyMismatchError } from './errors.js';
import { fingerprint256 } from './fingerprint.js';
import {
  checkKeyType,
  exportPrivateKeyPem,
  generateKeys,
  type NodeKeyPair,
  parsePrivateKey,
  signatureAlgorithm,
} from './keys.js';
import { checkAttribute, normalizeDnsName, normalizeEmail, normalizeIp, normalizeUri } from './names.js';
import type { CAOptions, IssueOptions, KeyPair, KeyType } from './options.js';
import { splitCertificates, toPem } from './pem.js';
import { type NodeSigningKey, nodeCrypto, signingKey } from './node-signer.js';
import { nameConstraintsExtension } from './name-constraints.js';
import { x509 } from './x509-setup.js';

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
  cert: x509.X509Certificate;
  /** The CA certificate as PEM, as returned in `caCert`. */
  pem: string;
  signingKey: NodeSigningKey;
  keyType: KeyType;
  keyId: string | undefined;
}

// The imported WebCrypto key of a CA object, so issuing many leaves does not re-import each time.
const signers = new WeakMap<object, Promise<Signer>>();

function randomSerial(): string {
  const bytes = randomBytes(16);
  // Positive INTEGER of exactly 16 bytes: clear the sign bit, avoid a leading zero byte.
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function checkDays(what: string, days: number | undefined, fallback: number, max: number): number {
  const value = days ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new InvalidOptionError(`${what} must be a number in (0, ${max}], got ${String(days)}`);
  }
  return value;
}

function subjectName(cn: string, organization: string | undefined): x509.JsonName {
  const name: x509.JsonName = [{ CN: [checkAttribute('common name', cn)] }];
  if (organization !== undefined) name.push({ O: [checkAttribute('organization', organization)] });
  return name;
}

/** Creates a new root CA (basicConstraints CA:TRUE pathlen 0, keyCertSign + cRLSign). */
export async function createCA(options: CAOptions = {}): Promise<CertificateAuthority> {
  const keyType = checkKeyType(options.keyType);
  const days = checkDays('validityDays', options.validityDays, 3650, 36500);
  const cn = options.name ?? '@net development CA';
  const keys = await generateKeys(keyType);
  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + days * DAY);
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.spki, false, nodeCrypto);
  const name = subjectName(cn, options.organization);
  const key = signingKey(keys.privateKey, keyType);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore,
      notAfter,
      publicKey: keys.spki,
      signingKey: key as never,
      signingAlgorithm: signatureAlgorithm(keyType),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        ski,
        new x509.AuthorityKeyIdentifierExtension(ski.keyId),
        ...(options.nameConstraints ? [nameConstraintsExtension(options.nameConstraints)] : []),
      ],
    },
    nodeCrypto,
  );
  const der = new Uint8Array(cert.rawData);
  const pem = toPem('CERTIFICATE', der);
  const ca: CertificateAuthority = {
    cert: pem,
    key: exportPrivateKeyPem(keys.privateKey),
    keyType,
    name: cn,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    fingerprint256: fingerprint256(der),
  };
  signers.set(ca, Promise.resolve({ cert, pem, signingKey: key, keyType, keyId: ski.keyId }));
  return ca;
}

async function loadSigner(ca: KeyPair): Promise<Signer> {
  const certPem = splitCertificates(ca.cert)[0]!;
  const cert = new x509.X509Certificate(certPem);
  const { keyObject, keyType } = parsePrivateKey(ca.key);
  if (!new X509Certificate(certPem).checkPrivateKey(keyObject)) {
    throw new KeyMismatchError('the CA private key does not match the CA certificate');
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new InvalidOptionError(`issuer ${cert.subject} is not a CA (basicConstraints CA:FALSE)`);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  return { cert, pem: certPem, signingKey: signingKey(keyObject, keyType), keyType, keyId: ski?.keyId };
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
  names: x509.JsonGeneralName[];
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
  const names: x509.JsonGeneralName[] = [];
  for (const n of options.dnsNames ?? []) names.push({ type: 'dns', value: normalizeDnsName(n) });
  for (const n of options.ipAddresses ?? []) names.push({ type: 'ip', value: normalizeIp(n) });
  for (const n of options.emails ?? []) names.push({ type: 'email', value: normalizeEmail(n) });
  for (const n of options.uris ?? []) names.push({ type: 'url', value: normalizeUri(n) });
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
  return { keyType, names, cn: checkAttribute('common name', cn.slice(0, 64)), notBefore, notAfter };
}

function leafExtensions(options: IssueOptions, prepared: Prepared, ski: x509.SubjectKeyIdentifierExtension) {
  const usage = options.usage ?? 'server';
  let flags = x509.KeyUsageFlags.digitalSignature;
  // RSA key exchange is gone from our cipher list, but other peers may still use it with RSA keys.
  if (prepared.keyType.startsWith('RSA')) flags |= x509.KeyUsageFlags.keyEncipherment;
  const eku: string[] = [];
  if (usage !== 'client') eku.push(x509.ExtendedKeyUsage.serverAuth);
  if (usage !== 'server') eku.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(flags, true),
    new x509.ExtendedKeyUsageExtension(eku, false),
    ski,
  ];
  // RFC 5280: SAN is critical when the subject is empty; ours always has a CN, so non-critical.
  if (prepared.names.length > 0)
    extensions.push(new x509.SubjectAlternativeNameExtension(prepared.names, false));
  return extensions;
}

function finish(
  cert: x509.X509Certificate,
  keys: NodeKeyPair,
  keyType: KeyType,
  caPem: string | undefined,
): IssuedCertificate {
  const der = new Uint8Array(cert.rawData);
  const pem = toPem('CERTIFICATE', der);
  return {
    cert: pem,
    key: exportPrivateKeyPem(keys.privateKey),
    caCert: caPem ?? pem,
    keyType,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
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
  if (signer.cert.notAfter.getTime() <= Date.now()) {
    throw new CertificateExpiredError(
      `CA ${signer.cert.subject} expired on ${signer.cert.notAfter.toISOString()}`,
    );
  }
  if (prepared.notAfter > signer.cert.notAfter) prepared.notAfter = signer.cert.notAfter;
  const keys = await generateKeys(prepared.keyType);
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.spki, false, nodeCrypto);
  const extensions = leafExtensions(options, prepared, ski);
  if (signer.keyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(signer.keyId));
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: subjectName(prepared.cn, options.organization),
      issuer: signer.cert.subjectName,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      publicKey: keys.spki,
      signingKey: signer.signingKey as never,
      signingAlgorithm: signatureAlgorithm(signer.keyType),
      extensions,
    },
    nodeCrypto,
  );
  return finish(cert, keys, prepared.keyType, signer.pem);
}

/**
 * A self-signed certificate for the simplest case (one service, the client trusts exactly this
 * certificate via `ca`). Prefer a CA when more than one certificate is involved.
 */
export async function selfSigned(options: IssueOptions = {}): Promise<IssuedCertificate> {
  const prepared = prepare({ dnsNames: ['localhost'], ...options }, true);
  const keys = await generateKeys(prepared.keyType);
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.spki, false, nodeCrypto);
  const extensions = leafExtensions(options, prepared, ski);
  const name = subjectName(prepared.cn, options.organization);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      publicKey: keys.spki,
      signingKey: signingKey(keys.privateKey, prepared.keyType) as never,
      signingAlgorithm: signatureAlgorithm(prepared.keyType),
      extensions,
    },
    nodeCrypto,
  );
  return finish(cert, keys, prepared.keyType, undefined);
}
