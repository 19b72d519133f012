// A burst of new connections right after start-up, far beyond what the agent has connections for:
// every startup gets the agent's own verdict, none a 57P03 for want of one. HAProxy 3.1+ opens an
// agent connection for each new decision of a burst until its first connections are up; with the
// agent's accept queue at Node's default (511), a cold burst of 1,600 found it full and 409 startups
// were refused 57P03 "the pgroute routing agent is not available" on HAProxy 3.2 while the agent was
// idle (HAProxy logged "check backlog size on the server"). 2.6 and 3.0 retry such a connect.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { portBlock } from '../support/ports.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, type ProcessHandle } from '../support/process.js';
import { errorResponseOf, exchange } from '../support/wire.js';

const ports = portBlock(63);
/** Well under the default --maxconn (4096), well over the agent's old accept queue (511). */
const BURST = 1_600;
let up: ProcessHandle;
let tmp: string;

beforeAll(async () => {
  // No tenant server is needed: every startup of the burst names a tenant that is not served.
  const file = writeTenantsFile([{ id: 'acme', port: ports.pg[0] as number }]);
  tmp = file.dir;
  up = await startUp(ports, file.file, `${tmp}/state`);
}, 60_000);

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a cold burst of new connections', () => {
  it(`${BURST} startups at once right after start-up: each gets the agent's verdict (3D000), none 57P03`, async () => {
    const startup = encodeStartupMessage({ user: 'app', database: 'nope' });
    const answers = await Promise.all(
      Array.from({ length: BURST }, async () => {
        const r = await exchange(ports.haproxy, [startup], { timeoutMs: 30_000 });
        return r.received.length === 0 ? 'nothing' : (errorResponseOf(r.received).sqlstate ?? 'no SQLSTATE');
      }),
    );
    const counts: Record<string, number> = {};
    for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
    expect(counts).toEqual({ '3D000': BURST });
  }, 90_000);
});
