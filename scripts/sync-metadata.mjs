#!/usr/bin/env node
// The npm metadata of every published package, kept in one place. The root package.json holds what
// is the same for all of them (`repository.url`, `author`, `license`, `funding` if there is any);
// each package's `repository` (with its `directory`), `homepage` and `bugs` are derived from it,
// so moving the repository is one edit here followed by `node scripts/sync-metadata.mjs`.
// What only a package knows (`description`, `keywords`) stays in its package.json and is checked.
//
//   node scripts/sync-metadata.mjs            write the derived fields into packages/*/package.json
//   node scripts/sync-metadata.mjs --check    exit 1 on a missing field or a disagreement (CI)
//   node scripts/sync-metadata.mjs --check --release
//                                             also exit 1 while the URL is a placeholder (publish)
//
// The homepage and issue links assume a GitHub-style host (`/tree/HEAD/<dir>`, `/issues`).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--check', '--release'].includes(a)) {
    console.error(`sync-metadata: unknown argument ${a}\nusage: sync-metadata.mjs [--check [--release]]`);
    process.exit(2);
  }
}
const check = args.has('--check');
const release = args.has('--release');

const problems = [];
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// ---------------------------------------------------------------- the one source of truth
const repoUrl = typeof rootPkg.repository === 'object' ? rootPkg.repository?.url : rootPkg.repository;
let web;
let placeholder = false;
if (typeof repoUrl !== 'string' || repoUrl === '') {
  problems.push('package.json: `repository.url` is missing (the URL every package derives its links from)');
} else {
  // git+https://host/owner/name.git → https://host/owner/name
  const m = /^(?:git\+)?(https:\/\/[^/\s]+\/[^\s]+?)(?:\.git)?\/?$/.exec(repoUrl);
  if (!m) problems.push(`package.json: repository.url ${repoUrl} is not a git+https:// URL`);
  else {
    web = m[1];
    const host = new URL(web).hostname;
    placeholder = host.endsWith('.invalid') || host === 'example.com' || host.startsWith('example.');
  }
}
for (const field of ['author', 'license']) {
  if (rootPkg[field] === undefined || rootPkg[field] === '')
    problems.push(`package.json: \`${field}\` is missing`);
}

// ---------------------------------------------------------------- each published package
// Metadata keys in the order npm shows them, placed right after `description`.
const ORDER = ['description', 'keywords', 'homepage', 'bugs', 'repository', 'license', 'author', 'funding'];

function expectedFor(dir) {
  const out = {
    repository: { type: 'git', url: repoUrl, directory: `packages/${dir}` },
    homepage: web && `${web}/tree/HEAD/packages/${dir}#readme`,
    bugs: web && { url: `${web}/issues` },
    license: rootPkg.license,
    author: rootPkg.author,
  };
  if (rootPkg.funding !== undefined) out.funding = rootPkg.funding;
  return out;
}

function reorder(pkg) {
  const out = {};
  for (const key of Object.keys(pkg)) {
    if (ORDER.includes(key)) continue;
    out[key] = pkg[key];
    if (key === 'version') for (const k of ORDER) if (pkg[k] !== undefined) out[k] = pkg[k];
  }
  return out;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
let written = 0;
let packages = 0;
for (const dir of readdirSync(join(root, 'packages')).sort()) {
  const file = join(root, 'packages', dir, 'package.json');
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue;
  }
  const pkg = JSON.parse(text);
  if (pkg.private) continue;
  packages++;
  const where = `packages/${dir}/package.json`;
  const expected = expectedFor(dir);
  for (const [key, value] of Object.entries(expected)) {
    if (value === undefined) continue;
    if (same(pkg[key], value)) continue;
    if (check) {
      const now = pkg[key] === undefined ? 'missing' : JSON.stringify(pkg[key]);
      problems.push(`${where}: \`${key}\` is ${now}, expected ${JSON.stringify(value)}`);
    } else pkg[key] = value;
  }
  if (rootPkg.funding === undefined && pkg.funding !== undefined) {
    if (check) problems.push(`${where}: \`funding\` is set but the root package.json declares none`);
    else delete pkg.funding;
  }
  // What only the package can say.
  if (typeof pkg.description !== 'string' || pkg.description.trim().length < 20) {
    problems.push(`${where}: \`description\` is missing or shorter than 20 characters`);
  }
  const kw = pkg.keywords;
  if (!Array.isArray(kw) || kw.length < 5) {
    problems.push(`${where}: \`keywords\` needs at least 5 terms users search for`);
  } else {
    for (const k of kw) {
      if (typeof k !== 'string' || k !== k.toLowerCase() || /\s/.test(k) || k === '') {
        problems.push(`${where}: keyword ${JSON.stringify(k)} must be one lower-case word (hyphens allowed)`);
      }
    }
    if (new Set(kw).size !== kw.length) problems.push(`${where}: \`keywords\` has duplicates`);
  }
  // Runtime dependencies take patches and deduplicate: caret ranges, not exact pins.
  for (const [name, range] of Object.entries(pkg.dependencies ?? {})) {
    if (!/^(\^\d+\.\d+\.\d+\S*|workspace:\^)$/.test(range)) {
      problems.push(`${where}: dependency ${name}@${range} must be a caret range (^x.y.z)`);
    }
  }
  if (!check) {
    const next = `${JSON.stringify(reorder(pkg), null, 2)}\n`;
    if (next !== text) {
      writeFileSync(file, next);
      written++;
      console.log(`sync-metadata: wrote ${where}`);
    }
  }
}

if (placeholder) {
  const line = `repository.url ${repoUrl} is a placeholder: set the real URL in the root package.json, then run node scripts/sync-metadata.mjs`;
  if (release) problems.push(line);
  else console.warn(`sync-metadata: warning: ${line}`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(`sync-metadata: ${p}`);
  process.exit(1);
}
console.log(
  check
    ? `sync-metadata: ${packages} packages agree with the root package.json`
    : `sync-metadata: ${packages} packages in sync (${written} written)`,
);
