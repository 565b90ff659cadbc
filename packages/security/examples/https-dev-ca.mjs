// HTTPS with a dev CA in 5 lines, then a client that trusts that CA (no rejectUnauthorized: false).
import https from 'node:https';
import { clientOptions, openDevCA, serverOptions } from '@net/security';

const ca = await openDevCA({ dir: process.env.CA_DIR ?? '.dev-ca' });
const site = await ca.certificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
const server = https.createServer(serverOptions(site), (_req, res) => res.end('hello over TLS\n'));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  https.get(
    { ...clientOptions({ ca: ca.caCert, servername: 'localhost' }), host: '127.0.0.1', port },
    (res) => {
      res.setEncoding('utf8').on('data', (d) => process.stdout.write(`${res.socket.getProtocol()} ${d}`));
      res.on('end', () => server.close());
    },
  );
});
