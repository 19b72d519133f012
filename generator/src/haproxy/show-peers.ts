// The one reader of HAProxy's `show peers` (admin socket). Pure. Measured on 2.6 and 3.2 with a
// two-peer pair (captures in generator/test/status/fixtures/show-peers-*.txt):
// - a section line `0x..: [date] id=<section> disabled=0 flags=0x<hex> resync_timeout=..`; flags bit
//   0x01: the resync from the local (old) process is finished or not needed; 0x02: the resync from
//   a remote peer is finished, or given up after the resync timeout;
// - per peer `  0x..: id=<name>(local|remote,active|inactive) addr=<host:port> [..] last_status=<S>
//   last_hdshk=<age|<NEVER>>`, then, while the peer has a session, an `appctx:..` line with
//   `state=EST` once established.
// "Connected" is that `state=EST`, not active/inactive nor last_status: 2.6 keeps last_status=ESTA
// after the peer is gone, and 3.2 may call a live peer inactive when the session is the other side's.

export const RESYNC_LOCAL_DONE = 0x01;
const RESYNC_REMOTE_DONE = 0x02;

export interface ShownPeer {
  readonly name: string;
  /** This replica itself. */
  readonly local: boolean;
  readonly address: string;
  /** A peers session with it is established now. */
  readonly connected: boolean;
  /** HAProxy's last_status: ESTA, CONN, NONE, ... */
  readonly lastStatus: string;
  /** Seconds since the last handshake with it (connected or attempted); absent: never. */
  readonly lastHandshakeSeconds?: number;
}

export interface ShownPeersSection {
  readonly name: string;
  readonly flags: number;
  /** The resync from the old local process and from the remote peers finished (or was given up). */
  readonly resynced: boolean;
  readonly peers: readonly ShownPeer[];
}

/** HAProxy's human_time: 4s, 1m5s, 2h3m, 1d2h, 250ms; undefined for <NEVER> and anything else. */
export function parseHaproxyAge(text: string): number | undefined {
  if (!/^(\d+(d|h|m|s|ms))+$/.test(text)) return undefined;
  const unit: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
  let seconds = 0;
  for (const m of text.matchAll(/(\d+)(ms|d|h|m|s)/g)) seconds += Number(m[1]) * (unit[m[2] ?? 's'] ?? 0);
  return Math.floor(seconds);
}

const SECTION = /^\S+: \[[^\]]*\] id=(\S+) .*?\bflags=0x([0-9a-fA-F]+)/;
const PEER = /^\s+\S+: id=([^\s(]+)\((local|remote),(?:active|inactive)\) addr=(\S+)(.*)$/;

export function parseShowPeers(text: string): ShownPeersSection[] {
  const sections: { name: string; flags: number; resynced: boolean; peers: { -readonly [K in keyof ShownPeer]: ShownPeer[K] }[] }[] = [];
  for (const line of text.split('\n')) {
    const s = SECTION.exec(line);
    if (s !== null) {
      const flags = parseInt(s[2] ?? '0', 16);
      const done = RESYNC_LOCAL_DONE | RESYNC_REMOTE_DONE;
      sections.push({ name: s[1] ?? '', flags, resynced: (flags & done) === done, peers: [] });
      continue;
    }
    const section = sections[sections.length - 1];
    if (section === undefined) continue;
    const p = PEER.exec(line);
    if (p !== null) {
      const rest = p[4] ?? '';
      const peer: { -readonly [K in keyof ShownPeer]: ShownPeer[K] } = {
        name: p[1] ?? '',
        local: p[2] === 'local',
        address: p[3] ?? '',
        connected: false,
        lastStatus: /\blast_status=(\S+)/.exec(rest)?.[1] ?? 'unknown',
      };
      const age = parseHaproxyAge(/\blast_hdshk=(\S+)/.exec(rest)?.[1] ?? '');
      if (age !== undefined) peer.lastHandshakeSeconds = age;
      section.peers.push(peer);
      continue;
    }
    const current = section.peers[section.peers.length - 1];
    if (current !== undefined && /\bappctx:\S+ .*\bstate=EST\b/.test(line)) current.connected = true;
  }
  return sections;
}

/** One section of the answer, if it is there. */
export function showPeersSection(text: string, section: string): ShownPeersSection | undefined {
  return parseShowPeers(text).find((s) => s.name === section);
}
