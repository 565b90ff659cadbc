import type { ConnectionOptions, PeerCertificate, SecureVersion, TlsOptions } from 'node:tls';

/** Key algorithms a certificate can be issued for. ECDSA P-256 is the fast, widely supported default. */
export type KeyType = 'P-256' | 'P-384' | 'RSA-2048' | 'RSA-3072';

/** A certificate and its private key, both PEM. Spreads straight into Node TLS options. */
export interface KeyPair {
  /** Certificate PEM (may hold a chain, leaf first). */
  cert: string;
  /** PKCS#8 private key PEM. */
  key: string;
}

/** Options of `createCA()`. */
export interface CAOptions {
  /**
   * Common name of the CA.
   * @default '@net development CA'
   */
  name?: string;
  /** Organization (O) attribute of the CA subject. Omitted when not set. */
  organization?: string;
  /**
   * Validity in days from now, 1..36500.
   * @default 3650
   */
  validityDays?: number;
  /**
   * Key algorithm of the CA.
   * @default 'P-256'
   */
  keyType?: KeyType;
  /**
   * Names the CA may issue for (a critical nameConstraints extension with permitted subtrees).
   * Leaves for any other DNS name or address fail verification in OpenSSL, Node and browsers.
   * @default no constraints
   */
  nameConstraints?: NameConstraintsOptions;
}

/** Permitted subtrees of a CA (RFC 5280 4.2.1.10). */
export interface NameConstraintsOptions {
  /** DNS names; each permits itself and every name below it (`localhost` permits `a.localhost`). */
  dnsNames?: readonly string[];
  /** IP ranges in CIDR form (`127.0.0.0/8`, `::1/128`); a bare address means just that address. */
  ipRanges?: readonly string[];
}

/** What the certificate is for: drives keyUsage and extKeyUsage. */
export type CertificateUsage = 'server' | 'client' | 'both';

/** Options of `issueCertificate()` and `selfSigned()`. */
export interface IssueOptions {
  /**
   * DNS names for the subjectAltName (lowercased; a leading `*.` wildcard label is allowed).
   * At least one DNS name, IP address, email or URI is required for server certificates.
   * @default []
   */
  dnsNames?: readonly string[];
  /**
   * IPv4/IPv6 addresses for the subjectAltName (e.g. `'127.0.0.1'`, `'::1'`).
   * @default []
   */
  ipAddresses?: readonly string[];
  /** rfc822Name (email) entries for the subjectAltName, typical of client certificates. */
  emails?: readonly string[];
  /** URI entries for the subjectAltName (e.g. SPIFFE IDs `spiffe://example.org/svc`). */
  uris?: readonly string[];
  /**
   * Subject common name. Verifiers ignore it for hostnames (SAN is authoritative).
   * @default the first DNS name, else the first IP, email or URI
   */
  commonName?: string;
  /** Organization (O) attribute of the subject. */
  organization?: string;
  /**
   * Validity in days, 1..3650. Browsers reject server certificates valid longer than 398 days
   * from public CAs and 825 days from private ones, hence the one-year default.
   * @default 365
   */
  validityDays?: number;
  /**
   * Start of validity. Defaults to one minute ago so a peer with a slightly slow clock accepts it.
   * @default new Date(Date.now() - 60_000)
   */
  notBefore?: Date;
  /** End of validity; overrides `validityDays` (tests use it to mint expired certificates). */
  notAfter?: Date;
  /**
   * `server` (serverAuth), `client` (clientAuth) or `both`.
   * @default 'server'
   */
  usage?: CertificateUsage;
  /**
   * Key algorithm of the new certificate's key (independent of the issuer's).
   * @default 'P-256'
   */
  keyType?: KeyType;
}

/** Options of `openDevCA()`. */
export interface DevCAOptions extends CAOptions {
  /** Directory holding `ca.pem` and `ca-key.pem` (created with mode 0700 if missing). */
  dir: string;
  /**
   * How long to wait for another process creating/issuing in the same directory.
   * @default 10000
   */
  lockTimeoutMs?: number;
  /**
   * A lock file older than this is considered abandoned by a crashed process and removed.
   * @default 30000
   */
  staleLockMs?: number;
}

/** Options of `DevCA.certificate()`. */
export interface DevCertificateOptions extends IssueOptions {
  /**
   * File stem: the files are `<name>.pem` and `<name>-key.pem` in the CA directory.
   * Letters, digits, `.`, `_`, `-` only.
   * @default the first DNS name or IP address (with `:` replaced by `_`)
   */
  name?: string;
  /**
   * Reissue when the existing certificate expires within this many days.
   * @default 7
   */
  renewBeforeDays?: number;
}

/** A server certificate for one SNI host name (or `*.example.com` wildcard). */
export interface SniEntry extends KeyPair {
  /** CA certificates for client verification on this host (mTLS). Defaults to the top-level `ca`. */
  ca?: string | string[];
}

/** Options of `serverOptions()`: any Node `tls.TlsOptions` except the unsafe ones, plus a few of ours. */
export interface ServerOptionsInput
  extends Omit<TlsOptions, 'rejectUnauthorized' | 'SNICallback' | 'cert' | 'key' | 'ca' | 'requestCert'> {
  /** Server certificate PEM (chain allowed, leaf first). */
  cert: string | Buffer | Array<string | Buffer>;
  /** Server private key PEM. */
  key: string | Buffer | Array<string | Buffer>;
  /** CA certificates trusted for client certificates. Required when `requestCert` is true. */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Mutual TLS: require a client certificate signed by `ca`. Clients without one are refused
   * during the handshake (`rejectUnauthorized` is always true).
   * @default false
   */
  requestCert?: boolean;
  /**
   * Host name to certificate map served by SNI. Keys are exact names or `*.suffix` (one label).
   * Unknown or absent SNI gets the top-level `cert`/`key`.
   */
  sni?: Readonly<Record<string, SniEntry>>;
  /**
   * Abort handshakes that take longer than this (Node's default is 120 s, an easy slowloris).
   * @default 10000
   */
  handshakeTimeout?: number;
  /**
   * Lowest protocol version accepted. `'TLSv1.2'` or `'TLSv1.3'`.
   * @default 'TLSv1.2'
   */
  minVersion?: SecureVersion;
  /**
   * OpenSSL cipher string. Leave unset: the default is Mozilla "intermediate" (TLS 1.3 suites plus
   * ECDHE with AES-GCM or ChaCha20-Poly1305 on TLS 1.2).
   * @default TLS_CIPHERS
   */
  ciphers?: string;
}

/** Options of `clientOptions()`: any Node `tls.ConnectionOptions` except the unsafe ones, plus pins. */
export interface ClientOptionsInput
  extends Omit<ConnectionOptions, 'rejectUnauthorized' | 'checkServerIdentity' | 'ca'> {
  /** CA certificates to trust instead of the system roots (e.g. the dev CA). */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Name the certificate must be valid for, and the SNI sent. An IP address is checked against the
   * certificate's IP SANs and not sent as SNI (RFC 6066 forbids it).
   * @default the `host` option
   */
  servername?: string;
  /**
   * SPKI pins: base64 SHA-256 of a SubjectPublicKeyInfo (see `spkiPin()`), with or without a
   * `sha256/` prefix. Checked after Node's chain and hostname verification; the connection
   * succeeds only if some certificate in the verified chain matches one pin.
   */
  pins?: readonly string[];
  /** Extra identity check run after the built-in checks (and pins) pass. Return an Error to refuse. */
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  /**
   * Lowest protocol version offered.
   * @default 'TLSv1.2'
   */
  minVersion?: SecureVersion;
  /**
   * OpenSSL cipher string offered.
   * @default TLS_CIPHERS
   */
  ciphers?: string;
}

/** Key material a reload loader returns. */
export interface ReloadMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA for client certificates (mTLS). */
  ca?: string | Buffer;
}

/** File paths a reloadable server reads and watches. */
export interface ReloadFiles {
  certPath: string;
  keyPath: string;
  caPath?: string;
}

/** Options of `reloadable()`. */
export interface ReloadOptions {
  /**
   * Hardened options applied to every new context (the `cert`/`key`/`ca` come from the loader).
   * Pass the same values you gave `serverOptions()`, e.g. `{ requestCert: true }`.
   * @default {}
   */
  serverOptions?: Omit<ServerOptionsInput, 'cert' | 'key' | 'ca'>;
  /**
   * Files (or directories) to watch when the loader is a function. With `ReloadFiles` the three
   * paths are watched automatically. Watching uses the parent directory so that atomic
   * replace-by-rename (certbot, kubernetes secrets, editors) is seen.
   * @default []
   */
  watch?: readonly string[];
  /**
   * Wait this long after the last file event before reloading, so a cert and key written one
   * after the other are read together.
   * @default 150
   */
  debounceMs?: number;
  /**
   * Refuse a certificate that is already expired.
   * @default true
   */
  rejectExpired?: boolean;
}

/** Options of `new RateLimiter()`. */
export interface RateLimiterOptions {
  /**
   * Bucket size: the burst a fresh key may spend at once.
   * @default 20
   */
  capacity?: number;
  /**
   * Tokens added per second per key (the sustained rate).
   * @default 10
   */
  refillPerSecond?: number;
  /**
   * Maximum keys tracked. Keys idle long enough to be full again are dropped first (no loss of
   * state); past the limit the least recently used key is dropped.
   * @default 10000
   */
  maxKeys?: number;
  /** Clock in milliseconds (monotonic). Tests inject a fake one. @default performance.now */
  now?: () => number;
}

/** Options of `originCheck()`. */
export interface OriginCheckOptions {
  /**
   * Accept requests without an `Origin` header (non-browser clients: curl, server-to-server).
   * Browsers always send `Origin` on WebSocket handshakes and cross-origin requests.
   * @default false
   */
  allowMissing?: boolean;
}

/** One HMAC key of a token signer. */
export interface TokenKey {
  /** Key id embedded in tokens: 1..32 characters of `[A-Za-z0-9_-]`. */
  kid: string;
  /** At least 32 bytes of secret (a string is taken as UTF-8). See `generateSecret()`. */
  secret: string | Uint8Array;
}

/** Options of `new TokenSigner()`. */
export interface TokenSignerOptions {
  /** Keys that verify tokens; the first (or `signingKid`) signs new ones. Rotation: prepend a new key. */
  keys: readonly TokenKey[];
  /**
   * Key id used to sign. Must be one of `keys`.
   * @default keys[0].kid
   */
  signingKid?: string;
  /**
   * Lifetime of tokens from `sign()` when no `ttlSeconds` is given.
   * @default 3600
   */
  defaultTtlSeconds?: number;
  /**
   * Tolerance for `exp`/`nbf` comparisons, for clocks of different machines.
   * @default 0
   */
  clockSkewSeconds?: number;
  /**
   * Longest token accepted by `verify()`, in characters. Longer input is rejected before any work.
   * @default 4096
   */
  maxTokenLength?: number;
  /** Clock in milliseconds since the epoch. @default Date.now */
  now?: () => number;
}
