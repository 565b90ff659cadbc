import { existsSync } from 'node:fs';
import { type Context, HttpError, reply, type Server, serveStatic } from '@net/http';
import { type ChatCore, ChatError } from '../chat/index.js';
import type { Metrics } from '../metrics.js';
import type { StoreHealth } from '../store/types.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { authenticate, type TokenIdentity, type TokenIssuer } from './auth.js';

const STATUS: Record<string, number> = {
  RATE_LIMITED: 429,
  SHUTTING_DOWN: 503,
  STORE_FAILED: 503,
  // The store did not confirm in time: maybe stored; resend with the same cid.
  OUTCOME_UNKNOWN: 504,
  NO_SUCH_NICK: 404,
  // Too many rooms (this node's --max-rooms, or the Redis room limits): join an existing one.
  ROOM_LIMIT: 409,
  UNAUTHORIZED: 401,
  SESSION_ENDED: 401,
  LOGIN_REQUIRED: 401,
  LOGIN_FAILED: 401,
  ACCOUNT_EXISTS: 409,
  NAME_REGISTERED: 409,
  NICK_TAKEN: 409,
  BUSY: 503,
  FORBIDDEN: 403,
  NOT_INVITED: 403,
  NOT_OWNER: 403,
  NOT_PRIVATE: 400,
  NOT_A_MEMBER: 404,
  NO_SUCH_ACCOUNT: 404,
  ROOM_EXISTS: 409,
};

/** Options of the HTTP API's access rules. */
export interface HttpAccess {
  /** Public room reads (room list, history) without a token. @default true */
  readonly publicReads?: boolean;
  /**
   * Operator token for `POST /api/admin/revoke`; the endpoint answers 404 without one. Compared as
   * SHA-256 digests with timingSafeEqual.
   */
  readonly adminToken?: string;
}

function bearer(ctx: Context): string | undefined {
  const m = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(ctx.headers.authorization ?? '');
  return m?.[1];
}

function unauthorized(message: string, code = 'UNAUTHORIZED'): HttpError {
  return new HttpError(401, message, { code, headers: { 'www-authenticate': 'Bearer' } });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** A JSON object body whose listed fields are strings; BAD_BODY otherwise. */
async function stringFields<K extends string>(
  ctx: Context,
  names: K[],
  shape: string,
): Promise<Record<K, string>> {
  const body = await ctx.json<Record<string, unknown>>();
  if (typeof body !== 'object' || body === null || names.some((n) => typeof body[n] !== 'string')) {
    throw new HttpError(400, `body must be JSON ${shape}`, { code: 'BAD_BODY' });
  }
  return body as Record<K, string>;
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
    access?: HttpAccess;
  },
): void {
  const { core, metrics, tokens } = deps;
  const publicReads = deps.access?.publicReads ?? true;
  const adminDigest = deps.access?.adminToken ? digest(deps.access.adminToken) : undefined;

  /** The live identity behind the request's bearer token (401 with a code when there is none). */
  const who = async (ctx: Context): Promise<TokenIdentity> => {
    const token = bearer(ctx);
    if (!token) {
      metrics.rejectedInput('http', 'unauthorized');
      throw unauthorized('a valid "Authorization: Bearer <token>" is required (see PROTOCOL.md)');
    }
    try {
      return await authenticate(core, tokens, token);
    } catch (err) {
      metrics.rejectedInput('http', 'unauthorized');
      if (err instanceof ChatError) throw unauthorized(err.message, err.code);
      chatError(core.clientError(err, 'auth'));
    }
  };
  /**
   * Reads need a live token unless public reads are on; a token sent anyway is checked, and its
   * account is the principal that private rooms are matched against.
   */
  const reader = async (ctx: Context): Promise<TokenIdentity | undefined> => {
    if (!publicReads || bearer(ctx) !== undefined) return who(ctx);
    return undefined;
  };
  const accountReply = (r: { account: string; token: string | undefined; session: { expires: number } }) => ({
    account: r.account,
    token: r.token,
    expires: r.session.expires,
  });
  server.post(
    '/api/register',
    async (ctx) => {
      const b = await stringFields(ctx, ['name', 'password'], '{"name": "...", "password": "..."}');
      try {
        const record = await core.identity.register(b.name, b.password, ctx.ip);
        return reply(201, accountReply(await core.identity.startSession(record.name)));
      } catch (err) {
        chatError(core.clientError(err, 'register'));
      }
    },
    { bodyLimit: 4096 },
  );
  server.post(
    '/api/login',
    async (ctx) => {
      const b = await stringFields(ctx, ['name', 'password'], '{"name": "...", "password": "..."}');
      try {
        return accountReply(await core.identity.login(b.name, b.password, ctx.ip));
      } catch (err) {
        chatError(core.clientError(err, 'login'));
      }
    },
    { bodyLimit: 4096 },
  );
  server.post('/api/logout', async (ctx) => {
    const id = await who(ctx);
    if (!id.account)
      throw new HttpError(400, 'a guest token has no login session', { code: 'NOT_LOGGED_IN' });
    await core.identity
      .logout(id.sid.slice(3))
      .catch((err: unknown) => chatError(core.clientError(err, 'logout')));
    return reply(204, undefined);
  });
  server.post(
    '/api/password',
    async (ctx) => {
      const id = await who(ctx);
      if (!id.account) throw new HttpError(400, 'log in first', { code: 'NOT_LOGGED_IN' });
      const b = await stringFields(ctx, ['old', 'new'], '{"old": "...", "new": "..."}');
      try {
        return accountReply(await core.identity.changePassword(id.account, b.old, b.new, ctx.ip));
      } catch (err) {
        chatError(core.clientError(err, 'password'));
      }
    },
    { bodyLimit: 4096 },
  );
  server.post(
    '/api/admin/revoke',
    async (ctx) => {
      const token = bearer(ctx);
      if (!adminDigest) throw new HttpError(404, 'not found', { code: 'NOT_FOUND' });
      if (!token || !timingSafeEqual(digest(token), adminDigest)) {
        metrics.rejectedInput('http', 'forbidden');
        throw new HttpError(403, 'operator token required', { code: 'FORBIDDEN' });
      }
      const b = await stringFields(ctx, ['account'], '{"account": "..."}');
      try {
        return { account: b.account, ended: await core.identity.revokeAccount(b.account) };
      } catch (err) {
        chatError(core.clientError(err, 'revoke'));
      }
    },
    { bodyLimit: 4096 },
  );
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
    const id = await reader(ctx);
    const page = roomPageQuery(ctx.searchParams);
    if (!page) {
      metrics.rejectedInput('http', 'bad_limit');
      throw new HttpError(400, 'limit must be an integer 1-1000, after a room name', { code: 'BAD_LIMIT' });
    }
    const principal = id === undefined ? undefined : core.principal(id);
    return core.roomPage(principal === undefined ? page : { ...page, principal });
  });
  server.get('/api/rooms/:room/messages', async (ctx) => {
    const id = await reader(ctx);
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
      const principal = id === undefined ? undefined : core.principal(id);
      const { messages, truncated } = await core.history(
        room,
        after === '' ? undefined : after,
        limit,
        principal,
      );
      return { room: room.toLowerCase(), messages, truncated };
    } catch (err) {
      if (err instanceof ChatError && err.code === 'NOT_INVITED') {
        metrics.rejectedInput('http', 'not_invited');
        // No token: say what is missing (401); a token of a non-member: refused (403).
        if (id === undefined)
          throw unauthorized(`${err.message}; send a member's session token`, 'NOT_INVITED');
      } else metrics.rejectedInput('http', 'bad_request');
      chatError(err);
    }
  });
  server.post(
    '/api/rooms/:room/messages',
    async (ctx: Context<{ room: string }>) => {
      const id = await who(ctx);
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
        const message = await core.post(deps.transport, id.nick, ctx.params.room, body.text, body.cid, {
          sid: id.sid,
          address: ctx.ip,
          ...(id.account === undefined ? {} : { account: id.account }),
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
