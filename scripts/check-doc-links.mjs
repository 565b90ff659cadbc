#!/usr/bin/env node
// Link check over the generated API site (docs/api by default): every relative link and every
// `#anchor` in the HTML must resolve to a file of the site and, for an anchor, to an element with
// that id (or name) in it. External links (http:, https:, mailto:, …) are counted, not fetched: the
// check runs offline. Then the Markdown sources (READMEs, docs/) are checked as GitHub and npm show
// them. Exits 1 listing each broken link with the file it is in.
//
//   node scripts/check-doc-links.mjs [site-dir]
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const site = resolve(root, process.argv[2] ?? 'docs/api');
if (!existsSync(join(site, 'index.html'))) {
  console.error(`check-doc-links: no site at ${relative(root, site)} (run \`pnpm run docs\` first)`);
  process.exit(1);
}

function walk(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

const files = walk(site);
const pages = files.filter((f) => f.endsWith('.html'));

// Ids of a file, read once: HTML ids and names, and SVG symbol ids (the icon sprite).
const idCache = new Map();
function idsOf(file) {
  let ids = idCache.get(file);
  if (ids === undefined) {
    ids = new Set();
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) ids.add(m[1] ?? m[2]);
    idCache.set(file, ids);
  }
  return ids;
}

const decodeEntities = (s) =>
  s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"' })[e] ?? "'");

const broken = [];
const external = new Map();
let checked = 0;
for (const page of pages) {
  const html = readFileSync(page, 'utf8');
  // Links are `href`/`src` attributes (including SVG `<use href>`); code samples are escaped text
  // (`&lt;a href=…`), so they never match here.
  for (const m of html.matchAll(/\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    const raw = decodeEntities(m[1] ?? m[2] ?? '');
    if (raw === '' || raw === '#') continue;
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw);
    if (scheme) {
      const key = scheme[1].toLowerCase();
      if (key === 'javascript') broken.push({ page, link: raw, why: 'javascript: link' });
      else external.set(key, (external.get(key) ?? 0) + 1);
      continue;
    }
    if (raw.startsWith('//')) {
      external.set('protocol-relative', (external.get('protocol-relative') ?? 0) + 1);
      continue;
    }
    checked++;
    const hashAt = raw.indexOf('#');
    const pathPart = (hashAt === -1 ? raw : raw.slice(0, hashAt)).replace(/\?.*$/, '');
    const fragment = hashAt === -1 ? '' : raw.slice(hashAt + 1);
    let target;
    try {
      target = pathPart === '' ? page : resolve(dirname(page), decodeURIComponent(pathPart));
    } catch {
      broken.push({ page, link: raw, why: 'malformed percent-encoding' });
      continue;
    }
    if (target !== site && !target.startsWith(site + sep)) {
      broken.push({ page, link: raw, why: 'points outside the site' });
      continue;
    }
    if (existsSync(target) && statSync(target).isDirectory()) target = join(target, 'index.html');
    if (!existsSync(target)) {
      broken.push({ page, link: raw, why: 'no such file' });
      continue;
    }
    if (fragment !== '') {
      let id;
      try {
        id = decodeURIComponent(fragment);
      } catch {
        id = fragment;
      }
      if (!idsOf(target).has(id))
        broken.push({ page, link: raw, why: `no id "${id}" in ${relative(site, target)}` });
    }
  }
}

// The Markdown sources as GitHub and npm render them: a relative link must name a file of the
// repository, and an anchor must match a heading slug as GitHub computes it (TypeDoc's slugs
// differ for headings with code or punctuation, so a README anchor has to satisfy both).
function githubSlugs(markdown) {
  const slugs = new Set();
  const seen = new Map();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/[`*]/g, '');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    slugs.add(n === 0 ? base : `${base}-${n}`);
  }
  return slugs;
}
const sources = [
  'README.md',
  'CONTRIBUTING.md',
  'docs/api-landing.md',
  'docs/architecture.md',
  ...readdirSync(join(root, 'packages')).map((p) => `packages/${p}/README.md`),
].filter((f) => existsSync(join(root, f)));
let mdChecked = 0;
for (const file of sources) {
  const abs = join(root, file);
  const text = readFileSync(abs, 'utf8').replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const link = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue;
    mdChecked++;
    const hashAt = link.indexOf('#');
    const pathPart = hashAt === -1 ? link : link.slice(0, hashAt);
    const fragment = hashAt === -1 ? '' : decodeURIComponent(link.slice(hashAt + 1));
    const target = pathPart === '' ? abs : resolve(dirname(abs), decodeURIComponent(pathPart));
    if (!existsSync(target)) {
      broken.push({ page: abs, link, why: 'no such file in the repository' });
      continue;
    }
    if (fragment === '' || !target.endsWith('.md')) continue;
    // On the API site a README's `#classes` is TypeDoc's member list (checked above).
    if (fragment === 'classes' && target.endsWith('README.md') && target !== join(root, 'README.md'))
      continue;
    if (!githubSlugs(readFileSync(target, 'utf8')).has(fragment)) {
      broken.push({
        page: abs,
        link,
        why: `no heading "#${fragment}" in ${relative(root, target)} on GitHub`,
      });
    }
  }
}

const ext = [...external].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
if (broken.length > 0) {
  for (const b of broken) console.error(`${relative(root, b.page)}: ${b.link} (${b.why})`);
  console.error(
    `check-doc-links: ${broken.length} broken (${checked} site links in ${pages.length} pages, ` +
      `${mdChecked} relative links in ${sources.length} Markdown files)`,
  );
  process.exit(1);
}
console.log(
  `check-doc-links: ${checked} internal links in ${pages.length} pages and ${mdChecked} relative links in ` +
    `${sources.length} Markdown files resolve (external, not fetched: ${ext})`,
);
