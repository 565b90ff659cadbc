import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { cleanText, type FoundServer, findServers } from '../transports/udp-discovery.js';
import { defaultPinFile, KnownPins } from './known-pins.js';
import type { Link } from './link.js';
import { caFromPin } from './trust.js';
import { LineLink } from './line-link.js';
import { WsLink } from './ws-link.js';

const HELP = `net-chat client

Usage: net-chat-client [--url ws://HOST:PORT/ws | wss://… | tcp://HOST:PORT | tls://HOST:PORT]
                       [--nick NAME] [--ca FILE] [--pin sha256/…] [--known-pins FILE]
                       [--discovery-port 41234] [--discovery-host HOST]... [--discovery-interface ADDR]...
                       [--first]

Without --url it browses for _net-chat._tcp servers over mDNS (DNS-SD) on every interface and
loopback (or --discovery-interface addresses), then asks 127.0.0.1; --discovery-host asks only
those machines, by unicast DNS-SD to their --discovery-port (the server's --udp-port). When
several answer it lists them and asks which one to use; with --first, or when stdin is not a
terminal, it takes the first that answered.
TLS (wss://, tls://) is verified against --ca, or --pin, or the CA pin a discovered server
announced: that pin is trusted on first use and remembered per server in --known-pins (default
$XDG_CONFIG_HOME/net-chat/known-pins.json); a later different pin is refused with a warning.
Certificate checks are never turned off.`;

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const COLOURS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
function colourNick(nick: string): string {
  if (!tty) return nick;
  let h = 0;
  for (let i = 0; i < nick.length; i++) h = (h * 31 + nick.charCodeAt(i)) >>> 0;
  return `\u001b[${COLOURS[h % COLOURS.length]}m${nick}\u001b[0m`;
}
// Server text is shown verbatim but never as terminal control sequences.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;
function render(line: string): string {
  const clean = line.replace(CONTROL, '?');
  const m = /^(\[[^\]]+\]) <([^>]+)> (.*)$/s.exec(clean);
  if (m) return `${m[1]} <${colourNick(m[2]!)}> ${m[3]}`;
  if (tty && clean.startsWith('!')) return `\u001b[31m${clean}\u001b[0m`;
  if (tty && clean.startsWith('*')) return `\u001b[2m${clean}\u001b[0m`;
  return clean;
}

function fail(message: string): never {
  process.stderr.write(`net-chat-client: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    const argv = process.argv.slice(2);
    // `pnpm demo:client -- --flag` forwards the `--` itself.
    if (argv[0] === '--') argv.shift();
    args = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        nick: { type: 'string' },
        ca: { type: 'string' },
        'discovery-port': { type: 'string' },
        'discovery-host': { type: 'string', multiple: true },
        'discovery-interface': { type: 'string', multiple: true },
        pin: { type: 'string' },
        'known-pins': { type: 'string' },
        first: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const v = args.values as Record<string, string | string[] | boolean | undefined>;
  if (v.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const nick = (v.nick as string | undefined) ?? process.env.CHAT_NICK;
  let ca: string | undefined;
  if (v.ca) {
    try {
      ca = readFileSync(v.ca as string, 'utf8');
    } catch (err) {
      fail(`cannot read --ca ${v.ca}: ${(err as Error).message}`);
    }
  }
  let url = (v.url as string | undefined) ?? process.env.CHAT_URL;
  const givenPin = (v.pin as string | undefined) ?? process.env.CHAT_PIN;
  let pin: string | undefined = givenPin;
  if (!url) {
    const port = Number(v['discovery-port'] ?? process.env.CHAT_DISCOVERY_PORT ?? 41234);
    const hosts =
      (v['discovery-host'] as string[] | undefined) ??
      (process.env.CHAT_DISCOVERY_HOST ?? '').split(',').filter((h) => h.trim() !== '');
    const interfaces = v['discovery-interface'] as string[] | undefined;
    // Only a person at a terminal can choose; scripts and --first get the first answer, at once.
    const interactive = process.stdin.isTTY === true && v.first !== true;
    const limit = interactive ? MAX_LISTED : 1;
    let found: FoundServer[] = [];
    if (hosts.length > 0) {
      process.stdout.write(`* asking ${hosts.join(', ')} on UDP port ${port} (DNS-SD)…\n`);
      const answers = await Promise.all(
        hosts.map((host) =>
          findServers({ discoveryPort: port, host, timeoutMs: 2500, limit }).catch(() => [] as FoundServer[]),
        ),
      );
      found = answers.flat();
    } else {
      process.stdout.write('* looking for _net-chat._tcp servers (mDNS)…\n');
      try {
        found = await findServers({
          discoveryPort: port,
          timeoutMs: 2500,
          limit,
          ...(interfaces ? { interfaces } : {}),
        });
      } catch (err) {
        process.stdout.write(`* mDNS unavailable (${cleanText((err as Error).message)})\n`);
      }
      // No multicast here (or the server's mDNS is off): ask this machine's DNS-SD port directly.
      if (found.length === 0)
        found = await findServers({ discoveryPort: port, host: '127.0.0.1', timeoutMs: 1500, limit }).catch(
          () => [],
        );
    }
    found = distinct(found).slice(0, MAX_LISTED);
    if (found.length === 0) fail('no server answered; pass --url');
    const haveTrust = ca !== undefined || givenPin !== undefined;
    const first = interactive && found.length > 1 ? await choose(found, haveTrust) : found[0]!;
    url = pickUrl(first, haveTrust);
    process.stdout.write(`* found ${first.name} at ${url}\n`);
    if (!ca && /^(wss|tls):/.test(url)) {
      pin = await trustPin(first, givenPin, v['known-pins'] as string | undefined);
      if (first.http) {
        try {
          ca = await caFromPin(
            `http://${first.host.includes(':') ? `[${first.host}]` : first.host}:${first.http}`,
            pin,
          );
        } catch (err) {
          fail(`cannot trust the discovered server: ${(err as Error).message}`);
        }
      }
      if (!givenPin) {
        const store = new KnownPins((v['known-pins'] as string | undefined) ?? defaultPinFile());
        const key = serverKey(first);
        const firstUse = store.check(key, pin).kind === 'first-use';
        if (firstUse) {
          try {
            store.remember(key, pin);
          } catch (err) {
            process.stdout.write(
              `* could not remember the pin in ${store.file}: ${(err as Error).message}\n`,
            );
          }
        }
        process.stdout.write(
          firstUse
            ? `* server CA verified against the announced pin (trusted on first use, remembered in ${store.file})\n`
            : '* server CA verified against the announced pin (the one remembered for this server)\n',
        );
      } else process.stdout.write('* server CA verified against --pin\n');
    }
  }
  let link: Link;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail(`--url ${url} is not a URL`);
  }
  const tlsTrust = { ca, pin };
  switch (parsed.protocol) {
    case 'ws:':
    case 'wss:':
      link = new WsLink(parsed, nick, tlsTrust);
      break;
    case 'tcp:':
    case 'tls:':
      link = new LineLink(parsed, nick, tlsTrust);
      break;
    default:
      fail(`unsupported URL scheme ${parsed.protocol} (use ws, wss, tcp or tls)`);
  }

  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: process.stdin.isTTY === true,
  });
  rl.setPrompt('> ');
  const show = (line: string) => {
    if (process.stdin.isTTY) {
      process.stdout.write('\r\u001b[K');
      process.stdout.write(`${render(line)}\n`);
      rl.prompt(true);
    } else process.stdout.write(`${render(line)}\n`);
  };
  let quitting = false;
  const quit = (code: number) => {
    if (quitting) return;
    quitting = true;
    link.close();
    rl.close();
    setTimeout(() => process.exit(code), 50).unref();
  };
  link.onLine = show;
  link.onQuit = () => quit(0);
  let backoff = 250;
  const reconnect = async (): Promise<void> => {
    while (!quitting) {
      try {
        await link.connect();
        backoff = 250;
        return;
      } catch (err) {
        show(`! cannot connect: ${(err as Error).message}; retrying in ${Math.round(backoff / 100) / 10}s`);
        if (isCertificateError(err)) quit(1);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  };
  link.onDrop = (reason) => {
    if (quitting) return;
    show(`* disconnected (${reason}), reconnecting…`);
    void reconnect();
  };
  rl.on('line', (line) => link.input(line));
  rl.on('close', () => quit(0));
  process.on('SIGINT', () => quit(0));
  await reconnect();
  if (process.stdin.isTTY) rl.prompt();
}

/** Servers listed by the picker at most (a LAN full of chat servers is not a menu). */
const MAX_LISTED = 20;

/** One entry per server: it may answer both the multicast and a unicast query. */
function distinct(found: FoundServer[]): FoundServer[] {
  const seen = new Set<string>();
  return found.filter((s) => {
    const key = `${s.host}|${s.http ?? ''}|${s.tcp ?? ''}|${s.https ?? ''}|${s.tls ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Numbered list on stdout, a number (or Enter for 1) on stdin; asks again on anything else. */
async function choose(found: FoundServer[], haveCa: boolean): Promise<FoundServer> {
  process.stdout.write(`* ${found.length} servers answered:\n`);
  found.forEach((s, i) => {
    process.stdout.write(`  ${i + 1}) ${cleanText(s.name)} at ${pickUrl(s, haveCa)}\n`);
  });
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    for (;;) {
      const answer = await new Promise<string | undefined>((resolve) => {
        const closed = () => resolve(undefined);
        rl.once('close', closed);
        rl.question(`pick a server [1-${found.length}, Enter = 1]: `, (a) => {
          rl.off('close', closed);
          resolve(a);
        });
      });
      if (answer === undefined) fail('no server picked');
      const n = answer.trim() === '' ? 1 : Number(answer.trim());
      const picked = Number.isInteger(n) ? found[n - 1] : undefined;
      if (picked) return picked;
      process.stdout.write(`* type a number from 1 to ${found.length}\n`);
    }
  } finally {
    rl.close();
  }
}

/** known-pins key of a server: where its TLS endpoint is (the address we connect to and its port). */
function serverKey(s: FoundServer): string {
  return `${s.host}:${s.https ?? s.tls}`;
}

/**
 * The pin to verify a discovered server with: --pin when given (a different announced pin is only
 * warned about), else the announced one if it is new or the one remembered for this server; a
 * changed pin is refused, since a discovery answer is not authenticated.
 */
async function trustPin(
  s: FoundServer,
  givenPin: string | undefined,
  file: string | undefined,
): Promise<string> {
  if (givenPin) {
    if (s.caPin && s.caPin.replace(/^sha256\//, '') !== givenPin.replace(/^sha256\//, '')) {
      process.stdout.write('! warning: the server announced a different CA pin than --pin; using --pin\n');
    }
    return givenPin;
  }
  if (!s.caPin) fail('the discovered server announced no CA pin; pass --ca or --pin');
  const store = new KnownPins(file ?? defaultPinFile());
  const decision = store.check(serverKey(s), s.caPin);
  if (decision.kind === 'changed') {
    process.stderr.write(
      `! WARNING: the CA pin announced for ${serverKey(s)} changed\n` +
        `!   remembered ${decision.remembered}\n!   announced  ${decision.pin}\n` +
        '! Someone on the network may be impersonating the server. Refusing to connect.\n' +
        `! If the server's CA really changed, pass --pin ${decision.pin} or remove the entry from ${store.file}.\n`,
    );
    process.exit(3);
  }
  return decision.pin;
}

function pickUrl(a: FoundServer, haveCa: boolean): string {
  const host = a.host;
  const h = host.includes(':') ? `[${host}]` : host;
  // Prefer TLS when the server offers it and we can verify it (pin from discovery, or --ca).
  if (a.https && (a.caPin || haveCa)) return `wss://${h}:${a.https}/ws`;
  if (a.http) return `ws://${h}:${a.http}/ws`;
  if (a.tls && (a.caPin || haveCa)) return `tls://${h}:${a.tls}`;
  if (a.tcp) return `tcp://${h}:${a.tcp}`;
  fail('the discovered server announced no usable endpoint');
}

function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  const msg = (err as Error)?.message ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|PIN/i.test(code) || /certificate|pin mismatch/i.test(msg);
}

main().catch((err) => fail((err as Error).message));
