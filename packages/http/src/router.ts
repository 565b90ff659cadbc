import { InvalidPathError, RouteError } from './errors.js';

/**
 * A sans-I/O router: patterns in, `(method, path) → value + params` out. No sockets, no requests.
 *
 * Pattern syntax (matched against the raw, still percent-encoded path):
 * - literal segments: `/rooms/list`
 * - named parameters, one whole segment each: `/rooms/:room/messages`
 * - a trailing wildcard that takes the rest of the path, possibly empty: `/static/*` (param `*`)
 *   or `/files/*path` (param `path`)
 *
 * Precedence at every segment: literal, then parameter, then wildcard, with backtracking, so
 * `/users/me` beats `/users/:id` but `POST /users/me` still reaches `POST /users/:id`.
 *
 * Fully static patterns live in one hash map (one lookup per request, however many routes);
 * dynamic ones in a segment trie whose lookup cost depends on the path depth, not the route count.
 */

/** Method key that matches any method (`router.add('*', ...)`). */
export const ANY_METHOD = '*';

/** A successful lookup: the registered value, the decoded path parameters and the pattern. */
export interface RouteMatch<T> {
  readonly value: T;
  /** Decoded parameter values. Shared and frozen for static routes: do not mutate. */
  readonly params: Readonly<Record<string, string>>;
  /** The pattern the route was registered with. */
  readonly pattern: string;
}

interface Entry<T> {
  value: T;
  pattern: string;
  names: readonly string[];
  /** Pre-built match for static routes, so a static hit allocates nothing. */
  match: RouteMatch<T> | null;
}

type MethodTable<T> = Record<string, Entry<T>>;

class TrieNode<T> {
  statics: Map<string, TrieNode<T>> | null = null;
  param: TrieNode<T> | null = null;
  wildcard: MethodTable<T> | null = null;
  routes: MethodTable<T> | null = null;
}

const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
const PARAM_NAME = /^[A-Za-z_$][\w$-]*$/;
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

function table<T>(): MethodTable<T> {
  return Object.create(null) as MethodTable<T>;
}

function pick<T>(routes: MethodTable<T>, method: string): Entry<T> | undefined {
  return routes[method] ?? routes[ANY_METHOD];
}

function decode(value: string): string {
  if (value.indexOf('%') === -1) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InvalidPathError(`Malformed percent-encoding in path segment ${JSON.stringify(value)}`);
  }
}

/** The route table behind `Server`: method + pattern → value, usable alone (values of any type). */
export class Router<T> {
  readonly #static = new Map<string, MethodTable<T>>();
  readonly #root = new TrieNode<T>();
  #dynamicCount = 0;
  readonly #list: { method: string; pattern: string }[] = [];

  /** Registers `value` for `method` (upper-case, or `'*'` for any) and `pattern`. */
  add(method: string, pattern: string, value: T): void {
    if (typeof pattern !== 'string' || pattern[0] !== '/') {
      throw new RouteError('ERR_HTTP_INVALID_ROUTE', `Route pattern must start with "/": ${String(pattern)}`);
    }
    if (method !== ANY_METHOD && !/^[A-Z][A-Z0-9_-]*$/.test(method)) {
      throw new RouteError('ERR_HTTP_INVALID_ROUTE', `Invalid method ${JSON.stringify(method)}`);
    }
    if (/[?#\s]/.test(pattern)) {
      throw new RouteError(
        'ERR_HTTP_INVALID_ROUTE',
        `Route pattern may not contain "?", "#" or spaces: ${pattern}`,
      );
    }
    const segments = pattern.slice(1).split('/');
    const names: string[] = [];
    let node = this.#root;
    let dynamic = false;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (seg[0] === '*') {
        if (i !== segments.length - 1) {
          throw new RouteError('ERR_HTTP_INVALID_ROUTE', `Wildcard must be the last segment: ${pattern}`);
        }
        const name = seg.length === 1 ? '*' : seg.slice(1);
        if (name !== '*') this.#checkName(name, pattern);
        names.push(name);
        this.#checkDuplicates(names, pattern);
        node.wildcard ??= table<T>();
        this.#insert(node.wildcard, method, { value, pattern, names, match: null });
        this.#dynamicCount++;
        return;
      }
      if (seg[0] === ':') {
        const name = seg.slice(1);
        this.#checkName(name, pattern);
        names.push(name);
        node.param ??= new TrieNode<T>();
        node = node.param;
        dynamic = true;
        continue;
      }
      if (seg.includes('*') || seg.includes(':')) {
        throw new RouteError(
          'ERR_HTTP_INVALID_ROUTE',
          `":" and "*" may only start a segment: ${JSON.stringify(seg)} in ${pattern}`,
        );
      }
      node.statics ??= new Map();
      let next = node.statics.get(seg);
      if (next === undefined) {
        next = new TrieNode<T>();
        node.statics.set(seg, next);
      }
      node = next;
    }
    this.#checkDuplicates(names, pattern);
    if (!dynamic) {
      let routes = this.#static.get(pattern);
      if (routes === undefined) {
        routes = table<T>();
        this.#static.set(pattern, routes);
      }
      this.#insert(routes, method, {
        value,
        pattern,
        names,
        match: Object.freeze({ value, params: EMPTY_PARAMS, pattern }),
      });
      return;
    }
    node.routes ??= table<T>();
    this.#insert(node.routes, method, { value, pattern, names, match: null });
    this.#dynamicCount++;
  }

  #checkName(name: string, pattern: string): void {
    if (!PARAM_NAME.test(name) || FORBIDDEN_NAMES.has(name)) {
      throw new RouteError(
        'ERR_HTTP_INVALID_ROUTE',
        `Invalid parameter name ${JSON.stringify(name)} in ${pattern}`,
      );
    }
  }

  #checkDuplicates(names: string[], pattern: string): void {
    if (new Set(names).size !== names.length) {
      throw new RouteError('ERR_HTTP_INVALID_ROUTE', `Duplicate parameter name in ${pattern}`);
    }
  }

  #insert(routes: MethodTable<T>, method: string, entry: Entry<T>): void {
    if (routes[method] !== undefined) {
      throw new RouteError(
        'ERR_HTTP_ROUTE_CONFLICT',
        `Route ${method} ${entry.pattern} conflicts with ${routes[method].pattern}`,
      );
    }
    routes[method] = entry;
    this.#list.push({ method, pattern: entry.pattern });
  }

  /**
   * The route for `method` and `path` (no query string), or null. HEAD falls back to GET.
   * Throws `InvalidPathError` when a matched parameter has malformed percent-encoding.
   */
  find(method: string, path: string): RouteMatch<T> | null {
    const found = this.#find(method, path);
    if (found !== null || method !== 'HEAD') return found;
    return this.#find('GET', path);
  }

  #find(method: string, path: string): RouteMatch<T> | null {
    const routes = this.#static.get(path);
    if (routes !== undefined) {
      const entry = pick(routes, method);
      if (entry !== undefined) return entry.match;
    }
    if (this.#dynamicCount === 0 || path[0] !== '/') return null;
    const values: string[] = [];
    const entry = this.#match(this.#root, path, 1, method, values);
    if (entry === null) return null;
    const params: Record<string, string> = {};
    const names = entry.names;
    for (let i = 0; i < names.length; i++) params[names[i]!] = decode(values[i]!);
    return { value: entry.value, params, pattern: entry.pattern };
  }

  #match(node: TrieNode<T>, path: string, start: number, method: string, values: string[]): Entry<T> | null {
    let end = path.indexOf('/', start);
    const last = end === -1;
    if (last) end = path.length;
    if (node.statics !== null) {
      const child = node.statics.get(path.slice(start, end));
      if (child !== undefined) {
        if (last) {
          if (child.routes !== null) {
            const entry = pick(child.routes, method);
            if (entry !== undefined) return entry;
          }
          // A wildcard directly below matches an empty rest only when the path has the slash.
        } else {
          const entry = this.#match(child, path, end + 1, method, values);
          if (entry !== null) return entry;
        }
      }
    }
    if (node.param !== null && end > start) {
      values.push(path.slice(start, end));
      const child = node.param;
      let entry: Entry<T> | null | undefined = null;
      if (last) {
        if (child.routes !== null) entry = pick(child.routes, method) ?? null;
      } else {
        entry = this.#match(child, path, end + 1, method, values);
      }
      if (entry) return entry;
      values.pop();
    }
    if (node.wildcard !== null) {
      const entry = pick(node.wildcard, method);
      if (entry !== undefined) {
        values.push(path.slice(start));
        return entry;
      }
    }
    return null;
  }

  /**
   * Methods registered for `path` (for 405 `Allow` and automatic OPTIONS), sorted; HEAD is
   * included when GET is. Empty when no route matches the path at all. A route registered for
   * any method reports the common methods.
   */
  allowed(path: string): string[] {
    const out = new Set<string>();
    const routes = this.#static.get(path);
    if (routes !== undefined) for (const m of Object.keys(routes)) out.add(m);
    if (this.#dynamicCount > 0 && path[0] === '/') this.#collect(this.#root, path, 1, out);
    if (out.has(ANY_METHOD)) {
      out.delete(ANY_METHOD);
      for (const m of ['DELETE', 'GET', 'PATCH', 'POST', 'PUT']) out.add(m);
    }
    if (out.has('GET')) out.add('HEAD');
    if (out.size > 0) out.add('OPTIONS');
    return [...out].sort();
  }

  #collect(node: TrieNode<T>, path: string, start: number, out: Set<string>): void {
    let end = path.indexOf('/', start);
    const last = end === -1;
    if (last) end = path.length;
    const child = node.statics?.get(path.slice(start, end));
    if (child !== undefined) {
      if (last) {
        if (child.routes !== null) for (const m of Object.keys(child.routes)) out.add(m);
      } else this.#collect(child, path, end + 1, out);
    }
    if (node.param !== null && end > start) {
      if (last) {
        if (node.param.routes !== null) for (const m of Object.keys(node.param.routes)) out.add(m);
      } else this.#collect(node.param, path, end + 1, out);
    }
    if (node.wildcard !== null) for (const m of Object.keys(node.wildcard)) out.add(m);
  }

  /** Every registered (method, pattern), in registration order. */
  routes(): readonly { method: string; pattern: string }[] {
    return this.#list;
  }
}
