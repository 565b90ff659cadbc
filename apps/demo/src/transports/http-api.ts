import { existsSync } from 'node:fs';
import { type Context, HttpError, reply, type Server, serveStatic } from '@net/http';
import { type ChatCore, ChatError } from '../chat/index.js';
import type { Metrics } from '../metrics.js';
import type { StoreHealth } from '../store/types.js';
import type { TokenIssuer } from './auth.js';

const STATUS: Record<string, number> = {
  RATE_LIMITED: 429,
  SHUTTING_DOWN: 503,
  STORE_FAILED: 503,
  // The store did not confirm in time: maybe stored; resend with the same cid.
  OUTCOME_UNKNOWN: 504,
  NO_SUCH_NICK: 404,
  // Too many rooms (this node's --max-rooms, or the Redis room limits): join an existing one.
  ROOM_LIMIT: 409,
};

function nickOnly(nick: string | undefined): { nick: string; sid?: string } | undefined {
  return nick === undefined ? undefined : { nick };
}

/** `?limit=` (1-1000, default 100) and `?after=ROOM`; undefined when malformed. */
function roomPageQuery(q: URLSearchParams): { after?: string; limit: number } | undefined {
  const raw = q.get('limit');
  const limit = raw === null ? 100 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return undefined;
  const after = q.get('after');
  if (after !== null && (after.length > 64 || after === '')) return undefined;
  return after === null ? { limit } : { after, limit };
}

function chatError(err: unknown): never {
  if (err instanceof ChatError) {
    throw new HttpError(STATUS[err.code] ?? 400, err.message, { code: err.code });
  }
  throw err;
}

/**
 * Routes of the HTTP listener(s): the JSON API, health, metrics and the web page. The WebSocket
 * upgrade on /ws is registered separately (ws.ts).
 */
export function mountHttpApi(
  server: Server,
  deps: {
    core: ChatCore;
    metrics: Metrics;
    tokens: TokenIssuer;
    publicDir: string;
    /** The API reference built by `pnpm docs` (served at /docs/ when present). */
    docsDir?: string;
    transport: string;
  },
): void {
  const { core, metrics, tokens } = deps;
  const storeHealth = async (): Promise<StoreHealth> =>
    core.store.health ? core.store.health() : { store: 'unknown', ok: true };
  // 503 while the store is unreachable: a load balancer stops sending new clients to this node.
  server.get('/healthz', async () => {
    const store = await storeHealth();
    const body = {
      status: store.ok ? 'ok' : 'unavailable',
      uptime: Math.round(process.uptime()),
      connections: metrics.connectionCount(),
      store,
    };
    return reply(store.ok ? 200 : 503, body, { 'cache-control': 'no-store' });
  });
  server.get('/metrics', async () =>
    reply(200, metrics.render(await storeHealth()), {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    }),
  );
  server.get('/api/rooms', async (ctx) => {
    const page = roomPageQuery(ctx.searchParams);
    if (!page) {
      metrics.rejectedInput('http', 'bad_limit');
      throw new HttpError(400, 'limit must be an integer 1-1000, after a room name', { code: 'BAD_LIMIT' });
    }
    return core.roomPage(page);
  });
  server.get('/api/rooms/:room/messages', async (ctx) => {
    const q = ctx.searchParams;
    const after = q.get('after') ?? undefined;
    const limitRaw = q.get('limit');
    const limit = limitRaw === null ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      metrics.rejectedInput('http', 'bad_limit');
      throw new HttpError(400, 'limit must be an integer 1-1000', { code: 'BAD_LIMIT' });
    }
    try {
      const room = ctx.params.room;
      const { messages, truncated } = await core.history(room, after === '' ? undefined : after, limit);
      return { room: room.toLowerCase(), messages, truncated };
    } catch (err) {
      metrics.rejectedInput('http', 'bad_request');
      chatError(err);
    }
  });
  server.post(
    '/api/rooms/:room/messages',
    async (ctx: Context<{ room: string }>) => {
      const auth = ctx.headers.authorization ?? '';
      const m = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(auth);
      const claims = m ? (tokens.claims?.(m[1]!) ?? nickOnly(tokens.verify(m[1]!))) : undefined;
      const nick = claims?.nick;
      if (!nick) {
        metrics.rejectedInput('http', 'unauthorized');
        throw new HttpError(401, 'a valid "Authorization: Bearer <token>" is required (see PROTOCOL.md)', {
          code: 'UNAUTHORIZED',
          headers: { 'www-authenticate': 'Bearer' },
        });
      }
      const body = await ctx.json<{ text?: unknown; cid?: unknown }>();
      if (
        typeof body !== 'object' ||
        body === null ||
        typeof body.text !== 'string' ||
        (body.cid !== undefined && typeof body.cid !== 'string')
      ) {
        metrics.rejectedInput('http', 'bad_body');
        throw new HttpError(400, 'body must be JSON {"text": "...", "cid"?: "..."}', { code: 'BAD_BODY' });
      }
      try {
        const message = await core.post(deps.transport, nick, ctx.params.room, body.text, body.cid, {
          sid: claims.sid,
          address: ctx.ip,
        });
        return reply(201, body.cid === undefined ? message : { ...message, cid: body.cid });
      } catch (err) {
        chatError(err);
      }
    },
    { bodyLimit: 16 * 1024 },
  );
  if (deps.docsDir !== undefined && existsSync(deps.docsDir)) {
    const docs = serveStatic(deps.docsDir, { dotfiles: 'ignore' });
    server.get('/docs', () => reply(308, undefined, { location: '/docs/' }));
    server.get('/docs/*', (ctx: Context) => {
      ctx.header('x-content-type-options', 'nosniff');
      return docs(ctx);
    });
  }
  if (existsSync(deps.publicDir)) {
    const files = serveStatic(deps.publicDir, { dotfiles: 'ignore' });
    const page = (ctx: Context) => {
      // The page's own CSP is in index.html; these keep it from being framed or sniffed.
      ctx.header('x-content-type-options', 'nosniff');
      ctx.header('x-frame-options', 'DENY');
      ctx.header('referrer-policy', 'no-referrer');
      return files(ctx);
    };
    server.get('/', page);
    server.get('/*', page);
  }
}
