/**
 * Interop with other mDNS / DNS-SD implementations, all on the loopback interface (multicast
 * interface 127.0.0.1): `multicast-dns` and `bonjour-service` from npm, python-zeroconf and avahi.
 * Each direction is tested: they find our advertisement, we find theirs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bonjour } from 'bonjour-service';
import makeMdns from 'multicast-dns';
import { afterEach, describe, expect, it } from 'vitest';
import { describeWithPeers, inCI, peerPath } from '../../../test-support/peers.js';
import { advertise, browse, type DiscoveredService, find } from '../src/index.js';
import { waitFor } from './helpers.js';

const interfaces = ['127.0.0.1'];
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
});

const suffix = () => randomBytes(3).toString('hex');

/** What a peer must see of our advertisement. */
async function ourService(type: string, name: string) {
  const ad = await advertise({
    name,
    type,
    port: 4711,
    txt: { proto: 1, path: '/ws' },
    host: `net-udp-${suffix()}`,
    interfaces,
  });
  cleanups.push(() => ad.close());
  return ad;
}

function collectLines(child: ChildProcess): string[] {
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  return lines;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

describe('multicast-dns (npm)', () => {
  it('resolves our advertisement: PTR, then SRV, TXT and A', async () => {
    const type = `_m${suffix()}._tcp`;
    const ad = await ourService(type, 'For multicast-dns');
    const mdns = makeMdns({ interface: '127.0.0.1', bind: '0.0.0.0', loopback: true });
    cleanups.push(() => new Promise<void>((r) => mdns.destroy(() => r())));
    const records = new Map<string, unknown>();
    mdns.on('response', (packet) => {
      for (const r of [...packet.answers, ...packet.additionals])
        records.set(`${r.type} ${r.name}`, (r as { data?: unknown }).data);
    });
    const fqdn = `For multicast-dns.${type}.local`;
    mdns.query({ questions: [{ name: `${type}.local`, type: 'PTR' }] });
    await waitFor(() => records.has(`PTR ${type}.local`), 'PTR', 5000);
    expect(records.get(`PTR ${type}.local`)).toBe(fqdn);
    if (!records.has(`SRV ${fqdn}`))
      mdns.query({
        questions: [
          { name: fqdn, type: 'SRV' },
          { name: fqdn, type: 'TXT' },
        ],
      });
    await waitFor(() => records.has(`SRV ${fqdn}`) && records.has(`TXT ${fqdn}`), 'SRV and TXT', 5000);
    expect(records.get(`SRV ${fqdn}`)).toMatchObject({ port: 4711, target: ad.responder.hostName });
    const txt = (records.get(`TXT ${fqdn}`) as Buffer[]).map((b) => b.toString()).sort();
    expect(txt).toEqual(['path=/ws', 'proto=1']);
    await waitFor(() => records.has(`A ${ad.responder.hostName}`), 'A', 5000);
    expect(records.get(`A ${ad.responder.hostName}`)).toBe('127.0.0.1');
  });

  it('is found by our browser when it answers for its own service', async () => {
    const type = `_m${suffix()}._tcp`;
    const fqdn = `Mdns peer.${type}.local`;
    const host = `mdns-peer-${suffix()}.local`;
    const mdns = makeMdns({ interface: '127.0.0.1', bind: '0.0.0.0', loopback: true });
    cleanups.push(() => new Promise<void>((r) => mdns.destroy(() => r())));
    mdns.on('query', (query) => {
      const names = query.questions.map((q) => q.name.toLowerCase());
      if (!names.some((n) => n === `${type}.local` || n === fqdn.toLowerCase() || n === host)) return;
      mdns.respond({
        answers: [
          { name: `${type}.local`, type: 'PTR', ttl: 4500, data: fqdn },
          { name: fqdn, type: 'SRV', ttl: 120, data: { port: 9999, target: host, priority: 0, weight: 0 } },
          { name: fqdn, type: 'TXT', ttl: 4500, data: ['peer=multicast-dns'] },
          { name: host, type: 'A', ttl: 120, data: '127.0.0.1' },
        ],
      });
    });
    const [found] = await find(type, { interfaces, limit: 1, timeout: 8000 });
    expect(found).toMatchObject({ name: 'Mdns peer', port: 9999, host, addresses: ['127.0.0.1'] });
    expect(found!.txt.peer).toBe('multicast-dns');
  });
});

function machineIPv4(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && i.family === 'IPv4' && !i.internal && i.mac !== '00:00:00:00:00:00')
    .map((i) => i!.address)
    .sort();
}

describe('bonjour-service (npm)', () => {
  it('finds our advertisement with its SRV port, TXT and address', async () => {
    const id = `b${suffix()}`;
    const ad = await ourService(`_${id}._tcp`, 'For bonjour');
    const bonjour = new Bonjour({ interface: '127.0.0.1', bind: '0.0.0.0' } as never);
    cleanups.push(() => new Promise<void>((r) => bonjour.destroy(() => r())));
    const up: Array<{
      name: string;
      port: number;
      txt: Record<string, string>;
      addresses?: string[];
      host: string;
    }> = [];
    bonjour.find({ type: id }, (s) => up.push(s as never));
    await waitFor(() => up.length > 0 && (up[0]!.addresses?.length ?? 0) > 0, 'bonjour to find us', 8000);
    expect(up[0]).toMatchObject({ name: 'For bonjour', port: 4711, host: ad.responder.hostName });
    expect(up[0]!.txt).toEqual({ proto: '1', path: '/ws' });
    expect(up[0]!.addresses).toEqual(['127.0.0.1']);
  });

  it('is found by our browser (SRV, TXT, addresses)', async () => {
    const id = `b${suffix()}`;
    const host = `bonjour-peer-${suffix()}.local`;
    const bonjour = new Bonjour({ interface: '127.0.0.1', bind: '0.0.0.0' } as never);
    cleanups.push(() => new Promise<void>((r) => bonjour.destroy(() => r())));
    bonjour.publish({
      name: 'Bonjour peer',
      type: id,
      port: 6543,
      host,
      txt: { peer: 'bonjour' },
      disableIPv6: true,
    });
    const [found] = await find(`_${id}._tcp`, { interfaces, limit: 1, timeout: 10_000, addressWait: 3000 });
    expect(found).toMatchObject({ name: 'Bonjour peer', port: 6543, host });
    expect(found!.txt.peer).toBe('bonjour');
    // bonjour-service publishes the machine's non-loopback addresses, whatever interface it sends on.
    expect(found!.addresses).toEqual(machineIPv4());
  });
});

const PEER_SCRIPT = new URL('./peers/zeroconf-peer.py', import.meta.url).pathname;

describeWithPeers(['python3-zeroconf'], 'python-zeroconf', () => {
  it('browses and resolves our advertisement', async () => {
    const type = `_z${suffix()}._tcp`;
    const ad = await ourService(type, 'For zeroconf');
    const py = spawn(peerPath('python3-zeroconf'), [PEER_SCRIPT, 'browse', type, '8'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => stop(py));
    const lines = collectLines(py);
    await waitFor(() => lines.length > 0, 'zeroconf to report our service', 12_000);
    const seen = JSON.parse(lines[0]!);
    expect(seen).toMatchObject({
      name: `For zeroconf.${type}.local.`,
      port: 4711,
      server: `${ad.responder.hostName}.`,
      addresses: ['127.0.0.1'],
      txt: { proto: '1', path: '/ws' },
    });
  });

  it('registers a service that our browser finds', async () => {
    const type = `_z${suffix()}._tcp`;
    const host = `zc-peer-${suffix()}`;
    const py = spawn(
      peerPath('python3-zeroconf'),
      [PEER_SCRIPT, 'register', 'Zeroconf peer', type, '7777', host],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    cleanups.push(() => stop(py));
    cleanups.push(() => py.stdin!.end());
    const lines = collectLines(py);
    await waitFor(() => lines.some((l) => l.startsWith('registered')), 'zeroconf to register', 15_000);
    const [found] = await find(type, { interfaces, limit: 1, timeout: 8000 });
    expect(found).toMatchObject({
      name: 'Zeroconf peer',
      port: 7777,
      host: `${host}.local`,
      addresses: ['127.0.0.1'],
    });
    expect({ ...found!.txt }).toEqual({ from: 'zeroconf', v: '1' });
  });
});

/**
 * A private avahi: its own D-Bus system bus (avahi-browse and avahi-publish talk to the daemon
 * over D-Bus) and a config limited to `lo` without IPv6 (Linux refuses IPv6 multicast on `lo`).
 * avahi-daemon keeps its pid file at a fixed path, so only one can run per machine.
 */
async function startAvahi(): Promise<{ env: NodeJS.ProcessEnv } | { skip: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'net-avahi-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const bus = join(dir, 'bus');
  writeFileSync(
    join(dir, 'bus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  writeFileSync(
    join(dir, 'avahi.conf'),
    `[server]
host-name=avahi-peer-${suffix()}
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
`,
  );
  const dbus = spawn(
    peerPath('dbus-daemon'),
    ['--config-file', join(dir, 'bus.conf'), '--nofork', '--nopidfile'],
    {
      stdio: 'ignore',
    },
  );
  cleanups.push(() => stop(dbus));
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}` };
  mkdirSync(dir, { recursive: true });
  await new Promise((r) => setTimeout(r, 300));
  const avahi = spawn(
    peerPath('avahi-daemon'),
    ['--no-drop-root', '--no-chroot', '--no-rlimits', '-f', join(dir, 'avahi.conf')],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanups.push(() => stop(avahi));
  let log = '';
  avahi.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  avahi.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!log.includes('Server startup complete')) {
    if (avahi.exitCode !== null || Date.now() > deadline) {
      return {
        skip: `avahi-daemon did not start: ${log.trim().split('\n').slice(-3).join(' | ') || 'no output'}`,
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { env };
}

describeWithPeers(['avahi-daemon', 'avahi-browse', 'avahi-publish', 'dbus-daemon'], 'avahi', () => {
  it('avahi-browse lists our service, and our browser finds avahi-publish', async (ctx) => {
    const started = await startAvahi();
    if ('skip' in started) {
      // Not a missing program but an environment that cannot run the daemon: say exactly why.
      if (inCI) throw new Error(started.skip);
      const dir = join(process.cwd(), 'test-results', 'skips');
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, `${process.pid}-avahi.json`),
        JSON.stringify({ title: 'avahi', missing: [], reason: started.skip }),
      );
      ctx.skip(started.skip);
      return;
    }
    const { env } = started;
    const type = `_a${suffix()}._tcp`;
    const ad = await ourService(type, 'For avahi');
    const lines: string[] = [];
    const deadline = Date.now() + 15_000;
    // -t ends after the cache dump; repeat until avahi has resolved us (its first query waits a bit).
    while (!lines.some((l) => l.startsWith('=')) && Date.now() < deadline) {
      const br = spawn(peerPath('avahi-browse'), ['-rpt', type], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const out = collectLines(br);
      await new Promise((r) => br.once('exit', r));
      lines.push(...out);
    }
    const resolved = lines.find((l) => l.startsWith('='))!;
    expect(resolved).toBeDefined();
    // =;iface;proto;name;type;domain;host;address;port;txt
    const f = resolved.split(';');
    expect(f.slice(3, 10)).toEqual([
      'For\\032avahi',
      type,
      'local',
      ad.responder.hostName,
      '127.0.0.1',
      '4711',
      f[9],
    ]);
    expect(f[9]!.split(' ').sort()).toEqual(['"path=/ws"', '"proto=1"']);

    const type2 = `_a${suffix()}._tcp`;
    const pub = spawn(peerPath('avahi-publish'), ['-s', 'Avahi peer', type2, '5151', 'peer=avahi'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => stop(pub));
    const browser = await browse(type2, { interfaces });
    cleanups.push(() => browser.close());
    let found: DiscoveredService | undefined;
    browser.on('up', (s) => (found = s));
    await waitFor(() => found !== undefined, 'avahi-publish service', 15_000);
    expect(found).toMatchObject({ name: 'Avahi peer', port: 5151 });
    // avahi publishes ::1 for lo even with use-ipv6=no.
    expect(found!.addresses).toContain('127.0.0.1');
    expect(found!.host).toMatch(/^avahi-peer-[0-9a-f]+\.local$/);
    expect(found!.txt.peer).toBe('avahi');
  });
});
