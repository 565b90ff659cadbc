import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileSerializer,
  createServer,
  type ResponseSchema,
  ResponseShapeError,
  RouteError,
  reply,
  type Server,
} from '../src/index.js';

/** A schema and a value that matches it, holding exactly the properties the schema lists. */
type Case = { schema: ResponseSchema; value: unknown };

const leaf: fc.Arbitrary<Case> = fc.oneof(
  fc.string({ unit: 'binary' }).map((value) => ({ schema: { type: 'string' } as const, value })),
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((value) => ({ schema: { type: 'number' } as const, value })),
  fc.integer().map((value) => ({ schema: { type: 'integer' } as const, value })),
  fc.boolean().map((value) => ({ schema: { type: 'boolean' } as const, value })),
  fc.constant({ schema: { type: 'null' } as const, value: null }),
  fc.jsonValue({ maxDepth: 2 }).map((value) => ({ schema: {} as const, value })),
  fc.constant({ schema: { type: 'string', nullable: true } as const, value: null }),
);

const { tree } = fc.letrec<{ tree: Case }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('tree'), { maxLength: 4 }).map((items) => {
      // Items share one schema: use the first case's schema only when every item is that case.
      const first = items[0];
      if (first === undefined) return { schema: { type: 'array' } as const, value: [] };
      return { schema: { type: 'array', items: first.schema } as const, value: [first.value] };
    }),
    fc
      .uniqueArray(fc.tuple(fc.string({ unit: 'binary', maxLength: 8 }), tie('tree'), fc.boolean()), {
        selector: ([k]) => k,
        maxLength: 5,
      })
      .map((entries) => {
        const kept = entries.filter(([k]) => k !== '__proto__' && k !== 'constructor' && k !== 'prototype');
        const properties: Record<string, ResponseSchema> = {};
        const value: Record<string, unknown> = {};
        const required: string[] = [];
        for (const [k, c, present] of kept) {
          properties[k] = c.schema;
          if (present) {
            value[k] = c.value;
            required.push(k);
          }
        }
        return { schema: { type: 'object', properties, required } as const, value };
      }),
  ),
}));

describe('compileSerializer', () => {
  it('writes what JSON.stringify writes for values that match (property)', () => {
    fc.assert(
      fc.property(tree, ({ schema, value }) => {
        const text = compileSerializer(schema)(value);
        expect(text).toBe(JSON.stringify(value));
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
  });

  it('escapes any string as JSON.stringify does, lone surrogates included (property)', () => {
    const write = compileSerializer({ type: 'object', properties: { s: { type: 'string' } } });
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(write({ s })).toBe(JSON.stringify({ s }));
      }),
      { numRuns: 1000 },
    );
  });

  it('sends only the listed properties, in schema order, and follows toJSON', () => {
    const write = compileSerializer({
      type: 'object',
      properties: { id: { type: 'integer' }, at: { type: 'string' }, tags: { type: 'array' } },
      required: ['id'],
    });
    const at = new Date(0);
    expect(write({ password: 'secret', tags: ['a', undefined], at, id: 7 })).toBe(
      '{"id":7,"at":"1970-01-01T00:00:00.000Z","tags":["a",null]}',
    );
    // Optional properties that are absent or undefined are left out, as JSON.stringify does.
    expect(write({ id: 1, at: undefined })).toBe('{"id":1}');
    // toJSON gets the key, as from JSON.stringify: the index as a string inside arrays.
    const keys: unknown[] = [];
    const probe = {
      toJSON: (key: unknown) => {
        keys.push(key);
        return 'p';
      },
    };
    expect(compileSerializer({ type: 'array', items: { type: 'string' } })([probe, probe])).toBe('["p","p"]');
    expect(write({ id: 3, at: probe })).toBe('{"id":3,"at":"p"}');
    expect(keys).toEqual(['0', '1', 'at']);
    // Inherited properties are not the value's data.
    expect(write(Object.assign(Object.create({ at: 'inherited' }), { id: 2 }))).toBe('{"id":2}');
  });

  it('refuses values that do not match, naming where', () => {
    const write = compileSerializer({
      type: 'object',
      properties: {
        items: {
          type: 'array',
          items: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
        },
        n: { type: 'number' },
        maybe: { type: 'string', nullable: true },
      },
    });
    expect(write({ items: [{ id: 1 }], maybe: null })).toBe('{"items":[{"id":1}],"maybe":null}');
    const cases: [unknown, string][] = [
      [{ items: [{ id: 1 }, { id: 1.5 }] }, '$.items[].id'],
      [{ items: [{}] }, '$.items[].id'],
      [{ items: {} }, '$.items'],
      [{ n: Number.NaN }, '$.n'],
      [{ n: '1' }, '$.n'],
      [{ maybe: 3 }, '$.maybe'],
      [[], '$'],
      [null, '$'],
    ];
    for (const [value, path] of cases) {
      let caught: unknown;
      try {
        write(value);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ResponseShapeError);
      expect(caught).toMatchObject({ code: 'ERR_HTTP_RESPONSE_SHAPE', status: 500, path, expose: false });
    }
  });

  it('refuses invalid schemas when the route is registered', () => {
    const app = createServer();
    const loop: Record<string, unknown> = { type: 'object', properties: {} };
    (loop.properties as Record<string, unknown>).self = loop;
    const bad: unknown[] = [
      { type: 'bogus' },
      { type: 'object', properties: { a: { type: 'string' } }, required: ['b'] },
      // An own "__proto__" key, as a schema read from a JSON file would have it.
      JSON.parse('{"type":"object","properties":{"__proto__":{"type":"string"}}}'),
      { type: 'object', properties: { constructor: { type: 'string' } } },
      { type: 'array', items: 'string' },
      loop,
    ];
    for (const response of bad) {
      expect(() => app.get('/x', () => ({}), { response: response as ResponseSchema })).toThrow(RouteError);
    }
  });
});

describe('routes with a response schema', () => {
  let app: Server;
  let base: string;
  const errors: unknown[] = [];
  const user: ResponseSchema = {
    type: 'object',
    properties: { id: { type: 'integer' }, name: { type: 'string' } },
    required: ['id', 'name'],
  };

  beforeAll(async () => {
    app = createServer({
      // A hook's own early answer is not the handler's value: the schema does not apply to it.
      onRequest: (ctx) => (ctx.path === '/hooked' ? { denied: true } : undefined),
    });
    app.on('requestError', (err) => errors.push(err));
    app.get('/user', () => ({ id: 1, name: 'ada', password: 'x' }), { response: user });
    app.get('/user-async', async () => ({ id: 2, name: 'grace', token: 't' }), { response: user });
    app.post('/user', () => reply(201, { id: 3, name: 'new', secret: 's' }), { response: user });
    app.get('/broken', () => ({ id: 'one', name: 'x' }), { response: user });
    app.get('/hooked', () => ({ id: 4, name: 'never' }), { response: user });
    app.get('/text', () => 'plain', { response: user });
    const { port } = await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => app.close({ deadline: 500 }));

  it('sends the schema-shaped JSON with its length, sync, async and as a Reply body', async () => {
    for (const [method, path, status, body] of [
      ['GET', '/user', 200, '{"id":1,"name":"ada"}'],
      ['GET', '/user-async', 200, '{"id":2,"name":"grace"}'],
      ['POST', '/user', 201, '{"id":3,"name":"new"}'],
    ] as const) {
      const res = await fetch(base + path, { method });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.headers.get('content-length')).toBe(String(body.length));
      expect(await res.text()).toBe(body);
    }
  });

  it('answers 500 without details when the value does not match, and reports it', async () => {
    const before = errors.length;
    const res = await fetch(`${base}/broken`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      error: { code: 'ERR_HTTP_RESPONSE_SHAPE', message: 'Internal Server Error' },
    });
    expect(errors.length).toBe(before + 1);
    expect(errors.at(-1)).toMatchObject({ code: 'ERR_HTTP_RESPONSE_SHAPE', path: '$.id' });
  });

  it("leaves a hook's answer and non-JSON values alone", async () => {
    expect(await (await fetch(`${base}/hooked`)).json()).toEqual({ denied: true });
    expect(await (await fetch(`${base}/text`)).text()).toBe('plain');
  });
});
