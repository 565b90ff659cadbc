// The browser client: plain DOM, no framework. All user-supplied text goes through textContent.
import { accountUi } from './account-ui.js';
import { Outbox, type PendingMessage } from './outbox.js';
import { type Command, helpEntries, parseLine, unhandledCommand } from '../../protocol/commands.js';
import { humanError } from '../../protocol/errors.js';
import {
  type ClientFrame,
  DEFAULT_ROOM,
  normalizeRoom,
  PROTOCOL_VERSION,
  type ServerFrame,
  type WireMessage,
} from '../../protocol/frames.js';
import { ackLine, renderFrame, tokenLine } from '../../protocol/render.js';

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
      return { ...stored, room: typeof stored.room === 'string' ? stored.room : DEFAULT_ROOM, rooms };
    }
  } catch {
    // corrupt or unavailable storage: start fresh
  }
  return { room: DEFAULT_ROOM, rooms: new Map() };
}
const saved = load();
const wantedNick = localStorage.getItem('netchat:nick') ?? undefined;
let nick = '';
let current = saved.room || DEFAULT_ROOM;
/** The token of the last welcome or nick frame, shown by `/token`. */
let token = '';
/** Cids typed with `/cid`: their acks are shown (the outbox's own are not). */
const typedCids = new Set<string>();
/** `/quit`: the page stays disconnected until it is reloaded. */
let quitted = false;
/** Ref on `who` and `rooms` requests typed as commands: their answers are also printed. */
const TYPED = 'typed';
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

const account = accountUi(send, (text) => notice(text));

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
  const id = document.createElement('span');
  id.className = 'msg-id';
  id.textContent = `@${m.id} `;
  li.append(id);
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

/** The room the server last confirmed we are in and see: where a refused join goes back to. */
let confirmed = DEFAULT_ROOM;
/** Refs of joins and creates carry the room, so a refusal can undo the switch to it. */
const JOIN_REF = 'join:';

function joinRoom(room: string, after?: string): void {
  const r = roomState(room);
  showRoom(room);
  const from = after ?? r.lastId;
  const ref = `${JOIN_REF}${room}`;
  send(from ? { type: 'join', room, after: from, ref } : { type: 'join', room, ref });
}

/** A join or create was refused (private room, bad name, limits): back to the last room we had. */
function joinRefused(room: string): void {
  saved.rooms.delete(room);
  persist();
  if (room === current) showRoom(confirmed === room ? DEFAULT_ROOM : confirmed);
}

function onFrame(f: ServerFrame): void {
  switch (f.type) {
    case 'welcome':
      nick = f.nick;
      token = f.token;
      nickBtn.textContent = nick;
      if (f.v !== PROTOCOL_VERSION)
        notice(`server speaks protocol v${f.v}, this page v${PROTOCOL_VERSION}`, 'error');
      // A tab that was logged in continues its login session; a guest reclaims its nickname.
      if (account.loggedIn) for (const frame of account.resumeFrames()) send(frame);
      else if (wantedNick && wantedNick !== nick) send({ type: 'nick', nick: wantedNick, ref: 'login' });
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
      if (f.cid !== undefined && f.id !== undefined && typedCids.delete(f.cid)) notice(ackLine(f.cid, f.id));
      break;
    case 'left':
      saved.rooms.delete(f.room);
      persist();
      if (f.room === current) joinRoom(DEFAULT_ROOM);
      else send({ type: 'rooms' });
      // After the switch (which clears the list), so the sentence stays on screen.
      if (f.by !== undefined) notice(`${f.by} removed you from the private room #${f.room}.`, 'error');
      break;
    case 'account': {
      const wasGuest = !account.loggedIn;
      account.onAccount(f);
      nick = f.nick;
      token = f.token ?? '';
      nickBtn.textContent = nick;
      for (const line of renderFrame(f)) notice(line);
      // Under --guests off a guest is in no room: after logging in, (re)join the current one.
      if (f.account !== null && wasGuest) joinRoom(current);
      refreshSidebar();
      break;
    }
    case 'nick':
      nick = f.nick;
      token = f.token;
      nickBtn.textContent = nick;
      localStorage.setItem('netchat:nick', nick);
      break;
    case 'message':
      addMessage(f);
      break;
    case 'joined':
      if (f.room === current) confirmed = f.room;
      if (f.room === current) roomTitle.textContent = `${f.private ? '🔒 ' : ''}#${f.room}`;
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
      if (f.ref === TYPED) for (const line of renderFrame(f)) notice(line);
      if (f.room === current)
        renderList(
          membersEl,
          f.members.map((m) => ({ label: m, key: m })),
        );
      break;
    case 'rooms':
      if (f.ref === TYPED) for (const line of renderFrame(f)) notice(line);
      renderList(
        roomsEl,
        f.rooms.map((r) => ({ label: `#${r.room} (${r.members})`, key: r.room })),
      );
      for (const li of Array.from(roomsEl.children))
        li.classList.toggle('current', (li as HTMLElement).dataset.room === current);
      break;
    case 'error': {
      if (account.onError(f)) break;
      if (f.ref?.startsWith(JOIN_REF)) joinRefused(f.ref.slice(JOIN_REF.length));
      if (f.cid !== undefined && typedCids.delete(f.cid)) {
        notice(
          `${humanError(f.code, f.message)} (cid ${f.cid})`,
          'error',
          Date.now(),
          `${f.code}: ${f.message}`,
        );
        break;
      }
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
    case 'invited':
      notice(`You invited ${f.name} to #${f.room}.`);
      break;
    case 'kicked':
      notice(`You removed ${f.name} from #${f.room}.`);
      break;
    case 'bye':
      notice(`server: ${f.reason}`);
      break;
    default:
      break;
  }
}

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
    if (ws !== sock || quitted) return;
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

/** A typed command, with the same table (and the same refusals) as netcat and the terminal client. */
function runCommand(cmd: Command): void {
  switch (cmd.name) {
    case 'nick':
      send({ type: 'nick', nick: cmd.nick });
      return;
    case 'join':
      joinRoom(normalizeRoom(cmd.room), cmd.after);
      return;
    case 'leave':
      send({ type: 'leave', room: normalizeRoom(cmd.room ?? current) });
      return;
    case 'rooms':
      send({ type: 'rooms', ref: TYPED });
      return;
    case 'who':
      send({ type: 'who', room: normalizeRoom(cmd.room ?? current), ref: TYPED });
      return;
    case 'msg':
      send({ type: 'dm', to: cmd.to, text: cmd.text });
      notice(`you → ${cmd.to}: ${cmd.text}`, 'dm');
      return;
    case 'cid':
      typedCids.add(cmd.cid);
      send({ type: 'send', room: current, text: cmd.text, cid: cmd.cid });
      return;
    case 'ids':
      messagesEl.classList.toggle('show-ids', cmd.on);
      notice(`ids ${cmd.on ? 'on' : 'off'}`);
      return;
    case 'token':
      if (token) notice(tokenLine(nick, token));
      else notice('Not connected yet: no token.', 'error');
      return;
    case 'create': {
      const room = normalizeRoom(cmd.room);
      showRoom(room);
      const ref = `${JOIN_REF}${room}`;
      send(cmd.private ? { type: 'create', room, private: true, ref } : { type: 'create', room, ref });
      return;
    }
    case 'invite':
    case 'kick':
      send({ type: cmd.name, room: normalizeRoom(cmd.room ?? current), name: cmd.who });
      return;
    case 'register':
      send({ type: 'register', name: cmd.account, password: cmd.password });
      return;
    case 'login':
      send({ type: 'login', name: cmd.account, password: cmd.password });
      return;
    case 'logout':
      send({ type: 'logout' });
      return;
    case 'password':
      send({ type: 'password', old: cmd.old, new: cmd.new });
      return;
    case 'help':
      for (const { usage, text } of helpEntries()) notice(`${usage} — ${text}`);
      return;
    case 'quit':
      quitted = true;
      ws?.close(1000, 'quit');
      statusEl.textContent = 'disconnected';
      statusEl.className = 'status offline';
      notice('Disconnected: reload the page to connect again.');
      return;
    default:
      unhandledCommand(cmd);
  }
}

$<HTMLFormElement>('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = input.value;
  const parsed = parseLine(text);
  if (parsed.kind === 'empty') return;
  input.value = '';
  if (parsed.kind === 'command') runCommand(parsed.command);
  else if (parsed.kind === 'error') {
    // Same rule as netcat and the terminal client: a bad command is never posted as text.
    const shown =
      parsed.code === 'UNKNOWN_COMMAND'
        ? humanError(parsed.code, parsed.message)
        : `Usage: ${parsed.message.slice(7)}`;
    notice(shown, 'error', Date.now(), `${parsed.code}: ${parsed.message}`);
  } else {
    const frame = outbox.add(current, parsed.text);
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
