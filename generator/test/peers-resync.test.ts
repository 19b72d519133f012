import { describe, expect, it } from 'vitest';
import { peersResynced } from '../src/haproxy/peers-resync.js';

// `show peers` of HAProxy 2.6.12 (captured): alone at start, after the resync timeout, and a
// second process that learnt from the first.
const starting = `0x5600fe082ba0: [06/Dec/2026:08:58:16] id=pgroute disabled=0 flags=0x11 resync_timeout=4s task_calls=1
  0x5600fe085cb0: id=p2(remote,active) addr=127.0.0.22:31777 last_status=CONN last_hdshk=0s
        reconnect=4s heartbeat=<NEVER> confirm=0 tx_hbt=0 rx_hbt=0 no_hbt=0 new_conn=1 proto_err=0 coll=0
`;
const timedOut = starting.replace('flags=0x11 resync_timeout=4s', 'flags=0x33 resync_timeout=<PAST>');
const learnt = `0x55ae0ac59d50: [06/Dec/2026:08:58:24] id=pgroute disabled=0 flags=0x2293 resync_timeout=4s task_calls=4
  0x55ae0ac5ce60: id=p1(remote,active) addr=127.0.0.21:31777 last_status=ESTA last_hdshk=0s
        flags=0x20000000 appctx:0x7f0e180422d0 st0=7 st1=0 task_calls=2 state=EST
`;

describe('peersResynced', () => {
  it('reads the section flags: local and remote resync both done', () => {
    expect(peersResynced(starting, 'pgroute')).toBe(false);
    expect(peersResynced(timedOut, 'pgroute')).toBe(true);
    expect(peersResynced(learnt, 'pgroute')).toBe(true);
    // A peer's own flags line is not the section's.
    expect(peersResynced(learnt, 'other')).toBeUndefined();
    expect(peersResynced('', 'pgroute')).toBeUndefined();
  });
});
