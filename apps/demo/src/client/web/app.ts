// The browser client: plain DOM, no framework. All user-supplied text goes through textContent.
import { Outbox, type PendingMessage } from './outbox.js';
import { type ClientFrame, PROTOCOL_VERSION, type ServerFrame, type WireMessage } from './protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const messagesEl = $<HTMLOListElement>('messages');
const roomsEl = $<HTMLUListElement>('rooms');
const membersEl = $<HTMLUListElement>('members');
const typingEl = $<HTMLDivElement>('typing');
const statusEl = $<HTMLSpanElement>('status');
const nickBtn = $<HTMLButtonElement>('nick');
const roomTitle = $<HTMLSpanElement>('room-title');
const input = $<HTMLInputElement>('input');
const STORE_KEY = 'netchat:v1';
const KEEP = 200;

interface RoomState {
  lastId?: string;
  messages: WireMessage[];
}

interface Saved {
  nick?: string;
  room: string;
  /**
   * Messages per room shown before the reload, and the last id seen (for resume). A Map: room
   * names are user input, and `__proto__` or `constructor` must not hit Object.prototype.
   */
  rooms: Map<string, RoomState>;
  /** Messages sent but not acknowledged yet: resent (same cid) after the reload. */
  outbox?: PendingMessage[];
}

function load(): Saved {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    if (raw) {
      const stored = JSON.parse(raw) as Omit<Saved, 'rooms'> & { rooms?: unknown };
      // Stored as [room, state] pairs; older tabs stored an object (read as own entries only).
      const pairs = Array.isArray(stored.rooms)
        ? (stored.rooms as [string, RoomState][])
        : Object.entries((stored.rooms ?? {}) as Record<string, RoomState>);
      const rooms = new Map<string, RoomState>();
      for (const [room, state] of pairs) {
        if (typeof room === 'string' && state && Array.isArray(state.messages)) rooms.set(room, state);
      }
      return { ...stored, room: typeof stored.room === 'string' ? stored.room : 'lobby', rooms };
    }
  } catch {
    // corrupt or unavailable storage: start fresh
  }
  return { room: 'lobby', rooms: new Map() };
}
const saved = load();
const wantedNick = localStorage.getItem('netchat:nick') ?? undefined;
let nick = '';
let current = saved.room || 'lobby';
const seen = new Set<string>();
let ws: WebSocket | undefined;
let backoff = 500;
const typers = new Map<string, number>();
// Un-acked messages survive reconnects (resent with the same cid, stored once) and reloads.
const outbox = new Outbox();
if (Array.isArray(saved.outbox)) outbox.restore(saved.outbox);

function saveOutbox(): void {
  saved.outbox = outbox.list();
  persist();
  input.placeholder = outbox.size > 0 ? `sending ${outbox.size}…` : 'message (/nick, /join, /msg NICK text)';
}

function persist(): void {
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ ...saved, rooms: [...saved.rooms] }));
  } catch {
    // quota: history just is not kept across reloads
  }
}

function roomState(room: string): RoomState {
  let r = saved.rooms.get(room);
  if (!r) saved.rooms.set(room, (r = { messages: [] }));
  return r;
}

function send(frame: ClientFrame): void {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 60% 38%)`;
}

function timeOf(ts: number): HTMLTimeElement {
  const t = document.createElement('time');
  const d = new Date(ts);
  t.dateTime = d.toISOString();
  t.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return t;
}

function scrollDown(): void {
  messagesEl.scrollTop = messagesEl.scrollHeight;
}

function renderMessage(m: WireMessage): void {
  const li = document.createElement('li');
  li.className = 'msg';
  li.dataset.id = m.id;
  li.append(timeOf(m.ts));
  const who = document.createElement('span');
  who.className = 'nick';
  who.style.color = colour(m.nick);
  who.textContent = m.nick;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = m.text;
  li.append(who, body);
  messagesEl.append(li);
}

function notice(text: string, cls = 'notice', ts = Date.now(), title?: string): void {
  const li = document.createElement('li');
  li.className = cls;
  if (title !== undefined) li.title = title;
  li.append(timeOf(ts));
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  messagesEl.append(li);
  scrollDown();
}

function addMessage(m: WireMessage): void {
  if (seen.has(m.id)) return;
  seen.add(m.id);
  const r = roomState(m.room);
  r.lastId = m.id;
  r.messages.push({ type: 'message', id: m.id, room: m.room, nick: m.nick, text: m.text, ts: m.ts });
  if (r.messages.length > KEEP) r.messages.splice(0, r.messages.length - KEEP);
  persist();
  if (m.room === current) {
    typers.delete(m.nick);
    renderTyping();
    renderMessage(m);
    scrollDown();
  }
}

function showRoom(room: string): void {
  current = room;
  saved.room = room;
  persist();
  roomTitle.textContent = `#${room}`;
  messagesEl.replaceChildren();
  for (const m of roomState(room).messages) {
    seen.add(m.id);
    renderMessage(m);
  }
  scrollDown();
  typers.clear();
  renderTyping();
  for (const li of Array.from(roomsEl.children))
    li.classList.toggle('current', (li as HTMLElement).dataset.room === room);
}

function renderList(el: HTMLUListElement, items: { label: string; key: string }[]): void {
  el.replaceChildren(
    ...items.map(({ label, key }) => {
      const li = document.createElement('li');
      li.textContent = label;
      li.dataset.room = key;
      return li;
    }),
  );
}

function renderTyping(): void {
  const now = Date.now();
  const names = [...typers].filter(([, until]) => until > now).map(([n]) => n);
  typingEl.textContent =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : `${names.join(', ')} are typing…`;
}
setInterval(renderTyping, 1000);

function refreshSidebar(): void {
  send({ type: 'rooms' });
  send({ type: 'who', room: current });
}

function joinRoom(room: string): void {
  const r = roomState(room);
  showRoom(room);
  send(r.lastId ? { type: 'join', room, after: r.lastId } : { type: 'join', room });
}

function onFrame(f: ServerFrame): void {
  switch (f.type) {
    case 'welcome':
      nick = f.nick;
      nickBtn.textContent = nick;
      if (f.v !== PROTOCOL_VERSION)
        notice(`server speaks protocol v${f.v}, this page v${PROTOCOL_VERSION}`, 'error');
      if (wantedNick && wantedNick !== nick) send({ type: 'nick', nick: wantedNick, ref: 'login' });
      // Rejoin every room this tab was in, each from its last seen id (resume without gaps).
      for (const [room, state] of saved.rooms) {
        if (room === current) continue;
        const last = state.lastId;
        send(last ? { type: 'join', room, after: last } : { type: 'join', room });
      }
      joinRoom(current);
      // After the joins (handled in order by the server): everything never acknowledged.
      for (const frame of outbox.resendAll()) send(frame);
      break;
    case 'ack':
      if (outbox.acked(f.cid)) saveOutbox();
      break;
    case 'left':
      saved.rooms.delete(f.room);
      persist();
      if (f.room === current) joinRoom('lobby');
      else send({ type: 'rooms' });
      break;
    case 'nick':
      nick = f.nick;
      nickBtn.textContent = nick;
      localStorage.setItem('netchat:nick', nick);
      break;
    case 'message':
      addMessage(f);
      break;
    case 'joined':
      if (f.room === current)
        renderList(
          membersEl,
          f.members.map((m) => ({ label: m, key: m })),
        );
      send({ type: 'rooms' });
      break;
    case 'history-end':
      if (f.truncated && f.room === current) notice('some older messages were skipped');
      break;
    case 'join':
    case 'leave':
      if (f.room === current) {
        notice(`${f.nick} ${f.type === 'join' ? 'joined' : 'left'} #${f.room}`, 'notice', f.ts);
        refreshSidebar();
      }
      break;
    case 'rename':
      if (f.room === current) {
        notice(`${f.from} is now ${f.to}`, 'notice', f.ts);
        refreshSidebar();
      }
      break;
    case 'typing':
      if (f.room === current) {
        typers.set(f.nick, Date.now() + 3000);
        renderTyping();
      }
      break;
    case 'dm':
      notice(`${f.from} → ${f.to}: ${f.text}`, 'dm', f.ts);
      break;
    case 'who':
      if (f.room === current)
        renderList(
          membersEl,
          f.members.map((m) => ({ label: m, key: m })),
        );
      break;
    case 'rooms':
      renderList(
        roomsEl,
        f.rooms.map((r) => ({ label: `#${r.room} (${r.members})`, key: r.room })),
      );
      for (const li of Array.from(roomsEl.children))
        li.classList.toggle('current', (li as HTMLElement).dataset.room === current);
      break;
    case 'error': {
      const d = outbox.failed(f.cid, f.code);
      if (d.action === 'retry') {
        const cid = d.message.cid;
        notice(
          `${humanError(f.code, f.message)} (resending in ${Math.round(d.delayMs / 100) / 10}s)`,
          'error',
          Date.now(),
          `${f.code}: ${f.message}`,
        );
        setTimeout(() => {
          const frame = outbox.resend(cid);
          if (frame) send(frame);
        }, d.delayMs);
      } else if (d.action === 'drop') {
        saveOutbox();
        notice(
          `${humanError(f.code, f.message)} Not sent: ${d.message.text.slice(0, 80)}`,
          'error',
          Date.now(),
          `${f.code}: ${f.message}`,
        );
      } else if (d.action !== 'wait')
        notice(humanError(f.code, f.message), 'error', Date.now(), `${f.code}: ${f.message}`);
      break;
    }
    case 'bye':
      notice(`server: ${f.reason}`);
      break;
    default:
      break;
  }
}

/** What a person reads for each error code; the code itself stays in the tooltip. */
const ERROR_SENTENCES: Record<string, string> = {
  NICK_TAKEN: 'That nickname is already taken: pick another one.',
  NICK_INVALID: 'Nicknames are 1–24 letters, digits, _ or -.',
  ROOM_INVALID: 'Room names are 1–32 letters, digits, _ or -.',
  NOT_IN_ROOM: 'You are not in that room: /join it first.',
  TOO_MANY_ROOMS: 'You are in as many rooms as one connection may join: /leave one first.',
  ROOM_LIMIT: 'The server has as many rooms as it allows: join an existing room.',
  TEXT_EMPTY: 'Nothing to send.',
  TEXT_TOO_LONG: 'That message is too long.',
  TEXT_INVALID: 'That message contains characters that are not allowed (invisible or line-breaking ones).',
  RATE_LIMITED: 'Slow down a little, then try again.',
  NO_SUCH_NICK: 'Nobody has that nickname right now.',
  STORE_FAILED: 'The server could not store the message; it will be resent.',
  OUTCOME_UNKNOWN: 'The server did not confirm the message in time; it will be resent.',
  SHUTTING_DOWN: 'The server is restarting.',
  UNKNOWN_COMMAND: 'Unknown command: type /help for the list.',
};

function humanError(code: string, message: string): string {
  return ERROR_SENTENCES[code] ?? message;
}

const HELP = [
  '/join ROOM — join a room (or switch to it)',
  '/leave — leave the current room',
  '/nick NAME — change your nickname',
  '/msg NAME TEXT — a direct message',
  '/help — this list',
];

/** Backoff for reconnecting: doubles up to 5 s, with ±30 % jitter so a restart is not a stampede. */
function nextDelay(previous: number): number {
  const base = Math.min(previous * 2, 5000);
  return Math.round(base * (0.7 + Math.random() * 0.6));
}
let retryTimer: ReturnType<typeof setTimeout> | undefined;

function retryNow(): void {
  if (retryTimer === undefined) return;
  clearTimeout(retryTimer);
  retryTimer = undefined;
  connect();
}
// Back in view or back online: no reason to wait out the backoff.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') retryNow();
});
window.addEventListener('online', retryNow);

function connect(): void {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const sock = new WebSocket(url);
  ws = sock;
  statusEl.textContent = 'connecting';
  statusEl.className = 'status';
  sock.onopen = () => {
    backoff = 500;
    statusEl.textContent = 'online';
    statusEl.className = 'status online';
    membersEl.classList.remove('stale');
    membersEl.title = '';
  };
  sock.onmessage = (ev) => {
    try {
      onFrame(JSON.parse(String(ev.data)) as ServerFrame);
    } catch {
      notice('unreadable frame from server', 'error');
    }
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    const delay = backoff;
    statusEl.textContent = `offline, retrying in ${Math.max(1, Math.round(delay / 1000))}s`;
    statusEl.className = 'status offline';
    // Who was here before the connection dropped; refreshed on reconnect.
    membersEl.classList.add('stale');
    membersEl.title = 'offline: this list may be out of date';
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect();
    }, delay);
    backoff = nextDelay(backoff);
  };
}

$<HTMLFormElement>('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = input.value;
  if (text.trim() === '') return;
  input.value = '';
  const [cmd, ...rest] = text.split(' ');
  if (cmd === '/nick' && rest[0]) send({ type: 'nick', nick: rest[0] });
  else if (cmd === '/join' && rest[0]) joinRoom(rest[0].replace(/^#/, '').toLowerCase());
  else if (cmd === '/leave') send({ type: 'leave', room: current });
  else if (cmd === '/msg' && rest.length > 1) {
    send({ type: 'dm', to: rest[0]!, text: rest.slice(1).join(' ') });
    notice(`you → ${rest[0]}: ${rest.slice(1).join(' ')}`, 'dm');
  } else if (cmd === '/help') {
    for (const line of HELP) notice(line);
  } else if (text.startsWith('/')) {
    // Same rule as netcat and the terminal client: an unknown command is never posted as text.
    notice(humanError('UNKNOWN_COMMAND', ''), 'error', Date.now(), `UNKNOWN_COMMAND: ${cmd}`);
  } else {
    const frame = outbox.add(current, text);
    if (!frame) {
      input.value = text;
      notice(`${outbox.size} messages are still waiting for the server; try again later`, 'error');
      return;
    }
    saveOutbox();
    send(frame);
  }
});

let lastTyping = 0;
input.addEventListener('input', () => {
  const now = Date.now();
  if (now - lastTyping > 1500 && input.value && !input.value.startsWith('/')) {
    lastTyping = now;
    send({ type: 'typing', room: current });
  }
});

nickBtn.addEventListener('click', () => {
  const next = prompt('nickname', nick);
  if (next) send({ type: 'nick', nick: next.trim() });
});
roomsEl.addEventListener('click', (ev) => {
  const room = (ev.target as HTMLElement).dataset.room;
  if (room && room !== current) joinRoom(room);
});
$<HTMLFormElement>('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const box = $<HTMLInputElement>('join-input');
  const room = box.value.trim().replace(/^#/, '').toLowerCase();
  box.value = '';
  if (room) joinRoom(room);
});

showRoom(current);
connect();
