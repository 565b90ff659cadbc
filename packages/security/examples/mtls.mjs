// Mutual TLS: the server only talks to clients holding a certificate from its CA, and knows who they are.
import tls from 'node:tls';
import { clientOptions, createCA, issueCertificate, peerIdentity, serverOptions } from '@net/security';

const ca = await createCA({ name: 'internal CA' });
const server = await issueCertificate(ca, { dnsNames: ['api.internal'], ipAddresses: ['127.0.0.1'] });
const alice = await issueCertificate(ca, {
  usage: 'client',
  commonName: 'alice',
  uris: ['spiffe://corp/alice'],
});

const srv = tls.createServer(serverOptions({ ...server, ca: ca.cert, requestCert: true }), (socket) => {
  socket.end(`hello ${peerIdentity(socket)?.commonName}\n`);
});
srv.listen(0, '127.0.0.1', () => {
  const opts = clientOptions({ ca: ca.cert, servername: 'api.internal', cert: alice.cert, key: alice.key });
  const socket = tls.connect({ ...opts, host: '127.0.0.1', port: srv.address().port });
  socket.setEncoding('utf8').on('data', (d) => process.stdout.write(d));
  socket.on('end', () => srv.close());
});
