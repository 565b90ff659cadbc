// One benchmark server per process, so the load generator never shares its event loop.
// Usage: node bench/server.mjs <raw|net|net-schema|fastify|net-routes|fastify-routes>; prints {"port":N}.
// Every hello server answers GET / with the same JSON body from the same handler function.
import http from 'node:http';

const kind = process.argv[2];
const payload = () => ({ hello: 'world' });
/** The hello body's shape, for the route option that compiles a serializer from it. */
const helloSchema = { type: 'object', properties: { hello: { type: 'string' } }, required: ['hello'] };

/** 50 routes: 25 static, 25 with a parameter, spread over a few prefixes. */
export function routeTable() {
  const routes = [];
  for (let i = 0; i < 25; i++) routes.push(`/api/v1/resource${i}`);
  for (let i = 0; i < 25; i++) routes.push(`/api/v${1 + (i % 3)}/items${i}/:id`);
  return routes;
}

async function main() {
  let server;
  if (kind === 'raw') {
    // The fastest plain form: one writeHead with content-length, no per-header setHeader calls.
    server = http.createServer((_req, res) => {
      const body = JSON.stringify(payload());
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  } else if (kind === 'net' || kind === 'net-schema' || kind === 'net-routes') {
    const { createServer } = await import('../dist/index.js');
    const app = createServer();
    if (kind === 'net') app.get('/', payload);
    else if (kind === 'net-schema') app.get('/', payload, { response: helloSchema });
    else for (const route of routeTable()) app.get(route, (ctx) => ({ route, params: ctx.params }));
    server = app.node;
  } else if (kind === 'fastify' || kind === 'fastify-routes') {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    if (kind === 'fastify') app.get('/', payload);
    else for (const route of routeTable()) app.get(route, async (req) => ({ route, params: req.params }));
    await app.ready();
    server = app.server;
  } else {
    throw new Error(`unknown server kind ${kind}`);
  }
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
  });
  // CPU time is reported on request: under contention it is a steadier cost measure than req/s.
  process.on('message', (msg) => {
    if (msg === 'cpu') process.send(process.cpuUsage());
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) await main();
