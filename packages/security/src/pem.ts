import { chmod, open, rename, unlink } from 'node:fs/promises';
import { PemError } from './errors.js';

/** One `-----BEGIN <type>-----` block. */
export interface PemBlock {
  /** The label, e.g. `CERTIFICATE`, `PRIVATE KEY`. */
  type: string;
  /** Decoded body. */
  der: Buffer;
}

/** Limits of `parsePem()` and `readPemFile()`. */
export interface PemLimits {
  /**
   * Largest input accepted, in bytes/characters.
   * @default 1048576
   */
  maxBytes?: number;
  /**
   * Most blocks accepted in one input (a long chain or CA bundle).
   * @default 1000
   */
  maxBlocks?: number;
}

const DEFAULT_MAX_BYTES = 1024 * 1024;
const DEFAULT_MAX_BLOCKS = 1000;
const BEGIN = /^-----BEGIN ([A-Z0-9 ]{1,64})-----$/;
const END = /^-----END ([A-Z0-9 ]{1,64})-----$/;
const HEADER = /^[A-Za-z0-9-]+:/;
const B64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict RFC 7468 parser: text outside blocks is ignored (explanatory text is allowed), but a
 * block must close with the same label and hold only valid base64. Legacy encrypted PEM headers
 * (`Proc-Type:`) are rejected because the body would not be DER.
 */
export function parsePem(text: string | Buffer, limits: PemLimits = {}): PemBlock[] {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxBlocks = limits.maxBlocks ?? DEFAULT_MAX_BLOCKS;
  if (text.length > maxBytes)
    throw new PemError(`PEM input of ${text.length} bytes exceeds maxBytes ${maxBytes}`);
  const input = typeof text === 'string' ? text : text.toString('latin1');
  const lines = input.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let type: string | undefined;
  let body: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (type === undefined) {
      const begin = BEGIN.exec(line);
      if (begin) {
        type = begin[1]!;
        body = [];
      }
      continue;
    }
    const end = END.exec(line);
    if (end) {
      if (end[1] !== type) throw new PemError(`line ${i + 1}: END ${end[1]} does not close BEGIN ${type}`);
      const b64 = body.join('');
      if (!B64.test(b64)) throw new PemError(`${type} block is not valid base64`);
      if (blocks.length >= maxBlocks) throw new PemError(`more than maxBlocks ${maxBlocks} PEM blocks`);
      blocks.push({ type, der: Buffer.from(b64, 'base64') });
      type = undefined;
      continue;
    }
    if (BEGIN.test(line)) throw new PemError(`line ${i + 1}: BEGIN inside an unterminated ${type} block`);
    if (HEADER.test(line))
      throw new PemError(`line ${i + 1}: encrypted or legacy PEM headers are not supported`);
    if (line.length > 0) {
      if (!B64_LINE.test(line)) throw new PemError(`line ${i + 1}: invalid base64 in ${type} block`);
      body.push(line);
    }
  }
  if (type !== undefined) throw new PemError(`unterminated ${type} block`);
  return blocks;
}

/** Encodes DER as PEM with 64-character lines and a trailing newline. */
export function toPem(type: string, der: Uint8Array): string {
  if (!/^[A-Z0-9 ]{1,64}$/.test(type) || type.startsWith(' ') || type.endsWith(' ')) {
    throw new PemError(`invalid PEM label ${JSON.stringify(type)}`);
  }
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let out = `-----BEGIN ${type}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${type}-----\n`;
}

/** Every CERTIFICATE block of the input, each re-encoded as its own PEM string (leaf first). */
export function splitCertificates(pem: string | Buffer, limits?: PemLimits): string[] {
  const certs = parsePem(pem, limits).filter((b) => b.type === 'CERTIFICATE');
  if (certs.length === 0) throw new PemError('no CERTIFICATE block found');
  return certs.map((b) => toPem('CERTIFICATE', b.der));
}

/** Reads a PEM file without ever buffering more than `maxBytes`. */
export async function readPemFile(path: string, limits: PemLimits = {}): Promise<string> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new PemError(`${path} is ${size} bytes, more than maxBytes ${maxBytes}`);
    const buf = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new PemError(`${path} grew beyond maxBytes ${maxBytes} while reading`);
      if (length === buf.length) break;
    }
    const text = buf.toString('utf8', 0, length);
    parsePem(text, limits);
    return text;
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file atomically (temp file + rename) so readers and file watchers never see half a
 * key. `mode` 0o600 for private keys; the explicit chmod defeats a permissive umask.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await handle.close();
  await chmod(tmp, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Saves a certificate (mode 0644) and its private key (mode 0600), each atomically. */
export async function saveKeyPair(
  pair: { cert: string; key: string },
  paths: { certPath: string; keyPath: string },
): Promise<void> {
  await writeFileAtomic(paths.keyPath, pair.key, 0o600);
  await writeFileAtomic(paths.certPath, pair.cert, 0o644);
}
