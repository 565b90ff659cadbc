import { ResponseShapeError, RouteError } from './errors.js';

/**
 * The JSON Schema subset a route's `response` option understands. Keywords other than `type`,
 * `properties`, `required`, `items` and `nullable` (e.g. `description`) are ignored; a schema
 * without `type` (`{}`) accepts any JSON value.
 */
export type ResponseSchema =
  | {
      type: 'object';
      /** Only these properties are sent; others on the value are left out. Omit to send all. */
      properties?: Readonly<Record<string, ResponseSchema>>;
      required?: readonly string[];
      nullable?: boolean;
    }
  | { type: 'array'; items?: ResponseSchema; nullable?: boolean }
  | { type: 'string' | 'number' | 'integer' | 'boolean'; nullable?: boolean }
  | { type: 'null' }
  | { type?: undefined };

const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/**
 * Compiles `schema` once, at route registration, into a function that writes the same text as
 * `JSON.stringify` for values that match it, without the generic walk: the shape is turned into
 * straight-line code (one function per schema node) with pre-quoted property names, known types,
 * and properties the schema does not list never read. A value that does not match throws
 * `ResponseShapeError` (500) naming where. Pure: no I/O.
 *
 * Everything taken from the schema enters the generated source only as a `JSON.stringify`-quoted
 * string literal, so a schema cannot inject code.
 */
export function compileSerializer(schema: ResponseSchema): (value: unknown) => string {
  const nodes: string[] = [];
  const top = node(schema, '$', new Set(), nodes);
  const source = `"use strict";\n${nodes.join('\n')}\nreturn function serialize(v) {\n  const t = f${top}(v, '');\n  if (t === undefined) fail('$', 'a JSON value');\n  return t;\n};`;
  return new Function('fail', 'str', 'hasOwn', 'isArray', 'unwrap', source)(
    fail,
    str,
    Object.hasOwn,
    Array.isArray,
    unwrap,
  ) as (value: unknown) => string;
}

function fail(path: string, expected: string): never {
  throw new ResponseShapeError(path, expected);
}

/** A JSON string literal; short strings without characters to escape skip `JSON.stringify`. */
function str(s: string): string {
  if (s.length > 64) return JSON.stringify(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** What `JSON.stringify` would look at instead of `value` (a Date becomes its ISO string). */
function unwrap(value: unknown, key: string | number): unknown {
  if (typeof value === 'object' && value !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    // An array index reaches here as a number, turned into the string toJSON expects only now.
    if (typeof toJSON === 'function') return toJSON.call(value, String(key));
  }
  return value;
}

function invalid(path: string, why: string): RouteError {
  return new RouteError('ERR_HTTP_INVALID_ROUTE', `Invalid response schema at ${path}: ${why}`);
}

const q = JSON.stringify;

/** Emits `function f<n>(v, k)` for `schema` into `out`; returns n. The function returns the JSON text. */
function node(schema: ResponseSchema, path: string, open: Set<object>, out: string[]): number {
  if (typeof schema !== 'object' || schema === null) throw invalid(path, 'not an object');
  if (open.has(schema)) throw invalid(path, 'the schema refers to itself');
  const type = schema.type;
  if (type !== undefined && (typeof type !== 'string' || !TYPES.has(type)))
    throw invalid(path, `unknown type ${String(type)}`);
  const id = out.length;
  out.push('');
  const nullable = 'nullable' in schema && schema.nullable === true;
  const P = q(path);
  // A value of another type may still turn into the right one through toJSON (a Date into a string).
  const retry = (test: string, expected: string): string =>
    `if (!(${test})) { v = unwrap(v, k); ${nullable ? "if (v === null) return 'null'; " : ''}if (!(${test})) fail(${P}, ${q(expected)}); }`;
  let body: string;
  switch (type) {
    case undefined:
      body = 'return JSON.stringify(v);';
      break;
    case 'string':
      body = `${retry("typeof v === 'string'", 'a string')}\n  return str(v);`;
      break;
    case 'number':
      body = `${retry("typeof v === 'number' && Number.isFinite(v)", 'a finite number')}\n  return '' + v;`;
      break;
    case 'integer':
      body = `${retry('Number.isInteger(v)', 'an integer')}\n  return '' + v;`;
      break;
    case 'boolean':
      body = `${retry("typeof v === 'boolean'", 'a boolean')}\n  return v ? 'true' : 'false';`;
      break;
    case 'null':
      body = `${retry('v === null', 'null')}\n  return 'null';`;
      break;
    case 'array': {
      open.add(schema);
      const items = (schema as { items?: ResponseSchema }).items;
      const item = items === undefined ? -1 : node(items, `${path}[]`, open, out);
      open.delete(schema);
      const write = item === -1 ? 'JSON.stringify(v[i])' : `f${item}(v[i], i)`;
      body = [
        `v = unwrap(v, k);${nullable ? " if (v === null) return 'null';" : ''}`,
        `if (!isArray(v)) fail(${P}, 'an array');`,
        `let o = '[';`,
        'for (let i = 0; i < v.length; i++) {',
        `  if (i > 0) o += ',';`,
        // As JSON.stringify: a hole, undefined or function in an array is written as null.
        `  const t = ${write};`,
        `  o += t === undefined ? 'null' : t;`,
        '}',
        `return o + ']';`,
      ].join('\n  ');
      break;
    }
    default:
      body = objectBody(schema as ObjectSchema, path, nullable, open, out);
  }
  out[id] = `function f${id}(v, k) {\n  ${body}\n}`;
  return id;
}

type ObjectSchema = {
  properties?: Readonly<Record<string, ResponseSchema>>;
  required?: readonly string[];
};

function objectBody(
  schema: ObjectSchema,
  path: string,
  nullable: boolean,
  open: Set<object>,
  out: string[],
): string {
  const P = q(path);
  const head = [
    `v = unwrap(v, k);${nullable ? " if (v === null) return 'null';" : ''}`,
    `if (typeof v !== 'object' || v === null || isArray(v)) fail(${P}, 'an object');`,
  ];
  if (schema.properties === undefined) return [...head, 'return JSON.stringify(v);'].join('\n  ');
  if (typeof schema.properties !== 'object' || schema.properties === null)
    throw invalid(path, '"properties" must be an object');
  const keys = Object.keys(schema.properties);
  const required = new Set(schema.required ?? []);
  for (const name of required) {
    if (!keys.includes(name)) throw invalid(path, `required property ${q(name)} is not listed`);
  }
  open.add(schema);
  const lines = [...head, `let o = '{';`, 'let x, t;'];
  // While every property so far is required, whether a comma is due is known here, not at run time.
  let fixed = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    // Reading these from a value would reach its prototype, not its data.
    if (key === '__proto__' || key === 'constructor' || key === 'prototype')
      throw invalid(path, `property name ${key} is not allowed`);
    const K = q(key);
    const child = node(schema.properties[key]!, `${path}.${key}`, open, out);
    const name = q(`${q(key)}:`);
    const prefix = fixed
      ? i === 0
        ? name
        : q(`,${q(key)}:`)
      : `(o.length === 1 ? ${name} : ${q(`,${q(key)}:`)})`;
    lines.push(`x = hasOwn(v, ${K}) ? v[${K}] : undefined;`);
    lines.push(`t = x === undefined ? undefined : f${child}(x, ${K});`);
    if (required.has(key)) {
      lines.push(`if (t === undefined) fail(${q(`${path}.${key}`)}, 'a value (required)');`);
      lines.push(`o += ${prefix} + t;`);
    } else {
      lines.push(`if (t !== undefined) o += ${prefix} + t;`);
      fixed = false;
    }
  }
  open.delete(schema);
  lines.push(`return o + '}';`);
  return lines.join('\n  ');
}
