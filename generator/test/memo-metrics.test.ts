// The verdict memo's series (docs/memo.md): read from HAProxy's tables at scrape time, one read per
// scrape, and never older than the scrape (a connection counted before a scrape starts is in it).
// Against a fake admin socket.

import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMemoCounts, registerMemoMetrics } from '../src/memo/memo-metrics.js';
import { cliSocket } from './support.js';

// Answers as a real HAProxy 2.6.12 gives them.
const HEADERS = (used: number): string => `# table: pgroute-memo-hits, type: integer, size:1, used:1\n# table: pgroute-memo, type: binary, size:102400, used:${used}\n\n`;
const HITS = (n: number): string => `# table: pgroute-memo-hits, type: integer, size:1, used:1\n0x55e2b6f45fc8: key=0 use=0 exp=0 conn_cnt=${n}\n\n`;

let dir: string;
let server: Server;
const calls: string[] = [];
let hits = 0;
let entries = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgroute-memo-metrics-'));
  server = await cliSocket(join(dir, 'admin.sock'), (line, sock) => {
    const command = line.replace(/; quit$/, '');
    calls.push(command);
    sock.end(command === 'show table' ? HEADERS(entries) : HITS(hits));
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const value = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describe('memo metrics', () => {
  it('parses the hits table and the memo header', () => {
    expect(parseMemoCounts(HITS(7), HEADERS(3))).toEqual({ hits: 7, entries: 3, size: 102400 });
    expect(parseMemoCounts('', HEADERS(3))).toBeUndefined();
  });

  it('reads HAProxy once per scrape, and every scrape shows what was counted before it started', async () => {
    const registry = new Registry();
    registerMemoMetrics(registry, { adminSocket: join(dir, 'admin.sock'), misses: () => 2, invalidations: () => 1 });
    for (let i = 1; i <= 5; i++) {
      calls.length = 0;
      hits = 10 * i;
      entries = i;
      // Scrapes back to back, each right after the counts moved.
      const text = await registry.metrics();
      expect(value(text, 'pgroute_memo_hits_total')).toBe(10 * i);
      expect(value(text, 'pgroute_memo_entries')).toBe(i);
      expect(value(text, 'pgroute_memo_misses_total')).toBe(2);
      expect(value(text, 'pgroute_memo_invalidations_total')).toBe(1);
      expect(calls.sort()).toEqual(['show table', 'show table pgroute-memo-hits']);
    }
  });

  it('two scrapes at once (two Prometheus servers) both show the count once', async () => {
    const registry = new Registry();
    registerMemoMetrics(registry, { adminSocket: join(dir, 'admin.sock'), misses: () => 0, invalidations: () => 0 });
    hits = 7;
    const [a, b] = await Promise.all([registry.metrics(), registry.metrics()]);
    expect(value(a ?? '', 'pgroute_memo_hits_total')).toBe(7);
    expect(value(b ?? '', 'pgroute_memo_hits_total')).toBe(7);
  });
});
