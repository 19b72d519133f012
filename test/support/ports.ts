/**
 * Fixed, per-test-file TCP port blocks.
 *
 * Every test file that opens ports owns one block of 100 ports, chosen by a
 * unique `index`, so files can run in parallel (vitest `pool: 'forks'`) without
 * racing for ports. All blocks lie in 20000..32767, i.e. below the kernel's
 * ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range` is 32768..60999 on
 * Debian), so outgoing connections never steal one of our ports.
 *
 * Block `index` starts at `base = 20000 + 100 * index`; valid indexes are
 * 0..126 (block 126 ends at 32699).
 *
 * | offset  | name             | use                                                        |
 * |---------|------------------|------------------------------------------------------------|
 * | 0       | `haproxy`        | HAProxy public PostgreSQL frontend (the "one port")        |
 * | 1       | `haproxyAlt`     | second HAProxy frontend / second HAProxy instance          |
 * | 2       | `stats`          | HAProxy stats / Prometheus exporter HTTP listener          |
 * | 3       | `haproxyExtra`   | any further HAProxy listener (e.g. TLS-only or reload test)|
 * | 10      | `agent`          | SPOE agent (SPOP listener)                                 |
 * | 11      | `agentHealth`    | agent health / metrics HTTP listener                       |
 * | 12      | `agentAlt`       | second agent instance (SPOP)                               |
 * | 13      | `agentAltHealth` | second agent instance health / metrics                     |
 * | 20..29  | `pg[0..9]`       | PostgreSQL servers (tenant backends)                       |
 * | 50..99  | `spare[0..49]`   | anything else (fake servers, blackholes, mock backends)    |
 *
 * Offsets 4..9, 14..19 and 30..49 are reserved for future named ports.
 *
 * Known block indexes: 90 = test/support-selftest/harness.test.ts; 18 = agent/test/pg/psql-capture.test.ts.
 */
import net from 'node:net';
import { execFileSync } from 'node:child_process';

export const PORT_BASE = 20000;
export const PORT_BLOCK_SIZE = 100;
/** Highest valid block index: its last port must stay below 32768. */
export const MAX_PORT_BLOCK_INDEX = Math.floor((32768 - PORT_BASE) / PORT_BLOCK_SIZE) - 1; // 126

export type PgPorts = readonly [number, number, number, number, number, number, number, number, number, number];

export interface PortBlock {
  readonly index: number;
  /** First port of the block (20000 + 100 * index). */
  readonly base: number;
  readonly haproxy: number;
  readonly haproxyAlt: number;
  readonly stats: number;
  readonly haproxyExtra: number;
  readonly agent: number;
  readonly agentHealth: number;
  readonly agentAlt: number;
  readonly agentAltHealth: number;
  /** Ten PostgreSQL ports: pg[0] .. pg[9] (offsets 20..29). */
  readonly pg: PgPorts;
  /** Fifty spare ports: spare[0] .. spare[49] (offsets 50..99). */
  readonly spare: readonly number[];
  /** Port at an arbitrary offset 0..99 of this block. */
  at(offset: number): number;
  /** Every named port of the block (for "all free?" checks). */
  all(): number[];
}

/**
 * Replica i's own ports carved out of one block's spares (four each: haproxy, stats, agent,
 * agentHealth, the ones deploymentFlags reads), for tests running several replicas on one block.
 */
export function replicaPorts(block: PortBlock, i: number): PortBlock {
  const at = (k: number): number => block.spare[i * 4 + k] as number;
  return { ...block, haproxy: at(0), stats: at(1), agent: at(2), agentHealth: at(3) };
}

/** The port block of a test file. Throws for an index outside 0..126. */
export function portBlock(index: number): PortBlock {
  if (!Number.isInteger(index) || index < 0 || index > MAX_PORT_BLOCK_INDEX) {
    throw new RangeError(`port block index must be an integer 0..${MAX_PORT_BLOCK_INDEX}, got ${index}`);
  }
  const base = PORT_BASE + PORT_BLOCK_SIZE * index;
  const at = (offset: number): number => {
    if (!Number.isInteger(offset) || offset < 0 || offset >= PORT_BLOCK_SIZE) {
      throw new RangeError(`port offset must be an integer 0..${PORT_BLOCK_SIZE - 1}, got ${offset}`);
    }
    return base + offset;
  };
  const pg = Array.from({ length: 10 }, (_, i) => base + 20 + i) as unknown as PgPorts;
  const spare = Object.freeze(Array.from({ length: 50 }, (_, i) => base + 50 + i));
  const named = {
    haproxy: base + 0,
    haproxyAlt: base + 1,
    stats: base + 2,
    haproxyExtra: base + 3,
    agent: base + 10,
    agentHealth: base + 11,
    agentAlt: base + 12,
    agentAltHealth: base + 13,
  };
  return Object.freeze({
    index,
    base,
    ...named,
    pg: Object.freeze(pg) as PgPorts,
    spare,
    at,
    all: () => [...Object.values(named), ...pg],
  });
}

/** True if nothing listens on host:port (tries to bind it briefly). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(err);
    });
    srv.listen({ port, host, exclusive: true }, () => {
      srv.close(() => resolve(true));
    });
  });
}

/** Best-effort description of who listens on a port (via `ss`), for error messages. */
export function describePortHolder(port: number): string {
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    }).trim();
    return out === '' ? 'no listener shown by ss' : out.replace(/\s+/g, ' ');
  } catch {
    return 'ss unavailable';
  }
}

/** Throws a descriptive error if host:port is already taken. */
export async function assertPortFree(port: number, host = '127.0.0.1'): Promise<void> {
  if (!(await isPortFree(port, host))) {
    throw new Error(`port ${host}:${port} is already in use (${describePortHolder(port)})`);
  }
}

/** Waits until host:port can be bound again (after stopping a server). */
export async function waitForPortFree(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await isPortFree(port, host)) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for port ${host}:${port} to become free (${describePortHolder(port)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
