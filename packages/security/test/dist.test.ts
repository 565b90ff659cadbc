import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The published artefact, not the sources: build with the package's own tsup config into a scratch
// directory (dist/ may be rebuilt concurrently by turbo), then load it from a fresh node process in
// both module formats. This catches a module that needs a global installed before it (the package
// once depended on a Reflect metadata polyfill) and any global it would leave behind.

const exec = promisify(execFile);
const pkg = join(import.meta.dirname, '..');
const out = join(pkg, 'test-results', 'dist-build');

beforeAll(async () => {
  await exec(join(pkg, 'node_modules', '.bin', 'tsup'), ['--out-dir', out, '--no-dts', '--no-sourcemap'], {
    cwd: pkg,
    timeout: 60_000,
  });
}, 90_000);
afterAll(() => rm(out, { recursive: true, force: true }));

const program = (load: string) => `
const reflectBefore = Object.getOwnPropertyNames(Reflect);
const globalsBefore = Object.getOwnPropertyNames(globalThis);
${load}
(async () => {
  const ca = await sec.createCA();
  const leaf = await sec.issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const o = sec.serverOptions(leaf);
  const tls = require('node:tls');
  tls.createSecureContext(o);
  const globalsAfter = Object.getOwnPropertyNames(globalThis).filter((n) => !globalsBefore.includes(n));
  console.log(JSON.stringify({
    ok: leaf.cert.startsWith('-----BEGIN CERTIFICATE-----'),
    min: o.minVersion,
    reflectKeys: Object.getOwnPropertyNames(Reflect).filter((n) => !reflectBefore.includes(n)),
    newGlobals: globalsAfter,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('the built package', () => {
  it('works when imported as ESM', async () => {
    const code = program(
      `const { createRequire } = await import('node:module'); const require = createRequire(import.meta.url); const sec = await import(${JSON.stringify(join(out, 'index.js'))});`,
    );
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
    // No global side effect: Reflect.getMetadata (and anything else) stays uninstalled.
    expect(JSON.parse(stdout)).toEqual({ ok: true, min: 'TLSv1.2', reflectKeys: [], newGlobals: [] });
  });

  it('works when an application bundler tree-shakes it (sideEffects: false)', async () => {
    const { createRequire } = await import('node:module');
    const { writeFile } = await import('node:fs/promises');
    // esbuild is what tsup runs; resolve it through tsup rather than adding a dependency.
    const esbuild = createRequire(createRequire(join(pkg, 'package.json')).resolve('tsup'))('esbuild') as {
      build(o: object): Promise<unknown>;
    };
    const entry = join(out, 'app.mjs');
    await writeFile(
      entry,
      `import { createCA, issueCertificate } from './index.js';
const ca = await createCA();
const leaf = await issueCertificate(ca, { dnsNames: ['localhost'] });
console.log(leaf.cert.startsWith('-----BEGIN CERTIFICATE-----'));`,
    );
    const bundle = join(out, 'app.bundle.mjs');
    await esbuild.build({
      entryPoints: [entry],
      outfile: bundle,
      bundle: true,
      treeShaking: true,
      minify: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
      // CommonJS dependencies inside an ESM bundle need a require.
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
    });
    const { stdout } = await exec(process.execPath, [bundle], { timeout: 30_000 });
    expect(stdout.trim()).toBe('true');
  });

  it('ships a net-dev-ca command that issues, then reuses, a certificate', async () => {
    const { mkdtemp, stat } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const caDir = await mkdtemp(join(tmpdir(), 'net-dev-ca-'));
    try {
      const cli = join(out, 'cli.js');
      const first = await exec(process.execPath, [cli, '--dir', caDir, 'localhost', '127.0.0.1', '::1'], {
        timeout: 30_000,
      });
      expect(first.stdout).toMatch(/^issued certificate valid until /);
      expect(first.stdout).toContain(join(caDir, 'localhost.pem'));
      expect(first.stdout).toContain('new CA: trust this file');
      expect((await stat(join(caDir, 'localhost-key.pem'))).mode & 0o777).toBe(0o600);
      const again = await exec(process.execPath, [cli, '--dir', caDir, 'localhost', '::1'], {
        timeout: 30_000,
      });
      expect(again.stdout).toMatch(/^reused certificate/);
      const caPath = await exec(process.execPath, [cli, '--dir', caDir, '--ca-path'], { timeout: 30_000 });
      expect(caPath.stdout.trim()).toBe(join(caDir, 'ca.pem'));
      const bad = await exec(process.execPath, [cli, '--dir', caDir, 'a..b'], { timeout: 30_000 }).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect((bad as { code: number }).code).toBe(1);
      expect((bad as { stderr: string }).stderr).toMatch(/invalid DNS name .*ERR_SECURITY_INVALID_OPTION/);
    } finally {
      await rm(caDir, { recursive: true, force: true });
    }
  });

  it('works when required as CommonJS', async () => {
    const code = program(`const sec = require(${JSON.stringify(join(out, 'index.cjs'))});`);
    const { stdout } = await exec(process.execPath, ['--input-type=commonjs', '-e', code], {
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({ ok: true, min: 'TLSv1.2', reflectKeys: [], newGlobals: [] });
  });
});
