// Whether HAProxy's peers section has finished its resync: a restarted replica learns the
// replicated stick tables (access switch, cancel records) from the old worker and from its peers
// before it reports ready. The section's resync flags are read by show-peers.ts.

import { haproxyCli } from './master.js';
import { showPeersSection } from './show-peers.js';

/** true: resynced; false: still learning; undefined: the section is not in the answer. */
export function peersResynced(showPeers: string, section: string): boolean | undefined {
  return showPeersSection(showPeers, section)?.resynced;
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
