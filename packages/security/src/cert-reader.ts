import { children, DerError, type DerNode, readNode, readOid, TAG } from './der.js';

/**
 * The parts of a certificate that node:crypto's X509Certificate does not expose in a structured
 * form: the raw subject Name (to become a leaf's issuer), the key identifier, basicConstraints and
 * the subjectAltName entries. Everything else (validity, fingerprints, key checks) stays with
 * node:crypto.
 */
export interface CertificateParts {
  subject: Buffer;
  subjectKeyId: Buffer | undefined;
  isCA: boolean;
  altNames: { type: 'dns' | 'ip' | 'email' | 'uri'; value: Buffer }[];
}

const EXT_SUBJECT_KEY_ID = '2.5.29.14';
const EXT_BASIC_CONSTRAINTS = '2.5.29.19';
const EXT_SUBJECT_ALT_NAME = '2.5.29.17';

function expect(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.tag !== tag) throw new DerError(`malformed certificate: ${what}`);
  return node;
}

function extensionsOf(tbs: DerNode[]): DerNode[] {
  // The optional fields after subjectPublicKeyInfo are [1] issuerUID, [2] subjectUID, [3] extensions.
  const wrapped = tbs.find((node) => node.tag === 0xa3);
  if (!wrapped) return [];
  return children(expect(children(wrapped.contents)[0], TAG.SEQUENCE, 'extensions').contents);
}

/** Reads the parts above from a DER certificate; throws DerError when it is malformed. */
export function readCertificate(der: Buffer): CertificateParts {
  const cert = expect(readNode(der), TAG.SEQUENCE, 'certificate');
  const tbs = children(expect(children(cert.contents)[0], TAG.SEQUENCE, 'tbsCertificate').contents);
  // With the explicit [0] version present, subject is field 5; without it (v1), field 4.
  const base = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expect(tbs[base + 4], TAG.SEQUENCE, 'subject').raw;
  const parts: CertificateParts = { subject, subjectKeyId: undefined, isCA: false, altNames: [] };
  for (const ext of extensionsOf(tbs)) {
    const fields = children(expect(ext, TAG.SEQUENCE, 'extension').contents);
    const id = readOid(expect(fields[0], TAG.OID, 'extension id').contents);
    const value = expect(fields[fields.length - 1], TAG.OCTET_STRING, 'extension value').contents;
    if (id === EXT_SUBJECT_KEY_ID) {
      parts.subjectKeyId = Buffer.from(expect(readNode(value), TAG.OCTET_STRING, 'key id').contents);
    } else if (id === EXT_BASIC_CONSTRAINTS) {
      const first = children(expect(readNode(value), TAG.SEQUENCE, 'basicConstraints').contents)[0];
      parts.isCA = first?.tag === TAG.BOOLEAN && first.contents[0] !== 0;
    } else if (id === EXT_SUBJECT_ALT_NAME) {
      for (const name of children(expect(readNode(value), TAG.SEQUENCE, 'subjectAltName').contents)) {
        const type = { 129: 'email', 130: 'dns', 134: 'uri', 135: 'ip' } as const;
        const kind = type[name.tag as keyof typeof type];
        if (kind) parts.altNames.push({ type: kind, value: Buffer.from(name.contents) });
      }
    }
  }
  return parts;
}

/** Text of an iPAddress SAN entry (4 or 16 bytes); undefined for other lengths. */
export function ipText(bytes: Buffer): string | undefined {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}
