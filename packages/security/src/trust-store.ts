import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { access, constants, copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { TrustStoreError } from './errors.js';

const exec = promisify(execFile);
const COMMAND_TIMEOUT_MS = 30_000;

/** Where `net-dev-ca install` puts the CA; both default to on. */
export interface TrustStoreTargets {
  /** The Debian/Ubuntu system store: /usr/local/share/ca-certificates + update-ca-certificates. */
  system: boolean;
  /** NSS databases that Chromium (~/.pki/nssdb) and Firefox profiles read, through certutil. */
  nss: boolean;
}

export interface TrustStoreEnvironment {
  home: string;
  /** Directory of locally added system CAs (Debian's default unless overridden). */
  systemDir: string;
  isRoot: boolean;
}

/** One line of what was changed (or why a target was left alone), for the command's output. */
export type TrustReport = string[];

async function onPath(binary: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      await access(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A nickname that names this CA uniquely, so uninstall removes ours and nothing else. */
function nicknameOf(cert: X509Certificate): string {
  return `net-dev-ca ${cert.fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase()}`;
}

/** NSS databases to update: Chromium's shared one, and every Firefox profile that has one. */
async function nssDatabases(home: string): Promise<string[]> {
  const dbs = [join(home, '.pki', 'nssdb')];
  for (const root of [
    join(home, '.mozilla', 'firefox'),
    join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox'),
  ]) {
    const profiles = await readdir(root).catch(() => [] as string[]);
    for (const profile of profiles) {
      if (await exists(join(root, profile, 'cert9.db'))) dbs.push(join(root, profile));
    }
  }
  return dbs;
}

async function run(command: string, args: string[]): Promise<void> {
  try {
    await exec(command, args, { timeout: COMMAND_TIMEOUT_MS });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim();
    throw new TrustStoreError(`${command} ${args[0] ?? ''} failed${stderr ? `: ${stderr}` : ''}`, { cause });
  }
}

async function nssInstall(
  caPath: string,
  nickname: string,
  home: string,
  report: TrustReport,
): Promise<void> {
  const certutil = await onPath('certutil');
  if (!certutil) throw new TrustStoreError('certutil not found: install libnss3-tools (Debian/Ubuntu)');
  for (const db of await nssDatabases(home)) {
    if (!(await exists(join(db, 'cert9.db')))) {
      await mkdir(db, { recursive: true, mode: 0o700 });
      await run(certutil, ['-N', '-d', `sql:${db}`, '--empty-password']);
      report.push(`created NSS database ${db}`);
    }
    await run(certutil, ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', nickname, '-i', caPath]);
    report.push(`added "${nickname}" to NSS database ${db}`);
  }
}

async function nssUninstall(nickname: string, home: string, report: TrustReport): Promise<void> {
  const certutil = await onPath('certutil');
  if (!certutil) throw new TrustStoreError('certutil not found: install libnss3-tools (Debian/Ubuntu)');
  for (const db of await nssDatabases(home)) {
    if (!(await exists(join(db, 'cert9.db')))) continue;
    // certutil -D removes one entry per call; a CA added twice under one nickname needs repeats.
    let removed = false;
    for (let i = 0; i < 10; i++) {
      const gone = await exec(certutil, ['-D', '-d', `sql:${db}`, '-n', nickname], {
        timeout: COMMAND_TIMEOUT_MS,
      }).then(
        () => false,
        () => true,
      );
      if (gone) break;
      removed = true;
    }
    if (removed) report.push(`removed "${nickname}" from NSS database ${db}`);
  }
}

async function systemInstall(
  caPath: string,
  nickname: string,
  env: TrustStoreEnvironment,
  report: TrustReport,
) {
  if (!env.isRoot) {
    throw new TrustStoreError(
      `the system store (${env.systemDir}) needs root: run with sudo, or pass --nss to change only your browsers`,
    );
  }
  const update = await onPath('update-ca-certificates');
  if (!update) throw new TrustStoreError('update-ca-certificates not found: install ca-certificates');
  await mkdir(env.systemDir, { recursive: true });
  const target = join(env.systemDir, `${nickname.replace(/ /g, '-')}.crt`);
  await copyFile(caPath, target);
  await run(update, []);
  report.push(`copied the CA to ${target} and ran update-ca-certificates`);
}

async function systemUninstall(nickname: string, env: TrustStoreEnvironment, report: TrustReport) {
  const target = join(env.systemDir, `${nickname.replace(/ /g, '-')}.crt`);
  if (!(await exists(target))) return;
  if (!env.isRoot) throw new TrustStoreError(`removing ${target} needs root: run with sudo`);
  await rm(target);
  const update = await onPath('update-ca-certificates');
  if (update) await run(update, ['--fresh']);
  report.push(`removed ${target} and refreshed the system store`);
}

async function caOf(caPath: string): Promise<X509Certificate> {
  try {
    return new X509Certificate(await readFile(caPath));
  } catch (cause) {
    throw new TrustStoreError(`cannot read the CA certificate ${caPath}`, { cause });
  }
}

/** Adds the CA at `caPath` to the selected trust stores; returns what it changed. */
export async function installTrust(
  caPath: string,
  targets: TrustStoreTargets,
  env: TrustStoreEnvironment,
): Promise<TrustReport> {
  const nickname = nicknameOf(await caOf(caPath));
  const report: TrustReport = [];
  // Check rights before touching anything, so a refusal leaves every store as it was.
  if (targets.system && !env.isRoot) await systemInstall(caPath, nickname, env, report);
  if (targets.nss) await nssInstall(caPath, nickname, env.home, report);
  if (targets.system) await systemInstall(caPath, nickname, env, report);
  return report;
}

/** Removes the CA at `caPath` from the selected trust stores; returns what it changed. */
export async function uninstallTrust(
  caPath: string,
  targets: TrustStoreTargets,
  env: TrustStoreEnvironment,
): Promise<TrustReport> {
  const nickname = nicknameOf(await caOf(caPath));
  const report: TrustReport = [];
  if (targets.nss) await nssUninstall(nickname, env.home, report);
  if (targets.system) await systemUninstall(nickname, env, report);
  return report;
}
