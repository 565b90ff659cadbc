import { createServer, HttpError, reply, type Server } from '@net/http';
import { hostOf } from './host-check.js';

/**
 * Plain HTTP in `--tls-only` mode: every request is answered with a permanent redirect to the
 * same path on HTTPS, and nothing else (no page, no API, no WebSocket). Hosts outside the
 * allowlist get 421 instead of a redirect to a name an attacker chose.
 */
export function mountHttpsRedirect(
  httpsPort: number,
  allowHost: (host: string | undefined) => boolean,
): Server {
  const http = createServer({ bodyLimit: 0 });
  const redirect = (ctx: { req: { headers: { host?: string }; url?: string } }) => {
    const host = ctx.req.headers.host;
    if (host === undefined || !allowHost(host)) {
      throw new HttpError(421, 'this server does not answer to that Host (see --host-name)', {
        code: 'HOST_NOT_ALLOWED',
      });
    }
    const name = hostOf(host);
    const authority = name.includes(':') ? `[${name}]` : name;
    const port = httpsPort === 443 ? '' : `:${httpsPort}`;
    return reply(308, '', { location: `https://${authority}${port}${ctx.req.url ?? '/'}` });
  };
  http.route('*', '/', redirect);
  http.route('*', '/*', redirect);
  return http;
}
