import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { ChatError } from './errors.js';

/**
 * Password hashing with node:crypto scrypt. Parameters (stored with every hash, so they can be
 * raised later without breaking old accounts):
 * - N = 2^14 (cost), r = 8 (block size), p = 1 (parallelism): 16 MiB and roughly 20-60 ms per
 *   hash on one core (the scrypt paper's interactive-login setting). At most
 *   {@link MAX_HASHING} hashes run at once and {@link MAX_HASH_QUEUE} wait; more are refused
 *   (BUSY), so a login flood costs bounded memory (2 x 16 MiB) instead of 16 MiB per request.
 * - 16-byte random salt per password, 32-byte derived key.
 * Stored as `scrypt$N$r$p$<salt base64url>$<key base64url>`; compared with timingSafeEqual.
 */
export const SCRYPT = { N: 2 ** 14, r: 8, p: 1, keylen: 32, saltBytes: 16 } as const;

/** Passwords are 8-256 characters (any Unicode); longer input is refused before hashing. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

export function checkPassword(password: string): string {
  if (typeof password !== 'string' || password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new ChatError('PASSWORD_INVALID', `password must be ${PASSWORD_MIN}-${PASSWORD_MAX} characters`);
  }
  return password;
}

/** Hashes computed at once, and hashes waiting for a slot before new ones are refused. */
export const MAX_HASHING = 2;
export const MAX_HASH_QUEUE = 64;
let running = 0;
const waiting: (() => void)[] = [];

async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_HASHING) {
    if (waiting.length >= MAX_HASH_QUEUE) {
      throw new ChatError('BUSY', 'too many logins at once, try again in a moment');
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else running++;
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number, keylen: number) {
  return slot(
    () =>
      new Promise<Buffer>((resolve, reject) => {
        scrypt(
          password.normalize('NFC'),
          salt,
          keylen,
          { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 },
          (err, key) => (err ? reject(err) : resolve(key)),
        );
      }),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const key = await derive(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const HASH_RE = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{16,128})$/;

/** A stored hash this code can check (parameters within sane bounds). */
export function isPasswordHash(stored: string): boolean {
  const m = HASH_RE.exec(stored);
  if (!m) return false;
  const n = Number(m[1]);
  const r = Number(m[2]);
  // At most 64 MiB per hash (128 * N * r bytes), whatever a tampered store says.
  return n >= 2 && (n & (n - 1)) === 0 && r >= 1 && Number(m[3]) >= 1 && 128 * n * r <= 64 * 1024 * 1024;
}

/** Constant-time comparison of a password with a stored hash; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (!isPasswordHash(stored)) return false;
  const [, n, r, p, salt, key] = HASH_RE.exec(stored)!;
  const expected = Buffer.from(key!, 'base64url');
  const actual = await derive(
    password,
    Buffer.from(salt!, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A hash of a random password: login of an unknown name costs the same time as a wrong password. */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex')).catch((err: unknown) => {
    dummy = undefined; // BUSY at the first use must not stick
    throw err;
  });
  return dummy;
}
