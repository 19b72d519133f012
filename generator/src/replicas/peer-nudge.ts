// Keeps HAProxy's peers sessions up while the replicated tables are idle. HAProxy (2.6.12, 3.0.11
// and 3.2.26, measured with three peers started together) closes an established peers session as
// dead when nothing arrived on it since its liveness flag was last cleared, and releasing the
// connection that lost a dial collision clears that flag too. With idle tables only heartbeats
// (every 3 s) set it again, so the sessions of replicas started together kept flapping for tens of
// seconds, and each flap delayed replication (an access switch) by up to ~5 s. Every ~250 ms this
// replica writes its own entry of the peers section's small table `alive`
// (haproxy/partials/peers.hbs); HAProxy pushes the update to every peer, which is a message on
// every session. Measured: no flap after the first collision (docs/replicas.md).

import type { Logger } from 'pino';
import { haproxyCli } from '../haproxy/master.js';
import { ALIVE_TABLE_NAME, PEERS_SECTION } from './peers.js';
import { startRounds, type Rounds } from './rounds.js';

/** The peers section's own table, as the runtime API names it. */
export const ALIVE_TABLE = `${PEERS_SECTION}/${ALIVE_TABLE_NAME}`;

export interface PeerNudgeOptions {
  readonly adminSocket: string;
  /** This replica's peer name: the key it writes. */
  readonly self: string;
  /** Asked before every nudge: alone (or while the replica list is empty), nothing is sent. */
  readonly hasRemotePeers: () => boolean;
  readonly log: Logger;
  readonly intervalMs?: number;
}

export type PeerNudge = Rounds;

/** HAProxy answered the write with an error (as opposed to not answering). */
class RefusedWrite extends Error {}

export function startPeerNudge(opts: PeerNudgeOptions): PeerNudge {
  let sent = 0;
  return startRounds({
    intervalMs: opts.intervalMs ?? 250,
    async round() {
      if (!opts.hasRemotePeers()) return;
      sent = (sent + 1) % 0x7fffffff;
      const answer = await haproxyCli(opts.adminSocket, `set table ${ALIVE_TABLE} key ${opts.self} data.gpt0 ${sent}`);
      if (answer.trim() !== '') throw new RefusedWrite(answer.trim().slice(0, 200));
    },
    // An unreachable socket is the access switch exchange's to report; HAProxy refusing the
    // write (a configuration without the table) leaves the keepalive doing nothing: said at warn.
    failed(err, first) {
      if (!first) return;
      if (err instanceof RefusedWrite) opts.log.warn({ err: err.message, table: ALIVE_TABLE }, 'HAProxy refused the peers keepalive entry; idle peers sessions may be closed and redialled');
      else opts.log.debug({ err: err.message, table: ALIVE_TABLE }, 'cannot write the peers keepalive entry; retrying');
    },
  });
}
