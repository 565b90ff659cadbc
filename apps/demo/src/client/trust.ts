import { request } from '@net/http';
import { clientOptions, spkiPin } from '@net/security';
import type { ConnectionOptions } from 'node:tls';

/** How the terminal client verifies TLS: a CA file, or a CA pin learned from discovery. */
export interface Trust {
  ca?: string | undefined;
  pin?: string | undefined;
}

/**
 * Resolve a pin into a CA: fetch /ca.pem from the server's HTTP port and accept it only if its
 * SPKI hash equals the pin announced over discovery. Verification is never switched off: without
 * a CA or a matching pin the TLS handshake simply fails against the system roots.
 */
export async function caFromPin(httpBase: string, pin: string): Promise<string> {
  const res = await request(new URL('/ca.pem', httpBase), { timeout: 5000, maxBodySize: 64 * 1024 });
  const pem = await res.text();
  if (res.status !== 200) throw new Error(`GET /ca.pem: HTTP ${res.status}`);
  if (spkiPin(pem) !== pin.replace(/^sha256\//, '')) throw new Error('CA pin mismatch: refusing the server');
  return pem;
}

export function tlsOptions(host: string, trust: Trust): ConnectionOptions {
  return clientOptions({
    host,
    ...(trust.ca ? { ca: trust.ca } : {}),
    ...(trust.pin ? { pins: [trust.pin] } : {}),
  });
}
