import { brandBaseClass } from './error-brand.js';

/**
 * Every error this package throws or emits. Each has a stable `code` (like Node's `ERR_*`) so
 * callers can branch on `err.code` without matching message text.
 */

/** Base class: `err instanceof SecurityError` catches everything from this package. */
export class SecurityError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
brandBaseClass(SecurityError);

/** An option is missing, out of range or of the wrong type (names, IPs, validity, limits, secrets). */
export class InvalidOptionError extends SecurityError {
  constructor(message: string) {
    super('ERR_SECURITY_INVALID_OPTION', message);
  }
}

/** PEM text is malformed, too large, or holds no block of the expected type. */
export class PemError extends SecurityError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SECURITY_PEM', message, options);
  }
}

/** A certificate or private key could not be parsed or is of an unsupported kind. */
export class CertificateParseError extends SecurityError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SECURITY_CERT_PARSE', message, options);
  }
}

/** A private key does not belong to the certificate it was paired with. */
export class KeyMismatchError extends SecurityError {
  constructor(message: string) {
    super('ERR_SECURITY_KEY_MISMATCH', message);
  }
}

/** A certificate (or CA) is expired or not yet valid where a valid one is required. */
export class CertificateExpiredError extends SecurityError {
  constructor(message: string) {
    super('ERR_SECURITY_CERT_EXPIRED', message);
  }
}

/** A private key file is readable by group or others (like ssh, we refuse to use it). */
export class KeyPermissionsError extends SecurityError {
  readonly path: string;
  constructor(path: string, mode: number) {
    super(
      'ERR_SECURITY_KEY_PERMISSIONS',
      `private key ${path} has mode 0${(mode & 0o777).toString(8)}; it must not be readable by group or others (chmod 600)`,
    );
    this.path = path;
  }
}

/** Another process held the dev CA directory lock for longer than `lockTimeoutMs`. */
export class LockTimeoutError extends SecurityError {
  constructor(path: string, timeoutMs: number) {
    super('ERR_SECURITY_LOCK_TIMEOUT', `could not acquire ${path} within ${timeoutMs} ms`);
  }
}

/** The server's certificate chain verified but none of its public keys matches a configured pin. */
export class PinMismatchError extends SecurityError {
  readonly host: string;
  /** SPKI pins (base64 SHA-256) seen in the presented chain, leaf first. */
  readonly seen: string[];
  constructor(host: string, seen: string[]) {
    super('ERR_SECURITY_PIN_MISMATCH', `certificate for ${host} matches none of the configured SPKI pins`);
    this.host = host;
    this.seen = seen;
  }
}

/** Hot reload failed: the new key/certificate was rejected and the previous context stays in use. */
export class ReloadError extends SecurityError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SECURITY_RELOAD', message, options);
  }
}

/** Base class of token verification failures. */
export class TokenError extends SecurityError {}

/** The token is not `v1.<kid>.<payload>.<signature>`, is too long, or its payload is not a JSON object. */
export class TokenMalformedError extends TokenError {
  constructor(message: string) {
    super('ERR_SECURITY_TOKEN_MALFORMED', message);
  }
}

/** The token names a key id this verifier does not know (rotated out, or forged). */
export class TokenUnknownKeyError extends TokenError {
  constructor(kid: string) {
    super('ERR_SECURITY_TOKEN_UNKNOWN_KEY', `token signed with unknown key id ${JSON.stringify(kid)}`);
  }
}

/** The HMAC does not match: the token was tampered with or signed with another secret. */
export class TokenSignatureError extends TokenError {
  constructor() {
    super('ERR_SECURITY_TOKEN_SIGNATURE', 'token signature does not verify');
  }
}

/** The token's `exp` is in the past (beyond the allowed clock skew). */
export class TokenExpiredError extends TokenError {
  readonly expiredAt: Date;
  constructor(exp: number) {
    super('ERR_SECURITY_TOKEN_EXPIRED', `token expired at ${new Date(exp * 1000).toISOString()}`);
    this.expiredAt = new Date(exp * 1000);
  }
}

/** The token's `nbf` is in the future (beyond the allowed clock skew). */
export class TokenNotYetValidError extends TokenError {
  constructor(nbf: number) {
    super('ERR_SECURITY_TOKEN_NOT_YET_VALID', `token not valid before ${new Date(nbf * 1000).toISOString()}`);
  }
}

/** `net-dev-ca install`/`uninstall` could not change a trust store (missing tool, no rights, tool failed). */
export class TrustStoreError extends SecurityError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SECURITY_TRUST_STORE', message, options);
  }
}
