import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { InvalidOptionError } from './errors.js';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Validates and lowercases a DNS name for a subjectAltName. Accepts a single leading `*` label;
 * rejects IP literals (they belong in ipAddresses, and verifiers ignore them as DNS names).
 */
export function normalizeDnsName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw new InvalidOptionError(`invalid DNS name ${JSON.stringify(name)}: must be 1..253 characters`);
  }
  let lower = name.toLowerCase().replace(/\.$/, '');
  // Internationalized names go into certificates as punycode (A-labels), which is what TLS clients compare.
  if (/[^\x00-\x7f]/.test(lower)) {
    const wildcard = lower.startsWith('*.');
    const ascii = domainToASCII(wildcard ? lower.slice(2) : lower);
    if (ascii === '') throw new InvalidOptionError(`invalid DNS name ${JSON.stringify(name)}`);
    lower = wildcard ? `*.${ascii}` : ascii;
  }
  if (isIP(lower) !== 0) {
    throw new InvalidOptionError(`${JSON.stringify(name)} is an IP address: put it in ipAddresses`);
  }
  const labels = lower.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (i === 0 && label === '*' && labels.length >= 3) continue;
    // Underscores appear in real service names (_acme-challenge, srv records); allow them.
    if (!LABEL.test(label.replace(/_/g, 'a'))) {
      throw new InvalidOptionError(
        `invalid DNS name ${JSON.stringify(name)}: label ${JSON.stringify(label)} is not a valid host label` +
          (label === '*' ? ' (a wildcard needs at least two labels after it)' : ''),
      );
    }
  }
  return lower;
}

/** Canonical text of an IP address (IPv6 compressed and lowercased), or undefined if not an IP. */
export function canonicalIp(ip: string): string | undefined {
  const kind = isIP(ip);
  if (kind === 4) return ip;
  if (kind === 6) {
    // The WHATWG URL parser prints IPv6 in RFC 5952 canonical form; zone ids are not valid in SANs.
    try {
      return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function normalizeIp(ip: string): string {
  const canonical = typeof ip === 'string' ? canonicalIp(ip) : undefined;
  if (canonical === undefined) throw new InvalidOptionError(`invalid IP address ${JSON.stringify(ip)}`);
  return canonical;
}

export function normalizeEmail(email: string): string {
  if (typeof email !== 'string' || email.length > 254 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
    throw new InvalidOptionError(`invalid email address ${JSON.stringify(email)}`);
  }
  return email;
}

export function normalizeUri(uri: string): string {
  let parsed: URL;
  try {
    parsed = new URL(String(uri));
  } catch {
    throw new InvalidOptionError(`invalid URI ${JSON.stringify(uri)}`);
  }
  if (uri.length > 2048 || /\s/.test(uri) || parsed.protocol.length < 2) {
    throw new InvalidOptionError(`invalid URI ${JSON.stringify(uri)}`);
  }
  return uri;
}

/** Subject attribute text: 1..64 characters (X.520 upper bound), no control characters. */
export function checkAttribute(what: string, value: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > 64 ||
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new InvalidOptionError(`invalid ${what} ${JSON.stringify(value)}: 1..64 printable characters`);
  }
  return value;
}
