// Whether HAProxy's peers section has finished its resync: a restarted replica learns the
// replicated stick tables (access switch, cancel records) from the old worker and from its peers
// before it reports ready. `show peers` on the admin socket prints the section's flags; measured on
// 2.6: bit 0x01 is set once the resync from the local (old) process is finished or not needed, bit
// 0x02 once the resync from a remote peer is finished, or given up after the resync timeout (5 s)
// when no peer answers.

import { haproxyCli } from './master.js';

const RESYNC_LOCAL_DONE = 0x01;
const RESYNC_REMOTE_DONE = 0x02;

/** true: resynced; false: still learning; undefined: the section is not in the answer. */
export function peersResynced(showPeers: string, section: string): boolean | undefined {
  for (const line of showPeers.split('\n')) {
    const m = /^\S+: \[[^\]]*\] id=(\S+) .*?\bflags=0x([0-9a-fA-F]+)/.exec(line);
    if (m === null || m[1] !== section) continue;
    const flags = parseInt(m[2] ?? '0', 16);
    const done = RESYNC_LOCAL_DONE | RESYNC_REMOTE_DONE;
    return (flags & done) === done;
  }
  return undefined;
}

/** Resolves once the section has resynced; rejects after timeoutMs. */
export async function waitForPeersResync(adminSocket: string, section: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const answer = await haproxyCli(adminSocket, 'show peers').catch((err: Error) => err.message);
    const done = peersResynced(answer, section);
    if (done === true) return;
    last = done === undefined ? `no peers section ${section} in "show peers": ${answer.slice(0, 200)}` : 'still resyncing';
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the peers section ${section} did not finish its resync within ${timeoutMs} ms (${last})`);
}
