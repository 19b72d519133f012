// A load balancer in front of several pgroute replicas, for end-to-end tests of replicas: a
// round-robin HAProxy (a separate process from the replicas' own) that sends new connections only to
// replicas whose readiness endpoint answers 200 (`option httpchk GET /readyz`), and logs one line
// per connection naming the replica it went to. And a connect loop through it that records, for every
// new connection, the replica that served it or the error it met.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { haproxyBinary, haproxyCli } from '../../generator/src/index.js';
import { spawnLogged, waitFor, type ProcessHandle } from './process.js';

export interface Replica {
  readonly name: string;
  /** The replica's public PostgreSQL port. */
  readonly port: number;
  /** The replica's agent HTTP port (/readyz). */
  readonly readyPort: number;
}

export interface Balancer {
  readonly port: number;
  readonly process: ProcessHandle;
  /** Each replica's state as the balancer's health checks see it: 'UP', 'DOWN', ... */
  states(): Promise<Record<string, string>>;
  /** Resolves once the balancer sees `name` in `state` (UP: it sends new connections there). */
  waitState(name: string, state: 'UP' | 'DOWN', timeoutMs?: number): Promise<void>;
  /**
   * The replica the connection from client port `port` opened at `since` (ms since the epoch, the
   * client's clock, which is HAProxy's) was sent to, with HAProxy's termination state: the first
   * logged connection from that port accepted then or later. A client port is reused: the log of a
   * whole test file holds other connections from the same port, earlier and later.
   */
  connection(port: number, since: number): { replica: string; termination: string } | undefined;
  stop(): Promise<void>;
}

/** Starts the balancer; resolves once it listens and every replica passed its readiness check. */
export async function startBalancer(port: number, replicas: readonly Replica[], opts: { checkIntervalMs?: number } = {}): Promise<Balancer> {
  const dir = mkdtempSync(join(tmpdir(), 'pgroute-lb-'));
  const socket = join(dir, 'lb.sock');
  const inter = opts.checkIntervalMs ?? 100;
  const cfg = [
    'global',
    '    log stdout format raw local0 info',
    `    stats socket ${socket} mode 600 level admin`,
    'defaults',
    '    mode tcp',
    '    log global',
    '    timeout connect 2s',
    '    timeout client 1m',
    '    timeout server 1m',
    '    timeout check 1s',
    'frontend lb',
    `    bind 127.0.0.1:${port}`,
    // Client port, the replica chosen, HAProxy's termination state and the accept date in ms since
    // the epoch: how a failure is attributed.
    '    log-format "lb-conn %cp %s %ts %Ts%ms"',
    '    default_backend replicas',
    'backend replicas',
    '    balance roundrobin',
    '    option httpchk GET /readyz',
    '    http-check expect status 200',
    // One failed check takes a replica out; two passed ones put it back.
    `    default-server check inter ${inter}ms fall 1 rise 2`,
    ...replicas.map((r) => `    server ${r.name} 127.0.0.1:${r.port} port ${r.readyPort}`),
    '',
  ].join('\n');
  const file = join(dir, 'lb.cfg');
  writeFileSync(file, cfg);
  const proc = spawnLogged(haproxyBinary(), ['-db', '-f', file], { name: 'balancer', maxLines: 200_000 });

  async function states(): Promise<Record<string, string>> {
    const csv = await haproxyCli(socket, 'show stat');
    const out: Record<string, string> = {};
    for (const line of csv.split('\n')) {
      const f = line.split(',');
      if (f[0] === 'replicas' && f[1] !== 'BACKEND' && f[1] !== undefined) out[f[1]] = f[17] ?? '';
    }
    return out;
  }
  async function waitState(name: string, state: 'UP' | 'DOWN', timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await states())[name]?.startsWith(state) === true, { timeoutMs, what: `the balancer to see ${name} ${state}`, process: proc });
  }

  const b: Balancer = {
    port,
    process: proc,
    states,
    waitState,
    connection(clientPort, since) {
      const re = new RegExp(`lb-conn ${clientPort} (\\S+) (\\S+) (\\d+)$`);
      let found: { replica: string; termination: string; accepted: number } | undefined;
      for (const line of proc.outputLines()) {
        const m = re.exec(line);
        const accepted = Number(m?.[3]);
        // 10 ms of slack: HAProxy's clock is read once per poll loop and may lag; a port is not reused that fast.
        if (m && accepted >= since - 10 && (found === undefined || accepted < found.accepted)) found = { replica: m[1] ?? '', termination: m[2] ?? '', accepted };
      }
      return found === undefined ? undefined : { replica: found.replica, termination: found.termination };
    },
    async stop() {
      await proc.stop('SIGTERM', 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const r of replicas) await waitState(r.name, 'UP');
  return b;
}

export interface Attempt {
  readonly at: number;
  /** The replica that served it (see `identify`), or undefined when it failed. */
  readonly served?: string;
  readonly error?: string;
  /** The client's local port (what the balancer's log names). */
  readonly localPort?: number;
}

export interface ConnectLoop {
  readonly attempts: Attempt[];
  /** Resolves once `n` more connections succeeded than when called. */
  moreSuccesses(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<Attempt[]>;
}

/**
 * `workers` loops, each opening a new connection through `port` again and again, asking `sql`
 * (its first column names the replica that served it) and closing it.
 */
export function connectLoop(opts: { port: number; tenant: string; sql: string; workers?: number; user?: string }): ConnectLoop {
  const attempts: Attempt[] = [];
  let stopped = false;
  const one = async (): Promise<void> => {
    const client = new pg.Client({ host: '127.0.0.1', port: opts.port, user: opts.user ?? 'app', database: 'postgres', options: `-c pgroute.tenant=${opts.tenant}`, connectionTimeoutMillis: 10_000, query_timeout: 10_000 });
    client.on('error', () => {});
    const at = Date.now();
    // Read when the TCP connection opens: once closed, a socket no longer knows its local port.
    let port: number | undefined;
    const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    stream.once('connect', () => (port = stream.localPort));
    try {
      await client.connect();
      const r = await client.query<Record<string, string>>(opts.sql);
      attempts.push({ at, served: String(Object.values(r.rows[0] ?? {})[0]), ...(port === undefined ? {} : { localPort: port }) });
    } catch (err) {
      attempts.push({ at, error: (err as Error).message, ...(port === undefined ? {} : { localPort: port }) });
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const loops = Array.from({ length: opts.workers ?? 4 }, async () => {
    while (!stopped) await one();
  });
  return {
    attempts,
    async moreSuccesses(n, timeoutMs = 30_000) {
      const count = (): number => attempts.filter((a) => a.served !== undefined).length;
      const want = count() + n;
      await waitFor(() => count() >= want, { timeoutMs, what: `${n} more successful connections through the balancer` });
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return attempts;
    },
  };
}
