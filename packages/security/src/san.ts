import { readCertificate, ipText } from './cert-reader.js';
import { CertificateParseError } from './errors.js';
import { type CertificateInput, certificateDer } from './fingerprint.js';
import { canonicalIp } from './names.js';

/** The names a certificate is valid for, from its subjectAltName extension. */
export interface SubjectAltNames {
  dnsNames: string[];
  /** Canonical text (IPv6 compressed, e.g. `::1`). */
  ipAddresses: string[];
  emails: string[];
  uris: string[];
}

/** Decoded subjectAltName entries (DNS, IP, email, URI) of a certificate; other types are skipped. */
export function subjectAltNames(cert: CertificateInput): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], ipAddresses: [], emails: [], uris: [] };
  const der = certificateDer(cert);
  let parts: ReturnType<typeof readCertificate>;
  try {
    parts = readCertificate(der);
  } catch (cause) {
    throw new CertificateParseError('certificate could not be parsed', { cause });
  }
  for (const name of parts.altNames) {
    switch (name.type) {
      case 'dns':
        out.dnsNames.push(name.value.toString('latin1').toLowerCase());
        break;
      case 'ip': {
        const text = ipText(name.value);
        if (text !== undefined) out.ipAddresses.push(canonicalIp(text) ?? text);
        break;
      }
      case 'email':
        out.emails.push(name.value.toString('latin1'));
        break;
      case 'uri':
        out.uris.push(name.value.toString('latin1'));
        break;
    }
  }
  return out;
}
