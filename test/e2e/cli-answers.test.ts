// What the CLI answers, run as operators run it: the agent of a default `up` is reachable by
// HAProxy only (a 0600 unix socket, no TCP port answering SPOP), and every failure is one line with
// the exit code the README's table gives.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../agent/src/spop/testing/index.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { CLI, deploymentFlags, REPO_ROOT, runCli, runCliOnce, startUp, writeTenantsFile, type CliRun } from '../support/pgroute.js';
import { stopAll, waitFor, waitForPort } from '../support/process.js';
import { psql } from '../support/psql.js';
import { staleSocket } from '../support/stale-socket.js';

const ports = portBlock(65);
const dirs: string[] = [];
let server: PgServer;

beforeAll(async () => {
  server = await startPostgres({ name: 'answers', port: ports.pg[0] as number });
}, 120_000);

afterAll(async () => {
  await stopAll();
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tenantsFile(tenants: Parameters<typeof writeTenantsFile>[0], extra: Record<string, unknown> = {}): { dir: string; file: string } {
  const w = writeTenantsFile(tenants, extra);
  dirs.push(w.dir);
  return w;
}

/** The process and all its descendants (HAProxy's master and workers under `pgroute up`). */
function processTree(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return [pid, ...children.flatMap(processTree)];
}

/** TCP ports these processes listen on, as `ss` reports them. */
function listeningPorts(pids: readonly number[]): number[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    const owners = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    if (!owners.some((p) => pids.includes(p))) continue;
    const local = line.trim().split(/\s+/)[3] ?? '';
    ports.add(Number(local.slice(local.lastIndexOf(':') + 1)));
  }
  return [...ports].sort();
}

/** Speaks SPOP as HAProxy does (HAPROXY-HELLO); true when an AGENT-HELLO comes back. */
function answersSpop(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), 3_000);
    socket.on('connect', () => socket.write(encodeFrame({ type: 'haproxy-hello', supportedVersions: ['2.0'], maxFrameSize: 16380, capabilities: ['pipelining'], healthcheck: false, engineId: 'probe' })));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length < 4 || data.length < 4 + data.readUInt32BE(0)) return;
      clearTimeout(timer);
      try {
        done(decodeFrame(data.subarray(4, 4 + data.readUInt32BE(0))).type === 'agent-hello');
      } catch {
        done(false);
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      done(false);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      done(false);
    });
  });
}

describe('the agent of a default `pgroute up`', () => {
  it('is reached over a 0600 unix socket in the state dir: no TCP port of up answers SPOP, and routing works; generate, reload and a second up on its state dir are refused', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const up = await startUp(ports, file, `${dir}/state`);
    const socket = `${dir}/state/agent.sock`;
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${dir}/state/haproxy.cfg`, 'utf8')).toContain(`server agent1 unix@${socket} check`);

    const listening = listeningPorts(processTree(up.pid as number));
    // The public port, HAProxy's stats and the agent's /healthz: nothing else, and none speaks SPOP.
    expect(listening).toEqual([ports.haproxy, ports.stats, ports.agentHealth].sort());
    for (const port of listening) expect(await answersSpop(port), `port ${port} answers SPOP`).toBe(false);

    const r = await psql({ port: ports.haproxy, user: 'app', db: 'answers', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('answers');

    // `reload` with reload's own defaults on up's state dir rewired up's HAProxy to a TCP agent that
    // no one serves (every connection then refused): refused while up runs, nothing changed.
    const before = readFileSync(`${dir}/state/haproxy.cfg`, 'utf8');
    for (const command of ['reload', 'generate']) {
      // --tls auto too: nothing is written before the refusal (up's certificate neither).
      const refused = await runCliOnce([command, '--tenants', file, '--state-dir', `${dir}/state`, '--tls', 'auto'], 15_000);
      expect(refused.code, command).toBe(2);
      expect(oneLine(refused)).toBe(
        `pgroute: --state-dir (PGROUTE_STATE_DIR): ${dir}/state is run by pgroute up/watch (pid ${up.pid}), which applies its own tenants: edit its tenants file (preview with pgroute plan); generate and reload are for HAProxy and pgroute agent run apart`,
      );
    }
    // A second up on the same state dir (its own ports) would overwrite the first's configuration
    // and sockets: refused before it writes or starts anything.
    const second = await runCliOnce(['up', '--tenants', file, '--state-dir', `${dir}/state`, '--bind', '127.0.0.1', '--port', String(ports.spare[0]), '--stats-port', String(ports.spare[1]), '--agent-http-port', String(ports.spare[2]), '--tls', 'auto'], 15_000);
    expect(second.code).toBe(2);
    expect(oneLine(second)).toBe(
      `pgroute: --state-dir (PGROUTE_STATE_DIR): ${dir}/state is run by another pgroute up/watch (pid ${up.pid}); two on one state dir overwrite each other's configuration and sockets: stop that one first, or give this one its own --state-dir`,
    );
    expect(readFileSync(`${dir}/state/haproxy.cfg`, 'utf8')).toBe(before);
    expect(existsSync(`${dir}/state/tls`)).toBe(false);
    expect((await psql({ port: ports.haproxy, user: 'app', db: 'answers', command: 'SHOW cluster_name' })).stdout.trim()).toBe('answers');
    expect((await up.stop('SIGINT', 15_000)).code).toBe(0);
    // Stopped, it no longer holds the state dir: another up may run there.
    expect(existsSync(`${dir}/state/pgroute-owner.sock`)).toBe(false);
    expect((await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)], 30_000)).code).toBe(0);
  });

  it('--agent-transport tcp keeps the TCP form (on --agent-host), and the probe does see SPOP there', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const up = await startUp(ports, file, `${dir}/state`, ['--agent-transport', 'tcp']);
    expect(existsSync(`${dir}/state/agent.sock`)).toBe(false);
    expect(listeningPorts(processTree(up.pid as number))).toContain(ports.agent);
    expect(await answersSpop(ports.agent)).toBe(true);
    const r = await psql({ port: ports.haproxy, user: 'app', db: 'answers', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('answers');
    expect((await up.stop('SIGINT', 15_000)).code).toBe(0);
  });

  it('under SNI routing, a client that sent no server name is told the tenant is chosen by it', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }], { routing: { keys: ['options'], sni: '^(?<tenant>[a-z0-9-]+)\\.db\\.example\\.com$' } });
    const up = await startUp(ports, file, `${dir}/state`);
    const refused = await psql({ port: ports.haproxy, user: 'app', db: 'answers', sslmode: 'disable', command: 'SELECT 1' });
    expect(refused.stderr).toContain('the tenant is chosen by the TLS server name (SNI) and this client sent none');
    const routed = await psql({ port: ports.haproxy, user: 'app', db: 'answers', sslmode: 'disable', options: '-c pgroute.tenant=answers', command: 'SHOW cluster_name' });
    expect(routed.stdout.trim(), routed.stderr).toBe('answers');
    const stopped = await up.stop('SIGINT', 15_000);
    expect(stopped.code, up.output()).toBe(0);
  });
});

/** Whether something accepts a TCP connection on 127.0.0.1:port. */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** One line on stderr, starting "pgroute: ", and nothing that looks like a stack or a JSON log. */
function oneLine(r: CliRun): string {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^pgroute: /);
  return lines[0] as string;
}

describe('exit codes and one-line errors (README, "Exit codes")', () => {
  it('2: a usage error is one line pointing to --help, not the whole help', async () => {
    const r = await runCliOnce(['generate', '--tenants', '/x.yaml', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe("pgroute: unknown option '--no-such-flag' (see pgroute generate --help)");
    const choice = await runCliOnce(['generate', '--tenants', '/x.yaml', '--log', 'loud']);
    expect(choice.code).toBe(2);
    expect(oneLine(choice)).toContain("'loud' is invalid. Allowed choices are errors, all, off.");
  });

  it('2: flags that no source reads, flags that conflict, and a mistyped flag are one line each, and nothing is written', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const state = `${dir}/state`;
    const cases: [readonly string[], Record<string, string>, string][] = [
      // Commander's suggestion was a second line.
      [['plan', '--prot', '1'], {}, "pgroute: unknown option '--prot' (Did you mean --port?) (see pgroute plan --help)"],
      // A value of a source not named was accepted until that source was turned on.
      [['plan', '--tenants', file, '--state-dir', state, '--kube-allowed-ports', 'banana'], {}, 'pgroute: --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS): "banana" is not a port (1 to 65535) or a range of ports (low-high, such as 5432-5439)'],
      [['plan', '--tenants', file, '--state-dir', state], { PGROUTE_DOCKER_CONSTRAINTS: 'junk' }, 'pgroute: --docker-constraint (PGROUTE_DOCKER_CONSTRAINTS) "junk": expected compose-project=NAME, network=NAME or label=KEY=VALUE'],
      [['generate', '--tenants', file, '--state-dir', state, '--tls-watch-interval', 'banana'], {}, 'pgroute: --tls-watch-interval (PGROUTE_TLS_WATCH_INTERVAL) must be a duration of at least 100ms like 500ms, 5s or 1m, got "banana"'],
      // --tenants was ignored without the file source.
      [['watch', '--source', 'docker', '--tenants', file, '--state-dir', state], {}, 'pgroute: --tenants is read by --source file only, and --source (PGROUTE_SOURCE) is docker: add file to --source, or drop --tenants'],
      // The socket won over the transport without a word (flag or variable).
      [['generate', '--tenants', file, '--state-dir', state, '--agent-transport', 'tcp', '--agent-socket', `${dir}/a.sock`], {}, 'pgroute: --agent-socket (PGROUTE_AGENT_SOCKET) serves the agent on a unix socket, and --agent-transport (PGROUTE_AGENT_TRANSPORT) is tcp (--agent-host:--agent-port): give one of them'],
      [['generate', '--tenants', file, '--state-dir', state, '--agent-socket', `${dir}/a.sock`], { PGROUTE_AGENT_TRANSPORT: 'tcp' }, 'pgroute: --agent-socket (PGROUTE_AGENT_SOCKET) serves the agent on a unix socket, and --agent-transport (PGROUTE_AGENT_TRANSPORT) is tcp (--agent-host:--agent-port): give one of them'],
      // --port was ignored beside --socket (PGROUTE_AGENT_PORT is not refused: the deployment flags read it too).
      [['agent', '--routes', `${dir}/routes.json`, '--socket', `${dir}/a.sock`, '--port', '7000'], {}, 'pgroute: --port is the SPOP port, and --socket (PGROUTE_AGENT_SOCKET) serves SPOP on a unix socket instead: give one of them'],
      [['agent', '--routes', `${dir}/none.json`, '--socket', `${dir}/a.sock`], { PGROUTE_AGENT_PORT: '7000' }, `pgroute: --routes: cannot load route table ${dir}/none.json: ENOENT: no such file or directory, open '${dir}/none.json'; give the routes.json that \`pgroute generate\` wrote`],
      // --source file without --tenants was found after the state dir and its certificate were made.
      [['watch', '--state-dir', state, '--tls', 'auto'], {}, 'pgroute: --source file needs --tenants <file>'],
      [['generate', '--tenants', file, '--state-dir', state, '--tls', 'auto', '--tls-secret', 'no-slash'], {}, 'pgroute: --tls-secret (PGROUTE_TLS_SECRET) must be <namespace>/<name> of a Kubernetes Secret (lowercase letters, digits, \'-\' and \'.\'), got "no-slash"'],
    ];
    for (const [args, env, line] of cases) {
      const r = await runCliOnce(args, 30_000, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneLine(r)).toBe(line);
    }
    // A missing kubeconfig was Node's raw ENOENT (the source's log line about its limits comes first).
    const kube = await runCliOnce(['plan', '--source', 'kubernetes', '--state-dir', state], 30_000, { KUBECONFIG: `${dir}/no-kubeconfig` });
    expect(kube.code).toBe(2);
    expect(kube.stderr.trimEnd().split('\n').at(-1)).toBe(`pgroute: KUBECONFIG "${dir}/no-kubeconfig" cannot be loaded: no such file (ENOENT); point KUBECONFIG at a kubeconfig file, or run in a pod with a service account`);
    expect(existsSync(state)).toBe(false);
  });

  it('1: `tenant list` with no Docker engine answering says so, naming Docker and where it looked', async () => {
    const r = await runCliOnce(['tenant', 'list', '--state-dir', '/nonexistent'], 30_000, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe('pgroute: cannot reach the Docker engine at "unix:///nonexistent/docker.sock" (ENOENT): check that dockerd is running and its socket (DOCKER_HOST, default /var/run/docker.sock) is reachable from here');
  });

  it('2: a rendered flag or its variable with a line break is refused, naming both and the value', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const r = await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`), '--agent-transport', 'tcp', '--agent-host', '127.0.0.1\n  server evil 10.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe('pgroute: --agent-host (PGROUTE_AGENT_HOST) must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "127.0.0.1\\x0a  server evil 10.0.0.1:1"');
    expect(existsSync(`${dir}/state/haproxy.cfg`)).toBe(false);
  });

  it('2: PGROUTE_LOG_LEVEL that pino does not know is one line, not a stack trace', async () => {
    const r = await runEnv(['status', '--state-dir', '/nonexistent'], { PGROUTE_LOG_LEVEL: 'bogus' });
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe('pgroute: PGROUTE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "bogus"');
  });

  it('2: PGROUTE_HAPROXY set but empty is one line saying so (it was Node\'s own words about spawn()), and nothing is written', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const r = await runEnv(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)], { PGROUTE_HAPROXY: '' });
    expect(r.code).toBe(2);
    expect(oneLine(r)).toBe('pgroute: PGROUTE_HAPROXY is set but empty: set it to the path of haproxy, or unset it to run haproxy from PATH');
    expect(existsSync(`${dir}/state`)).toBe(false);
  });

  it('2: a state dir that cannot be made is refused at once (it used to spin at 100 % CPU)', async () => {
    const { file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const r = await runCliOnce(['generate', '--tenants', file, '--state-dir', '/proc/x'], 15_000);
    expect(r.code).toBe(2);
    expect(oneLine(r)).toContain('--state-dir (PGROUTE_STATE_DIR): cannot create the state dir /proc/x');
  });

  it('2: a state dir this user cannot write in is refused naming it (it was exit 1 with EACCES on the first file)', () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const readOnly = `${dir}/read-only`;
    execFileSync('install', ['-d', '-m', '555', readOnly]);
    for (const path of [dir, file]) execFileSync('chmod', ['a+rX', path]);
    // The CLI as another user (root could write there anyway).
    let code = 0;
    let stderr = '';
    try {
      execFileSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, 'generate', '--tenants', file, '--state-dir', readOnly], { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
      ({ status: code, stderr } = err as { status: number; stderr: string });
    }
    expect(code).toBe(2);
    expect(stderr.trimEnd()).toBe(`pgroute: --state-dir (PGROUTE_STATE_DIR): this user cannot write in the state dir ${readOnly} (EACCES); choose a directory this user can create and write, or run as its owner`);
    expect(readdirSync(readOnly)).toEqual([]);
  });

  it('2: `pgroute agent` refuses a routes file it cannot load, an empty --socket and a socket in no directory, naming the flag', async () => {
    const { dir } = tenantsFile([{ id: 'answers', port: server.port }]);
    writeFileSync(`${dir}/garbage.json`, '{garbage');
    const agent = (...args: string[]) => runCliOnce(['agent', '--http-port', String(ports.agentAltHealth), ...args], 15_000);
    const cases: [string[], string][] = [
      [['--routes', `${dir}/none.json`, '--port', String(ports.agentAlt)], `pgroute: --routes: cannot load route table ${dir}/none.json: ENOENT: no such file or directory, open '${dir}/none.json'; give the routes.json that \`pgroute generate\` wrote`],
      [['--routes', `${dir}/garbage.json`, '--port', String(ports.agentAlt)], `pgroute: --routes: cannot load route table ${dir}/garbage.json: Expected property name or '}' in JSON at position 1; give the routes.json that \`pgroute generate\` wrote`],
      // Empty, it was ignored: the agent served TCP instead of the socket asked for.
      [['--routes', `${dir}/garbage.json`, '--socket', ''], 'pgroute: --socket (PGROUTE_AGENT_SOCKET) must be a socket path'],
      [['--routes', `${dir}/garbage.json`, '--socket', `${dir}/nodir/agent.sock`], `pgroute: --socket (PGROUTE_AGENT_SOCKET): the directory of ${dir}/nodir/agent.sock does not exist`],
    ];
    for (const [args, line] of cases) {
      const r = await agent(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneLine(r)).toContain(line);
    }
  });

  it('`status` on a directory that is no state dir (2), or with a routes.json that is no JSON (1): one line saying so', async () => {
    const { dir } = tenantsFile([{ id: 'answers', port: server.port }]);
    const none = await runCliOnce(['status', '--state-dir', `${dir}/nosuch`], 15_000);
    expect(none.code).toBe(2);
    expect(oneLine(none)).toBe(`pgroute: --state-dir (PGROUTE_STATE_DIR): ${dir}/nosuch holds no routes.json or layout.json, so it is no state dir of a pgroute that ran; give the --state-dir the running pgroute was given`);
    writeFileSync(`${dir}/routes.json`, 'garbage\n');
    const corrupt = await runCliOnce(['status', '--state-dir', dir], 15_000);
    expect(corrupt.code).toBe(1);
    expect(oneLine(corrupt)).toMatch(new RegExp(`^pgroute: ${dir}/routes\\.json is not valid JSON \\(.*\\): is this a pgroute state dir\\?`));
  });

  it('1: `reload` with no HAProxy on the state dir says what to check (at once), and with a dead one, once its wait is over', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const absent = await runCliOnce(['reload', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)]);
    expect(absent.code).toBe(1);
    expect(oneLine(absent)).toBe(`pgroute: no HAProxy master socket at ${dir}/state/haproxy-master.sock: is HAProxy running? (the new files are in the state dir, for its next start)`);
    // A master killed outright leaves its socket behind: connections are refused, as for a moment
    // while a live master re-executes itself, so they are tried again for 5 s before this answer.
    staleSocket(`${dir}/state/haproxy-master.sock`);
    const dead = await runCliOnce(['reload', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)]);
    expect(dead.code).toBe(1);
    expect(oneLine(dead)).toMatch(
      new RegExp(`^pgroute: the HAProxy master on ${dir}/state/haproxy-master.sock kept refusing or dropping connections for 5000 ms \\(connect ECONNREFUSED\\): is HAProxy running\\? \\(the new files are in the state dir, for its next start\\)$`),
    );
  });

  it('2: `tenant disable` of a tenant pgroute does not serve is refused, and nothing is written', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    expect((await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)])).code).toBe(0);
    const r = await runCliOnce(['tenant', 'disable', 'nosuch', '--state-dir', `${dir}/state`]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(oneLine(r)).toBe(`pgroute: no tenant "nosuch" in ${dir}/state/routes.json (it serves answers); check the id with \`pgroute status --state-dir ${dir}/state\``);
    expect(existsSync(`${dir}/state/access.json`)).toBe(false);
    // A known tenant, but no HAProxy runs on the state dir: refused (the other replicas would never
    // learn the switch), nothing written.
    const down = await runCliOnce(['tenant', 'disable', 'answers', '--state-dir', `${dir}/state`]);
    expect(down.code).toBe(1);
    expect(oneLine(down)).toMatch(new RegExp(`^pgroute: HAProxy is not running on the state dir ${dir}/state \\(.*\\): nothing was written`));
    expect(existsSync(`${dir}/state/access.json`)).toBe(false);
  });

  it('1: a missing haproxy binary is said so, not "HAProxy rejected the rendered configuration"', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const r = await runEnv(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)], { PGROUTE_HAPROXY: '/nonexistent/haproxy' });
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe('pgroute: cannot run /nonexistent/haproxy to check the rendered configuration: not installed or not on PATH; install HAProxy 2.6 or later, or set PGROUTE_HAPROXY to its path');
  });

  it('2: a configuration `haproxy -c` refuses changes no file of the state dir, the maps included', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port, maxClientConnections: 5 }]);
    const state = `${dir}/state`;
    const flags = deploymentFlags(ports, state, ['--memo', 'on']);
    expect((await runCliOnce(['generate', '--tenants', file, ...flags])).code).toBe(0);
    const files = ['haproxy.cfg', 'spoe.conf', 'routes.json', 'layout.json', 'limits.map', 'memo.map'];
    const before = new Map(files.map((f) => [f, readFileSync(`${state}/${f}`, 'utf8')]));
    // An HAProxy that refuses every check (its own words on stderr, exit 1) and is the real one otherwise.
    const refusing = `${dir}/haproxy-refusing`;
    writeFileSync(refusing, '#!/bin/sh\nfor a in "$@"; do [ "$a" = -c ] && { echo "[ALERT]    (1) : config : refused by the test" >&2; exit 1; }; done\nexec haproxy "$@"\n', { mode: 0o755 });
    // A second tenant with its own limit: every file, both maps included, would change.
    const next = tenantsFile([{ id: 'answers', port: server.port, maxClientConnections: 5 }, { id: 'other', port: server.port, maxClientConnections: 7 }]);
    const r = await runEnv(['generate', '--tenants', next.file, ...flags], { PGROUTE_HAPROXY: refusing });
    expect(r.code, r.stderr).toBe(2);
    const [first, ...rest] = r.stderr.trimEnd().split('\n');
    expect(first).toBe(`pgroute: HAProxy rejected the rendered configuration (kept at ${state}/haproxy.cfg.candidate; the running files are untouched):`);
    expect(rest.join('\n')).toContain('refused by the test');
    for (const f of files) expect(readFileSync(`${state}/${f}`, 'utf8'), f).toBe(before.get(f));
    // The same change with an HAProxy that accepts it writes both maps.
    expect((await runCliOnce(['generate', '--tenants', next.file, ...flags])).code).toBe(0);
    for (const f of ['limits.map', 'memo.map']) expect(readFileSync(`${state}/${f}`, 'utf8'), f).not.toBe(before.get(f));
  });

  it('1: `up` that cannot start HAProxy says why in its last line: no binary, or its public port taken', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const quiet = { PGROUTE_LOG_LEVEL: 'silent' };
    const missing = await runCliOnce(['up', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)], 60_000, { ...quiet, PGROUTE_HAPROXY: '/nonexistent/haproxy' });
    expect(missing.code).toBe(1);
    expect(oneLine(missing)).toBe('pgroute: cannot run /nonexistent/haproxy: not installed or not on PATH; install HAProxy 2.6 or later, or set PGROUTE_HAPROXY to its path');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(ports.haproxy, '127.0.0.1', resolve));
    try {
      const busy = await runCliOnce(['up', '--tenants', file, ...deploymentFlags(ports, `${dir}/state2`)], 60_000, quiet);
      expect(busy.code).toBe(1);
      // HAProxy's own words follow on indented lines (README, "Exit codes").
      const [first, ...rest] = busy.stderr.trimEnd().split('\n');
      expect(first, busy.stderr).toMatch(/^pgroute: HAProxy \(.+\) exited with code 1:$/);
      expect(rest.join('\n'), busy.stderr).toContain(`cannot bind socket (Address already in use) for [127.0.0.1:${ports.haproxy}]`);
      for (const l of rest) expect(l).toMatch(/^  \S/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('143: a SIGTERM during `up`\'s start-up, once HAProxy listens, stops that HAProxy too (nothing is left on the port)', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    // Another replica that never answers keeps the start-up waiting (up to 10 s) for the replicated
    // tables after HAProxy listens: a window the signal lands in for sure.
    const peers = `r1=127.0.0.1:${ports.spare[0]},r2=127.0.0.1:${ports.spare[1]}`;
    const up = runCli('pgroute-up-early', ['up', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`, ['--name', 'r1', '--peer', peers])]);
    await waitForPort(ports.haproxy, '127.0.0.1', 20_000, { process: up, what: 'HAProxy listening' });
    expect(up.output()).not.toContain('pgroute is running');
    up.child.kill('SIGTERM');
    const exit = await up.exited;
    expect(exit.code, up.output(20)).toBe(143);
    expect(up.output()).toContain('signal during start-up: exiting now');
    // HAProxy (master and worker) is gone with it: the public port refuses.
    await waitFor(async () => ((await portAnswers(ports.haproxy)) ? undefined : true), { timeoutMs: 5_000, intervalMs: 50, what: 'the public port to be closed' });
  });

  it('143: a second SIGTERM while `up` drains exits at once and stops HAProxy too (it was left listening, with no agent behind it)', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const up = runCli('pgroute-up-twice', ['up', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`, ['--drain-delay', '60s'])]);
    await up.waitForOutput(/pgroute is running/, 30_000);
    up.child.kill('SIGTERM');
    await up.waitForOutput(/draining: \/readyz answers 503/, 10_000);
    // During the drain delay HAProxy still listens, as documented.
    expect(await portAnswers(ports.haproxy)).toBe(true);
    up.child.kill('SIGTERM');
    const exit = await up.exited;
    expect(exit.code, up.output(20)).toBe(143);
    expect(up.output()).toContain('second signal while stopping: exiting now');
    await waitFor(async () => ((await portAnswers(ports.haproxy)) ? undefined : true), { timeoutMs: 5_000, intervalMs: 50, what: 'the public port to be closed' });
  });

  it('3 with --strict when a tenant definition is refused; without it, a file whose every tenant is refused says so', async () => {
    const { dir, file } = tenantsFile([{ id: 'Bad Tenant', port: server.port }]);
    // --tls auto too: neither the state dir nor a certificate is written (both were, before the refusal).
    const strict = await runCliOnce(['generate', '--strict', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`), '--tls', 'auto']);
    expect(strict.code).toBe(3);
    expect(strict.stderr).toContain('tenant definition refused');
    expect(strict.stderr.trimEnd().split('\n').at(-1)).toBe(`pgroute: 1 tenant definition in ${file} refused (see the warnings above); nothing was written (--strict): fix the file`);
    expect(existsSync(`${dir}/state`)).toBe(false);

    const lax = await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)]);
    expect(lax.code).toBe(0);
    expect(lax.stderr).toContain('every tenant definition was refused: the configuration serves no tenant (--strict makes this an error)');
  });

  it("2: TLS flags of the two modes together are refused, where one of them was dropped without a word", async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const cases: [string[], string][] = [
      [['--tls', 'auto', '--tls-cert', `${dir}/cert.pem`], "pgroute: --tls auto (PGROUTE_TLS) makes pgroute's own certificate; it cannot go with --tls-cert, which serves yours: give one of them"],
      [['--tls-cert', `${dir}/cert.pem`, '--tls-san', 'db.example.com'], "pgroute: --tls-san (PGROUTE_TLS_SANS) names the auto mode's certificate: it needs --tls auto, and cannot go with --tls-cert (the names are those of your certificate)"],
      [['--tls-san', 'db.example.com'], "pgroute: --tls-san (PGROUTE_TLS_SANS) names the auto mode's certificate: it needs --tls auto"],
    ];
    for (const [flags, line] of cases) {
      const r = await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`), ...flags], 30_000);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(oneLine(r)).toBe(line);
      expect(existsSync(`${dir}/state/haproxy.cfg`)).toBe(false);
    }
  });

  it('0: --tls-san takes a comma-separated list, as PGROUTE_TLS_SANS does', async () => {
    const { dir, file } = tenantsFile([{ id: 'answers', port: server.port }]);
    const r = await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`), '--tls', 'auto', '--tls-san', 'a.example.com,b.example.com', '--tls-san', 'c.example.com']);
    expect(r.code, r.stderr).toBe(0);
    const show = await runCliOnce(['cert', 'show', '--json', '--state-dir', `${dir}/state`]);
    expect(show.code, show.stderr).toBe(0);
    const text = show.stdout;
    for (const name of ['a.example.com', 'b.example.com', 'c.example.com']) expect(text).toContain(name);
  });
});

/** `pgroute <args>` with extra environment variables. */
function runEnv(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return runCliOnce(args);
  } finally {
    process.env = saved;
  }
}
