// `pgroute tenant ...`: PostgreSQL tenants as Docker containers that pgroute creates and labels
// (create, list, show, delete), and the operator's access switch for a tenant of any source
// (enable, disable [--kill-sessions]). Flags and printing only: the work is in
// generator/src/tenants-docker/ (lifecycle.ts, access-switch.ts), which also explains the networking
// and how the password reaches the container. The password is never logged or printed; the
// commands name the file.

import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { loadRouteTable, quoteValue } from '../agent/src/index.js';
import {
  ConfigError,
  checkTenantId,
  DEFAULT_TENANT_CPUS,
  DEFAULT_TENANT_IMAGE,
  DEFAULT_TENANT_MEMORY,
  DEFAULT_TENANT_NETWORK,
  DEFAULT_TENANT_PORT,
  disableTenant,
  enableTenant,
  loadTenantLifecycle,
  parseCpus,
  parseMemory,
  readAccess,
  readFailure,
  renderTable,
  statePaths,
  type AccessState,
  type AccessWritten,
  type ManagedTenant,
} from '../generator/src/index.js';
import { parsePort } from './flag-values.js';
import { registerPauseCommands } from './tenant-pause.js';

interface StateDirFlags {
  stateDir: string;
}

function stateDirOption(): Option {
  return new Option('--state-dir <dir>', 'state dir of the running pgroute (access.json, layout.json, sockets, tenants/)').default('.pgroute').env('PGROUTE_STATE_DIR');
}

function limitsText(t: ManagedTenant): string {
  return [t.limits.cpus === undefined ? undefined : `${t.limits.cpus} cpu`, t.limits.memory].filter(Boolean).join(', ') || '-';
}

/**
 * The access switch names a tenant the running pgroute serves (routes.json) or one access.json
 * already lists (`tenant create` does): a mistyped id is refused instead of "disabled".
 */
async function checkKnownTenant(stateDir: string, id: string): Promise<void> {
  const paths = statePaths(stateDir);
  const access = await readAccess(stateDir).catch(() => undefined);
  if (access !== undefined && (access.disabled.includes(id) || access.entries[id]?.state === 'paused')) return;
  let served: string[];
  try {
    served = [...(await loadRouteTable(paths.routes)).tenants.keys()];
  } catch (err) {
    throw new ConfigError(`cannot read ${paths.routes} (${readFailure(err)}): pass the --state-dir (PGROUTE_STATE_DIR) of the running pgroute`);
  }
  if (served.includes(id)) return;
  const known = served.length === 0 ? 'it serves no tenant' : `it serves ${served.slice(0, 10).join(', ')}${served.length > 10 ? ', ...' : ''}`;
  throw new ConfigError(`no tenant ${quoteValue(id)} in ${paths.routes} (${known}); check the id with \`pgroute status --state-dir ${stateDir}\``);
}

/** `written to <file> and HAProxy's table pgroute-access; replicated to peers b, c through HAProxy peers (...)` */
function whereWritten(w: AccessWritten): string {
  const durable = w.durable === undefined ? '' : w.durable.problem === undefined ? `, the ${w.durable.where}` : ` (not yet the ${w.durable.where}: ${w.durable.problem}; the running pgroute retries)`;
  const head = `written to ${w.file}${durable} and HAProxy's table ${w.table}`;
  if (w.peers.length === 0) return `${head} (no other replica is configured)`;
  return `${head}; replicated to peers ${w.peers.join(', ')} through HAProxy peers (a peer that is down learns it when it reconnects)`;
}

/** `tenant show`: the switch, and for disabled and paused where it was set and what undoes it. */
const ACCESS_SHOWN: Readonly<Record<AccessState, string>> = {
  enabled: 'enabled',
  disabled: 'disabled (access.json)',
  paused: 'paused (access.json: new connections are held until `pgroute tenant resume`)',
};

interface CreateFlags extends StateDirFlags {
  image: string;
  network: string;
  cpus: string;
  memory: string;
  port: string;
}

export function registerTenantCommands(program: Command, log: Logger): Command {
  const tenant = program
    .command('tenant')
    .description('PostgreSQL tenants as pgroute-managed Docker containers, and the access switch of any tenant');

  tenant
    .command('create')
    .description(
      'create a PostgreSQL container pgroute-tenant-<id> (volume pgroute-tenant-<id>-data) on a private network, labelled for the Docker source; ' +
        'access stays disabled until `pgroute tenant enable <id>`. HAProxy must reach that network: on the Docker host it does; ' +
        'in a container, `docker network connect <network> <haproxy container>`',
    )
    .argument('<id>', 'tenant id (lower-case letters, digits, "-")')
    .addOption(new Option('--image <image>', 'PostgreSQL image (reads POSTGRES_PASSWORD_FILE, PGPORT; data in /var/lib/postgresql/data)').default(DEFAULT_TENANT_IMAGE).env('PGROUTE_TENANT_IMAGE'))
    .addOption(new Option('--network <name>', 'private Docker network of the tenants (created when missing)').default(DEFAULT_TENANT_NETWORK).env('PGROUTE_TENANT_NETWORK'))
    .option('--cpus <n>', 'CPU limit (NanoCpus), like docker --cpus', DEFAULT_TENANT_CPUS)
    .option('--memory <size>', 'memory limit, like docker --memory (no extra swap)', DEFAULT_TENANT_MEMORY)
    .option('--port <port>', 'port PostgreSQL listens on inside the container', String(DEFAULT_TENANT_PORT))
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: CreateFlags) => {
      const id = checkTenantId(rawId);
      const nanoCpus = parseCpus(flags.cpus);
      const memory = parseMemory(flags.memory);
      const port = parsePort('--port', flags.port);
      const { createTenant } = await loadTenantLifecycle();
      const c = await createTenant({ stateDir: flags.stateDir, id, image: flags.image, network: flags.network, nanoCpus, memory, port }, log);
      const t = c.tenant;
      process.stdout.write(
        `tenant ${id} created: container ${c.container} (${t?.address || 'no address yet'} on ${flags.network}), volume ${c.volume}, limits ${t === undefined ? '-' : limitsText(t)}\n` +
          `password of the user postgres: ${c.passwordFile} (mode 0600)\n` +
          `access is DISABLED: run \`pgroute tenant enable ${id}\` when it should take connections\n`,
      );
    });

  tenant
    .command('enable')
    .description('let the tenant take new connections again (access.json and HAProxy\'s replicated table, so every replica obeys within ~1 s; any source, no reload; HAProxy must be running)')
    .argument('<id>', 'tenant id')
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags) => {
      const id = checkTenantId(rawId);
      await checkKnownTenant(flags.stateDir, id);
      const written = await enableTenant(flags.stateDir, id, log);
      process.stdout.write(`tenant ${id} enabled${written.changed ? '' : ' (it was)'}: ${whereWritten(written)}\n`);
    });

  tenant
    .command('disable')
    .description('refuse new connections to the tenant on every replica (access.json and HAProxy\'s replicated table; any source, no reload; HAProxy must be running); --kill-sessions also ends its open sessions here')
    .argument('<id>', 'tenant id')
    .option('--kill-sessions', 'after the switch is applied, shut down the open sessions of every server of the tenant (HAProxy admin socket)', false)
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags & { killSessions: boolean }) => {
      const id = checkTenantId(rawId);
      await checkKnownTenant(flags.stateDir, id);
      const written = await disableTenant(flags.stateDir, id, { killSessions: flags.killSessions }, log);
      const { servers } = written;
      const killed = servers === undefined ? '' : `; open sessions shut down on ${servers.length === 0 ? 'no server' : servers.join(', ')}`;
      process.stdout.write(`tenant ${id} disabled${written.changed ? '' : ' (it was)'}: ${whereWritten(written)}${killed}\n`);
    });

  registerPauseCommands(tenant, log, { stateDirOption, checkKnownTenant, whereWritten });

  tenant
    .command('delete')
    .description('stop and remove the tenant container and drop its access entry; the data volume and password file stay unless --purge')
    .argument('<id>', 'tenant id')
    .option('--purge', 'also remove the data volume and the password file', false)
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags & { purge: boolean }) => {
      const id = checkTenantId(rawId);
      const { deleteTenant } = await loadTenantLifecycle();
      const done = await deleteTenant(flags.stateDir, id, flags.purge, log);
      process.stdout.write(`tenant ${id} deleted: ${done.join('; ')}\n`);
    });

  tenant
    .command('list')
    .description('pgroute-managed tenant containers: id, state, access (access.json: enabled, disabled or paused), address, image, limits')
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action(async (flags: StateDirFlags & { json: boolean }) => {
      const { listTenants } = await loadTenantLifecycle();
      const rows = await listTenants(flags.stateDir);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        renderTable(
          ['TENANT', 'STATE', 'ACCESS', 'ADDRESS', 'IMAGE', 'LIMITS'],
          rows.map((t) => [t.id, t.state, t.access, t.address || '-', t.image, limitsText(t)]),
        ),
      );
    });

  tenant
    .command('show')
    .description('one pgroute-managed tenant: container, state, access, address, network, image, limits, volume, password file')
    .argument('<id>', 'tenant id')
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags & { json: boolean }) => {
      const id = checkTenantId(rawId);
      const { showTenant } = await loadTenantLifecycle();
      const detail = await showTenant(flags.stateDir, id);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(detail, null, 2)}\n`);
        return;
      }
      const lines: [string, string][] = [
        ['tenant', detail.id],
        ['container', `${detail.container} (${detail.containerId})`],
        ['state', detail.status],
        ['access', ACCESS_SHOWN[detail.access]],
        ['address', detail.address || '-'],
        ['network', detail.network],
        ['image', detail.image],
        ['limits', limitsText(detail)],
        ['volume', detail.volume ?? '(missing)'],
        ['password file', detail.passwordFile ?? '(missing)'],
        ['created', detail.created],
      ];
      process.stdout.write(lines.map(([k, v]) => `${`${k}:`.padEnd(15)}${v}`).join('\n') + '\n');
    });

  return tenant;
}
