import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { fingerprint256, spkiPin } from './fingerprint.js';
import { type SubjectAltNames, subjectAltNames } from './san.js';

/** Who is on the other end of a mutually authenticated TLS connection. */
export interface PeerIdentity extends SubjectAltNames {
  /** Subject common name, if any. */
  commonName: string | undefined;
  /** Subject distinguished name, one `KEY=value` per line as Node prints it. */
  subject: string;
  /** Issuer distinguished name. */
  issuer: string;
  serialNumber: string;
  fingerprint256: string;
  /** SPKI pin of the peer's key (stable across renewals that keep the key). */
  spkiPin: string;
  validFrom: Date;
  validTo: Date;
}

function commonNameOf(dn: string): string | undefined {
  for (const line of dn.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

/**
 * The verified identity of the TLS peer, or `null` when the peer presented no certificate or it
 * did not verify against the configured `ca` (check `socket.authorizationError` for why). Use on a
 * server created with `serverOptions({ requestCert: true, ca })`, or on a client socket.
 */
export function peerIdentity(socket: TLSSocket): PeerIdentity | null {
  if (!socket.authorized) return null;
  const peer = socket.getPeerCertificate();
  if (!peer?.raw) return null;
  const cert = new X509Certificate(peer.raw);
  return {
    commonName: commonNameOf(cert.subject),
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber.toLowerCase(),
    fingerprint256: fingerprint256(cert),
    spkiPin: spkiPin(cert),
    validFrom: new Date(cert.validFrom),
    validTo: new Date(cert.validTo),
    ...subjectAltNames(cert),
  };
}
