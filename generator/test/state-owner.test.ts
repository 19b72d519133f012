// The state dir's owner socket (state-owner.ts): one claim at a time, a dead owner's socket or lock
// taken over, a live one never.

import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimStateDir, stateDirOwner, type ClaimResult, type StateDirClaim } from '../src/state-owner.js';
import { staleSocket } from '../../test/support/stale-socket.js';

const dirs: string[] = [];
const claims: StateDirClaim[] = [];

afterEach(async () => {
  for (const c of claims.splice(0)) await c.release();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function socketPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgroute-owner-'));
  dirs.push(dir);
  return join(dir, 'pgroute-owner.sock');
}

function claimed(r: ClaimResult): StateDirClaim {
  if (!('claim' in r)) throw new Error(`not claimed: owned by ${r.owner}`);
  claims.push(r.claim);
  return r.claim;
}

describe('claimStateDir', () => {
  it('claims a free state dir; the next claim names the owner; once released, it is free again', async () => {
    const path = socketPath();
    const first = claimed(await claimStateDir(path));
    expect(await stateDirOwner(path)).toBe(`pid ${process.pid}`);
    expect(await claimStateDir(path)).toEqual({ owner: `pid ${process.pid}` });
    await first.release();
    claims.splice(claims.indexOf(first), 1);
    expect(existsSync(path)).toBe(false);
    expect(await stateDirOwner(path)).toBeUndefined();
    claimed(await claimStateDir(path));
  });

  it('of claims made at the same moment exactly one wins, and the others name it (each had replaced the winner\'s socket)', async () => {
    const path = socketPath();
    const results = await Promise.all(Array.from({ length: 8 }, () => claimStateDir(path)));
    const won = results.filter((r) => 'claim' in r);
    for (const r of won) claimed(r);
    expect(won).toHaveLength(1);
    expect(results.filter((r) => 'owner' in r)).toEqual(Array.from({ length: 7 }, () => ({ owner: `pid ${process.pid}` })));
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('takes over the socket a killed owner left (nothing answers on it)', async () => {
    const path = staleSocket(socketPath());
    expect(existsSync(path)).toBe(true);
    expect(await stateDirOwner(path)).toBeUndefined();
    claimed(await claimStateDir(path));
    expect(await stateDirOwner(path)).toBe(`pid ${process.pid}`);
  });

  it('breaks a lock a claimer left when it died in the middle of a claim, but waits for a fresh one', async () => {
    const path = socketPath();
    mkdirSync(`${path}.lock`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    claimed(await claimStateDir(path));

    const other = socketPath();
    mkdirSync(`${other}.lock`);
    let settled = false;
    const waiting = claimStateDir(other).then((r) => {
      settled = true;
      return r;
    });
    // A claim in progress holds the lock for milliseconds: the waiting claim proceeds once it is gone.
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    rmSync(`${other}.lock`, { recursive: true });
    claimed(await waiting);
  });
});
