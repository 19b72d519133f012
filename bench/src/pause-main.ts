// Pause/resume latency (#12): what a held connection pays. One run, side by side in rotating
// rounds: (a) a connection to a tenant that is not paused, connect to first query result; (b) K
// connections held by `pgroute tenant pause`, released by `pgroute tenant resume`: each one's first
// query result measured from the start of the resume command, and from its return (the switch is
// written then; what is left is the pipeline applying access.json, the agent's release, HAProxy's
// connect and PostgreSQL's backend start). Prints the ratios first; writes
// bench/results/2026-12-06-session5-pause.md. Ports 22700-22799 (the pause helper's port block 27).
//
//   bench/pause.sh [rounds] [held]

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino } from 'pino';
import { resumeTenant } from '../../generator/src/index.js';
import { BenchPostgres } from './postgres.js';
import { Procs, killRunning, mustRun, run, sleep } from './procs.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'pgroute.js');
const BASE = 22700;
const PORTS = { haproxy: BASE, stats: BASE + 2, agent: BASE + 10, agentHealth: BASE + 11, pg: BASE + 20 };
const ROUNDS = Number(process.argv[2] ?? 5);
const HELD = Number(process.argv[3] ?? 20);

const log = (m: string): void => console.error(`[pause-bench] ${m}`);

async function firstQuery(): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port: PORTS.haproxy, user: 'postgres', database: 'bench', connectionTimeoutMillis: 60_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return performance.now();
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORTS.agentHealth}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function cli(stateDir: string, ...args: string[]): Promise<void> {
  await mustRun(process.execPath, [CLI, ...args, '--state-dir', stateDir]);
}

const stats = (xs: readonly number[]): { min: number; p50: number; p90: number; max: number; mean: number } => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { min: s[0] ?? NaN, p50: at(0.5), p90: at(0.9), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / s.length };
};
const ms = (x: number): string => `${x.toFixed(1)} ms`;

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'pgroute-pause-bench-'));
  chmodSync(scratch, 0o755); // PostgreSQL runs as postgres under it
  const procs = new Procs(scratch);
  const pgServer = new BenchPostgres(join(scratch, 'pg'), PORTS.pg, log);
  const stateDir = join(scratch, 'state');
  try {
    mkdirSync(join(scratch, 'pg'), { recursive: true });
    await pgServer.start();
    const tenants = join(scratch, 'tenants.yaml');
    writeFileSync(tenants, JSON.stringify({ tenants: [{ id: 'bench', host: '127.0.0.1', port: PORTS.pg }] }));
    const up = procs.start('pgroute-up', process.execPath, [
      CLI, 'up', '--tenants', tenants, '--state-dir', stateDir, '--bind', '127.0.0.1', '--port', String(PORTS.haproxy),
      '--agent-port', String(PORTS.agent), '--agent-http-port', String(PORTS.agentHealth), '--stats-port', String(PORTS.stats),
      '--pause-timeout', '60s', '--pause-max-held', String(HELD * 2),
    ], { ...process.env, PGROUTE_DRAIN_DELAY: '0s' });
    await until('pgroute up', async () => readFileSync(up.logFile, 'utf8').includes('pgroute is running'), 60_000);
    await firstQuery(); // warm

    const direct: number[] = [];
    const fromStart: number[] = [];
    const fromReturn: number[] = [];
    const cliMs: number[] = [];
    const inProcess: number[] = [];
    const silent = pino({ level: 'silent' });
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 3 === 0 ? ['direct', 'held', 'held-api'] : r % 3 === 1 ? ['held-api', 'direct', 'held'] : ['held', 'held-api', 'direct'];
      for (const v of order) {
        if (v === 'direct') {
          // The same K connections at once, not paused: the baseline a held connection is compared to.
          const t0 = performance.now();
          const done = await Promise.all(Array.from({ length: HELD }, () => firstQuery()));
          for (const t of done) direct.push(t - t0);
          continue;
        }
        await cli(stateDir, 'tenant', 'pause', 'bench');
        await until('the pause to apply', async () => /"paused": true/.test(readFileSync(join(stateDir, 'routes.json'), 'utf8')));
        const held = Array.from({ length: HELD }, () => firstQuery());
        await until(`${HELD} held`, async () => (await metric('pgroute_agent_held_connections')) === HELD);
        const t0 = performance.now();
        if (v === 'held-api') {
          // The switch written in this process (what the command does, without starting Node):
          // from here on it is the running pgroute's work.
          await resumeTenant(stateDir, 'bench', silent);
          for (const t of await Promise.all(held)) inProcess.push(t - t0);
          continue;
        }
        await cli(stateDir, 'tenant', 'resume', 'bench');
        const t1 = performance.now();
        cliMs.push(t1 - t0);
        for (const t of await Promise.all(held)) {
          fromStart.push(t - t0);
          fromReturn.push(t - t1);
        }
      }
    }
    const d = stats(direct);
    const s = stats(fromStart);
    const e = stats(fromReturn);
    const c = stats(cliMs);
    const a = stats(inProcess);
    const load = readFileSync('/proc/loadavg', 'utf8').trim();
    const haproxyV = (await run('haproxy', ['-v'])).stdout.split('\n')[0] ?? '';
    const lines = [
      '# Pause/resume: latency a held connection pays (session 5, #12)',
      '',
      `bench/pause.sh ${ROUNDS} ${HELD}: ${ROUNDS} rounds, ${HELD} connections at once per variant and round, variants alternating; one PostgreSQL 15, pgroute up (HAProxy ${haproxyV.replace(/^HAProxy version /, '')}), loopback, 2 cores; load average at the end: ${load}.`,
      '',
      '## Ratios (median)',
      '',
      `- held, resumed in-process (the switch written as the command writes it) to first query result / not paused, connect to first query result: **${(a.p50 / d.p50).toFixed(2)}**`,
      `- held, from the resume command's return to first query result / not paused: **${(e.p50 / d.p50).toFixed(2)}**`,
      `- held, from the resume command's start / not paused: **${(s.p50 / d.p50).toFixed(2)}**`,
      '',
      '## Absolute (ms): min / median / p90 / max',
      '',
      '| variant | min | median | p90 | max |',
      '|---|---|---|---|---|',
      `| not paused: connect to first query result (${direct.length}) | ${ms(d.min)} | ${ms(d.p50)} | ${ms(d.p90)} | ${ms(d.max)} |`,
      `| held: switch written in-process to first query result (${inProcess.length}) | ${ms(a.min)} | ${ms(a.p50)} | ${ms(a.p90)} | ${ms(a.max)} |`,
      `| held: resume command start to first query result (${fromStart.length}) | ${ms(s.min)} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.max)} |`,
      `| held: resume command return to first query result (${fromReturn.length}) | ${ms(e.min)} | ${ms(e.p50)} | ${ms(e.p90)} | ${ms(e.max)} |`,
      `| the resume command itself (${cliMs.length}) | ${ms(c.min)} | ${ms(c.p50)} | ${ms(c.p90)} | ${ms(c.max)} |`,
      '',
      '## Reading it',
      '',
      "- After the command returns, a held connection waits for this replica's pipeline to see access.json change (fs.watch + 25 ms debounce + 50 ms quiet time), render routes.json and hand the table to the agent, which releases every held connection in one pass; then HAProxy connects and PostgreSQL forks a backend, as for any connection (the not-paused row).",
      "- The command's own time is mostly Node starting and the admin-socket round trips (read the replicated table, write it, `show peers`).",
      '- Wall-clock figures on a shared, loaded machine (see the load average): compare the rows of this run only. A negative "return" figure: the running pgroute released the connection before the command had finished its last admin-socket round trip.',
      '',
    ];
    const text = lines.join('\n');
    process.stdout.write(`${text}\n`);
    writeFileSync(join(ROOT, 'bench', 'results', '2026-12-06-session5-pause.md'), text);
    await procs.stop(up, 15_000);
  } finally {
    await pgServer.stop();
    killRunning();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killRunning();
  process.exit(1);
});
