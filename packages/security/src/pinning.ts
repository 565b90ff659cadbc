import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { checkServerIdentity, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { InvalidOptionError, PinMismatchError } from './errors.js';

const PIN = /^(?:sha256\/)?([A-Za-z0-9+/]{43}=)$/;

/** Decodes `sha256/<base64>` or `<base64>` SPKI pins into 32-byte digests. */
export function parsePins(pins: readonly string[]): Buffer[] {
  if (!Array.isArray(pins))
    throw new InvalidOptionError('pins must be an array of base64 SHA-256 SPKI hashes');
  return pins.map((pin) => {
    const match = typeof pin === 'string' ? PIN.exec(pin.trim()) : null;
    if (!match)
      throw new InvalidOptionError(`invalid SPKI pin ${JSON.stringify(pin)}: expected base64 SHA-256`);
    return Buffer.from(match[1]!, 'base64');
  });
}

/** SPKI DER digests of the peer chain as presented, leaf first (bounded: chains are short). */
function chainDigests(cert: PeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let current: DetailedPeerCertificate | PeerCertificate | undefined = cert;
  const seen = new Set<object>();
  while (current && !seen.has(current) && out.length < 10) {
    seen.add(current);
    // `pubkey` is the raw EC point for EC keys, not the SPKI, so derive the SPKI from the DER.
    if (current.raw) {
      const spki = new X509Certificate(current.raw).publicKey.export({ type: 'spki', format: 'der' });
      out.push(createHash('sha256').update(spki).digest());
    }
    current = (current as DetailedPeerCertificate).issuerCertificate;
  }
  return out;
}

/** Compares every digest with every pin without early exit, so timing says nothing about pins. */
function anyMatch(digests: readonly Buffer[], pins: readonly Buffer[]): boolean {
  let match = 0;
  for (const d of digests) for (const p of pins) match |= timingSafeEqual(d, p) ? 1 : 0;
  return match === 1;
}

/**
 * A `checkServerIdentity` that runs Node's hostname check first, then the SPKI pins against every
 * certificate of the verified chain, then the caller's own check. With no pins it is Node's check.
 */
export function pinnedServerIdentity(
  pins: readonly string[],
  extra?: (host: string, cert: PeerCertificate) => Error | undefined,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const digests = parsePins(pins);
  return (host, cert) => {
    const err = checkServerIdentity(host, cert);
    if (err) return err;
    if (digests.length > 0) {
      const chain = chainDigests(cert);
      if (!anyMatch(chain, digests))
        return new PinMismatchError(
          host,
          chain.map((d) => d.toString('base64')),
        );
    }
    return extra ? extra(host, cert) : undefined;
  };
}
