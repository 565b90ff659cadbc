import { constants, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type ConnectionOptions, createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import { isIP } from 'node:net';
import { CertificateParseError, InvalidOptionError, KeyMismatchError } from './errors.js';
import type { ClientOptionsInput, ServerOptionsInput, SniEntry } from './options.js';
import { pinnedServerIdentity } from './pinning.js';

/**
 * TLS 1.3 suites (all AEAD, all forward secret) followed by Mozilla's "intermediate" TLS 1.2
 * list without DHE: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only. Node's own default
 * still accepts static-RSA and CBC suites (AES128-SHA, AES128-GCM-SHA256) on TLS 1.2.
 * TLS 1.3 suites must be listed explicitly: a cipher string without them disables TLS 1.3 in Node.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Default `handshakeTimeout` of `serverOptions()` in milliseconds. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

// Client-initiated TLS 1.2 renegotiation is a CPU-exhaustion vector and no modern client needs it.
const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION ?? 0;

function checkVersion(v: unknown): 'TLSv1.2' | 'TLSv1.3' {
  if (v === undefined) return 'TLSv1.2';
  if (v !== 'TLSv1.2' && v !== 'TLSv1.3') {
    throw new InvalidOptionError(`minVersion must be 'TLSv1.2' or 'TLSv1.3', got ${String(v)}`);
  }
  return v;
}

// Fields of IssuedCertificate / DevCertificate that are not TLS options: dropped so that
// `serverOptions(issued)` yields clean Node options.
const CERTIFICATE_FACTS = [
  'caCert',
  'certPath',
  'keyPath',
  'issued',
  'notBefore',
  'notAfter',
  'fingerprint256',
  'spkiPin',
  'keyType',
  'serialNumber',
] as const;

function withoutFacts<T extends object>(options: T): T {
  for (const k of CERTIFICATE_FACTS) delete (options as Record<string, unknown>)[k];
  return options;
}

function refuseUnverified(input: object): void {
  if ((input as { rejectUnauthorized?: unknown }).rejectUnauthorized === false) {
    throw new InvalidOptionError(
      'rejectUnauthorized: false is not supported: trust the peer with `ca` (see createCA / openDevCA) instead',
    );
  }
}

/**
 * Fails early and clearly when a single PEM key does not belong to its certificate (OpenSSL would
 * say "key values mismatch" from inside createServer). Encrypted keys and arrays are left to Node.
 */
function checkPair(where: string, cert: unknown, key: unknown, passphrase: unknown): void {
  if (passphrase !== undefined) return;
  if (
    (typeof cert !== 'string' && !Buffer.isBuffer(cert)) ||
    (typeof key !== 'string' && !Buffer.isBuffer(key))
  )
    return;
  let leaf: X509Certificate;
  let privateKey: KeyObject;
  try {
    leaf = new X509Certificate(cert);
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new CertificateParseError(`${where}: certificate or key could not be parsed`, { cause });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new KeyMismatchError(`${where}: the private key does not belong to the certificate`);
  }
}

function matchSni(contexts: Map<string, SecureContext>, servername: string): SecureContext | undefined {
  const name = servername.toLowerCase();
  const exact = contexts.get(name);
  if (exact) return exact;
  const dot = name.indexOf('.');
  // A wildcard covers exactly one label, as in certificate matching (RFC 6125).
  return dot > 0 ? contexts.get(`*${name.slice(dot)}`) : undefined;
}

/**
 * Node `tls.createServer` / `https.createServer` options with a hardened policy: TLS 1.2 minimum,
 * forward-secret AEAD suites only, the client's cipher preference honoured (all suites are strong,
 * and clients know whether they have AES hardware), a 10 s handshake timeout, no renegotiation.
 * With `requestCert`, clients must present a certificate signed by `ca`.
 */
export function serverOptions(input: ServerOptionsInput): TlsOptions {
  if (input === null || typeof input !== 'object')
    throw new InvalidOptionError('serverOptions needs an options object');
  refuseUnverified(input);
  const { sni, handshakeTimeout, requestCert, ...rest } = input;
  if (!input.cert || !input.key) throw new InvalidOptionError('serverOptions needs cert and key');
  checkPair('serverOptions', input.cert, input.key, input.passphrase);
  const minVersion = checkVersion(input.minVersion);
  const timeout = handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  if (!Number.isInteger(timeout) || timeout <= 0 || timeout > 600_000) {
    throw new InvalidOptionError(
      `handshakeTimeout must be an integer in 1..600000 ms, got ${String(timeout)}`,
    );
  }
  if (requestCert && !input.ca) {
    throw new InvalidOptionError(
      'requestCert needs `ca`: without it any certificate from a public CA would authenticate a client',
    );
  }
  const options: TlsOptions = withoutFacts({
    ...rest,
    minVersion,
    ciphers: input.ciphers ?? TLS_CIPHERS,
    honorCipherOrder: false,
    handshakeTimeout: timeout,
    secureOptions: (input.secureOptions ?? 0) | SECURE_OPTIONS,
    requestCert: requestCert === true,
    rejectUnauthorized: true,
  });
  if (sni !== undefined) {
    const contexts = new Map<string, SecureContext>();
    for (const [host, entry] of Object.entries(sni) as Array<[string, SniEntry]>) {
      const name = host.toLowerCase();
      if (!/^(\*\.)?[a-z0-9_.-]+$/.test(name))
        throw new InvalidOptionError(`invalid SNI host ${JSON.stringify(host)}`);
      if (!entry?.cert || !entry.key) throw new InvalidOptionError(`SNI entry ${host} needs cert and key`);
      checkPair(`SNI entry ${host}`, entry.cert, entry.key, undefined);
      try {
        contexts.set(
          name,
          createSecureContext({ ...options, cert: entry.cert, key: entry.key, ca: entry.ca ?? input.ca }),
        );
      } catch (cause) {
        throw new CertificateParseError(`SNI entry ${host}: OpenSSL refused the certificate or key`, {
          cause,
        });
      }
    }
    options.SNICallback = (servername, cb) => cb(null, matchSni(contexts, servername));
  }
  return options;
}

/**
 * Node `tls.connect` / `https.request` options: TLS 1.2 minimum, the same strong suites, full
 * chain and hostname verification, and optional SPKI pinning checked after (never instead of)
 * that verification. Pass `cert`/`key` for mutual TLS.
 */
export function clientOptions(input: ClientOptionsInput = {}): ConnectionOptions {
  if (input === null || typeof input !== 'object')
    throw new InvalidOptionError('clientOptions needs an options object');
  refuseUnverified(input);
  const { pins, checkServerIdentity, ...rest } = input;
  const options: ConnectionOptions = withoutFacts({
    ...rest,
    minVersion: checkVersion(input.minVersion),
    ciphers: input.ciphers ?? TLS_CIPHERS,
    rejectUnauthorized: true,
    checkServerIdentity: pinnedServerIdentity(pins ?? [], checkServerIdentity),
  });
  // SNI must not carry an IP address (RFC 6066); Node checks the certificate against `host` then.
  const name = input.servername ?? input.host;
  if (name !== undefined && isIP(name) !== 0) {
    delete options.servername;
    if (options.host === undefined) options.host = name;
  }
  return options;
}
