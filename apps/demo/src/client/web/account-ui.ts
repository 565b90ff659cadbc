// The page's account box: log in / register form, "logged in as", log out. Plain DOM, textContent only.
import type { ClientFrame, ServerFrame } from '../../protocol/frames.js';

const LOGIN_KEY = 'netchat:login';

export interface AccountUi {
  /** Frames to send first after `welcome`: continue the login session of this tab, if any. */
  resumeFrames(): ClientFrame[];
  /** True while this tab holds a login token (the nickname is the account's, not a wish). */
  readonly loggedIn: boolean;
  /** An `account` frame: show who we are now. Returns the token to use for `/token`. */
  onAccount(f: Extract<ServerFrame, { type: 'account' }>): void;
  /** An error answering one of our account requests (by ref); true when handled here. */
  onError(f: Extract<ServerFrame, { type: 'error' }>): boolean;
}

/**
 * Wires the account form in index.html. The login token lives in sessionStorage (this tab only,
 * gone when the tab closes) so a reload or a reconnect continues the same login session.
 */
export function accountUi(send: (frame: ClientFrame) => void, notify: (text: string) => void): AccountUi {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const form = $<HTMLFormElement>('account-form');
  const name = $<HTMLInputElement>('account-name');
  const password = $<HTMLInputElement>('account-password');
  const registerBtn = $<HTMLButtonElement>('register-btn');
  const who = $<HTMLSpanElement>('account');
  const logoutBtn = $<HTMLButtonElement>('logout-btn');
  let loginToken: string | undefined;
  try {
    loginToken = sessionStorage.getItem(LOGIN_KEY) ?? undefined;
  } catch {
    loginToken = undefined;
  }

  const show = (account: string | null) => {
    form.hidden = account !== null;
    logoutBtn.hidden = account === null;
    who.textContent = account === null ? 'guest' : `logged in as ${account}`;
  };
  const store = (token: string | undefined) => {
    loginToken = token;
    try {
      if (token) sessionStorage.setItem(LOGIN_KEY, token);
      else sessionStorage.removeItem(LOGIN_KEY);
    } catch {
      // storage unavailable: the login lasts as long as the connection
    }
  };
  const submit = (type: 'login' | 'register') => {
    const n = name.value.trim();
    if (!n || !password.value) return;
    const ref = `account-${type}`;
    send(
      type === 'login'
        ? { type, name: n, password: password.value, ref }
        : { type, name: n, password: password.value, ref },
    );
    password.value = '';
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit('login');
  });
  registerBtn.addEventListener('click', () => submit('register'));
  logoutBtn.addEventListener('click', () => send({ type: 'logout', ref: 'account-logout' }));
  show(null);

  return {
    resumeFrames: () => (loginToken ? [{ type: 'login', token: loginToken, ref: 'account-resume' }] : []),
    get loggedIn() {
      return loginToken !== undefined;
    },
    onAccount(f) {
      if (f.account !== null) {
        if (f.token) store(f.token);
      } else {
        store(undefined);
        if (f.reason) notify(`${f.reason}: you are ${f.nick} now`);
      }
      show(f.account);
    },
    onError(f) {
      if (f.ref === 'account-resume') {
        // The session ended while this tab was away: continue as a guest.
        store(undefined);
        show(null);
        notify('Your login session has ended: log in again.');
        return true;
      }
      return false;
    },
  };
}
