import { CertificateParseError } from './errors.js';
import { type CertificateInput, certificateDer } from './fingerprint.js';
import { canonicalIp } from './names.js';
import { x509 } from './x509-setup.js';

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
  let parsed: x509.X509Certificate;
  try {
    parsed = new x509.X509Certificate(certificateDer(cert));
  } catch (cause) {
    if (cause instanceof CertificateParseError) throw cause;
    throw new CertificateParseError('certificate could not be parsed', { cause });
  }
  const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return out;
  for (const name of san.names.items) {
    switch (name.type) {
      case 'dns':
        out.dnsNames.push(name.value.toLowerCase());
        break;
      case 'ip':
        out.ipAddresses.push(canonicalIp(name.value) ?? name.value);
        break;
      case 'email':
        out.emails.push(name.value);
        break;
      case 'url':
        out.uris.push(name.value);
        break;
    }
  }
  return out;
}
