// @peculiar/x509 resolves its decorators through tsyringe, which throws at load time unless a
// Reflect metadata polyfill is present. Importing it here, before x509, and importing x509 only
// through this module keeps users from ever seeing that error. This module is imported by every
// certificate function, so bundlers cannot tree-shake it away.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

/** Node's WebCrypto, passed explicitly to x509 calls so a user's own provider setting is untouched. */
export const crypto = webcrypto as unknown as webcrypto.Crypto;

// Only install a default when the application has not chosen one itself.
if (!x509.cryptoProvider.has(x509.CryptoProvider.DEFAULT)) x509.cryptoProvider.set(crypto);

export { x509 };
