export type PeerName =
  | 'nc'
  | 'openssl'
  | 'curl'
  | 'chromium'
  | 'redis-server'
  | 'redis-cli'
  | 'script'
  | 'tmux'
  | 'tinyproxy'
  | 'nghttp'
  | 'nghttpd'
  | 'h2load'
  | 'avahi-daemon'
  | 'avahi-browse'
  | 'avahi-publish'
  | 'dbus-daemon'
  | 'python3-zeroconf'
  | 'certutil'
  | 'wrk';

export declare const PEER_PACKAGES: Record<PeerName, string>;
export declare const EXPLICIT_ENV: Partial<Record<PeerName, string>>;
export declare function peerEnvName(peer: PeerName): string;
export declare function lookupPeer(peer: PeerName, env?: NodeJS.ProcessEnv): string | undefined;
