import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { InvalidPathError, RouteError } from '../src/errors.js';
import { Router } from '../src/router.js';

describe('router', () => {
  it('matches static, param and wildcard routes with decoded params', () => {
    const r = new Router<string>();
    r.add('GET', '/', 'root');
    r.add('GET', '/rooms/:room/messages', 'messages');
    r.add('GET', '/static/*', 'static');
    r.add('GET', '/files/*path', 'files');
    expect(r.find('GET', '/')?.value).toBe('root');
    expect(r.find('GET', '/rooms/caf%C3%A9/messages')).toMatchObject({
      value: 'messages',
      params: { room: 'café' },
    });
    expect(r.find('GET', '/static/a/b.css')).toMatchObject({ value: 'static', params: { '*': 'a/b.css' } });
    expect(r.find('GET', '/static/')).toMatchObject({ value: 'static', params: { '*': '' } });
    expect(r.find('GET', '/static')).toBeNull();
    expect(r.find('GET', '/files/x/y')).toMatchObject({ params: { path: 'x/y' } });
    expect(r.find('GET', '/rooms//messages')).toBeNull();
    expect(r.find('GET', '/rooms/a/messages/')).toBeNull();
  });

  it('prefers literal over param over wildcard, and backtracks per method', () => {
    const r = new Router<string>();
    r.add('GET', '/users/me', 'me');
    r.add('POST', '/users/:id', 'update');
    r.add('GET', '/users/:id', 'user');
    r.add('GET', '/users/*', 'rest');
    r.add('GET', '/a/:x/c', 'axc');
    r.add('GET', '/a/b/:y', 'aby');
    expect(r.find('GET', '/users/me')?.value).toBe('me');
    expect(r.find('POST', '/users/me')?.value).toBe('update');
    expect(r.find('GET', '/users/7')?.value).toBe('user');
    expect(r.find('GET', '/users/7/x')?.value).toBe('rest');
    expect(r.find('GET', '/a/b/c')).toMatchObject({ value: 'aby', params: { y: 'c' } });
    expect(r.find('GET', '/a/z/c')).toMatchObject({ value: 'axc', params: { x: 'z' } });
  });

  it('falls back from HEAD to GET and reports allowed methods', () => {
    const r = new Router<string>();
    r.add('GET', '/x/:id', 'get');
    r.add('DELETE', '/x/:id', 'del');
    expect(r.find('HEAD', '/x/1')?.value).toBe('get');
    expect(r.find('PUT', '/x/1')).toBeNull();
    expect(r.allowed('/x/1')).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    expect(r.allowed('/nope')).toEqual([]);
  });

  it('lets the any-method route catch what specific ones do not', () => {
    const r = new Router<string>();
    r.add('*', '/any', 'any');
    r.add('GET', '/any', 'get');
    expect(r.find('GET', '/any')?.value).toBe('get');
    expect(r.find('PATCH', '/any')?.value).toBe('any');
  });

  it('rejects invalid and conflicting patterns with coded errors', () => {
    const r = new Router<string>();
    r.add('GET', '/a/:id', 'a');
    const codeOf = (fn: () => void): string | undefined => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(RouteError);
        return (err as RouteError).code;
      }
      return undefined;
    };
    expect(codeOf(() => r.add('GET', '/a/:other', 'b'))).toBe('ERR_HTTP_ROUTE_CONFLICT');
    expect(codeOf(() => r.add('GET', 'no-slash', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    expect(codeOf(() => r.add('GET', '/*/x', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    expect(codeOf(() => r.add('GET', '/:a/:a', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    expect(codeOf(() => r.add('GET', '/:__proto__', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    expect(codeOf(() => r.add('GET', '/x?y', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    expect(codeOf(() => r.add('get', '/y', 'b'))).toBe('ERR_HTTP_INVALID_ROUTE');
    // Different param names at the same position are fine.
    r.add('GET', '/a/:other/b', 'c');
    expect(r.find('GET', '/a/1/b')).toMatchObject({ params: { other: '1' } });
  });

  it('throws InvalidPathError for malformed percent-encoding in a param', () => {
    const r = new Router<string>();
    r.add('GET', '/p/:v', 'p');
    expect(() => r.find('GET', '/p/%E0%A4%A')).toThrow(InvalidPathError);
  });

  it('keeps static lookup independent of the number of routes', () => {
    const r = new Router<number>();
    for (let i = 0; i < 5000; i++) r.add('GET', `/r${i}/x`, i);
    for (let i = 0; i < 5000; i += 499) expect(r.find('GET', `/r${i}/x`)?.value).toBe(i);
  });
});

// ---- property: the trie agrees with a naive reference matcher on random route sets ----

type Seg = { kind: 'lit'; v: string } | { kind: 'param' } | { kind: 'wild' };
const lit = fc.constantFrom('a', 'b', 'c', 'ab', 'x1');
const segArb: fc.Arbitrary<Seg> = fc.oneof(
  { weight: 3, arbitrary: lit.map((v) => ({ kind: 'lit' as const, v })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'param' as const }) },
);
const patternArb = fc
  .tuple(fc.array(segArb, { minLength: 0, maxLength: 4 }), fc.boolean())
  .map(([segs, wild]) => (wild ? [...segs, { kind: 'wild' as const }] : segs));

function toPattern(segs: Seg[]): string {
  let n = 0;
  return `/${segs.map((s) => (s.kind === 'lit' ? s.v : s.kind === 'param' ? `:p${n++}` : '*')).join('/')}`;
}

/** Naive: every route that matches, best one by segment precedence (literal < param < wildcard). */
function reference(routes: { segs: Seg[]; id: number }[], path: string): number | null {
  const parts = path.slice(1).split('/');
  let best: { rank: number[]; id: number } | null = null;
  for (const route of routes) {
    const rank: number[] = [];
    let ok = true;
    let i = 0;
    for (; i < route.segs.length; i++) {
      const s = route.segs[i]!;
      if (s.kind === 'wild') {
        rank.push(2);
        break;
      }
      const part = parts[i];
      if (part === undefined) {
        ok = false;
        break;
      }
      if (s.kind === 'lit' && s.v === part) rank.push(0);
      else if (s.kind === 'param' && part.length > 0) rank.push(1);
      else {
        ok = false;
        break;
      }
    }
    const wild = route.segs.at(-1)?.kind === 'wild';
    if (!ok) continue;
    if (!wild && parts.length !== route.segs.length) continue;
    if (wild && parts.length < route.segs.length) continue;
    if (route.segs.length === 0 && !(parts.length === 1 && parts[0] === '')) continue;
    if (best === null || compare(rank, best.rank) < 0) best = { rank, id: route.id };
  }
  return best?.id ?? null;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

describe('router properties', () => {
  itFuzz('resolves every path exactly like the reference matcher', async () => {
    const pathArb = fc
      .array(fc.constantFrom('a', 'b', 'c', 'ab', 'x1', 'zz', ''), { minLength: 1, maxLength: 6 })
      .map((p) => `/${p.join('/')}`);
    await fuzz(
      'http-router-1',
      fc.property(
        fc.uniqueArray(patternArb, { maxLength: 12, selector: (s) => toPattern(s).replace(/:p\d+/g, ':') }),
        fc.array(pathArb, { maxLength: 30 }),
        (patterns, paths) => {
          const router = new Router<number>();
          const routes = patterns.map((segs, id) => ({ segs, id }));
          for (const { segs, id } of routes) {
            // The empty pattern list is "/" (one empty segment).
            router.add('GET', segs.length === 0 ? '/' : toPattern(segs), id);
          }
          const normalised = routes.map(({ segs, id }) => ({
            segs: segs.length === 0 ? [{ kind: 'lit' as const, v: '' }] : segs,
            id,
          }));
          for (const path of paths)
            expect(router.find('GET', path)?.value ?? null).toBe(reference(normalised, path));
          // Every registered route is reachable by a concrete path built from it, and nothing else
          // answers another method.
          for (const { segs, id } of normalised) {
            const path = `/${segs.map((s) => (s.kind === 'lit' ? s.v : s.kind === 'param' ? 'zz' : 'w/x')).join('/')}`;
            const found = router.find('GET', path);
            expect(found).not.toBeNull();
            expect(found!.value).toBe(reference(normalised, path));
            if (reference(normalised, path) === id)
              expect(found!.pattern).toBe(
                segs.length === 1 && segs[0]!.kind === 'lit' && segs[0]!.v === '' ? '/' : toPattern(segs),
              );
            expect(router.find('POST', path)).toBeNull();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  itFuzz('never throws on arbitrary paths other than InvalidPathError', async () => {
    const router = new Router<number>();
    router.add('GET', '/a/:x', 1);
    router.add('GET', '/b/*', 2);
    router.add('GET', '/c', 3);
    await fuzz(
      'http-router-2',
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          router.find('GET', `/${s}`);
          router.allowed(`/${s}`);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidPathError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
