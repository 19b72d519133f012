// `pgroute tenant ...`: PostgreSQL tenants as Docker containers that pgroute creates and labels
// (create, list, show, delete), and the operator's access switch for a tenant of any source
// (enable, disable [--kill-sessions]).
//
// Networking: a tenant container joins a private bridge network (default pgroute-tenants, created
// when missing) and publishes no port. HAProxy must reach the container's address on that network:
// HAProxy on the Docker host reaches it directly; HAProxy in a container must be attached to the
// network (`docker network connect pgroute-tenants <haproxy container>`). The Docker source then
// routes the container by its labels (`pgroute watch --source docker`).
//
// Secrets: the password of the user postgres is generated here (24 random bytes, base64url) and
// written to <state-dir>/tenants/<id>.password (mode 0600, directory 0700). The container gets it as
// a file, never in its configuration (so `docker inspect` does not show it): it is created with
// POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password, the file (0400, owned by the image's user
// postgres) is uploaded into it as a tar archive over the Docker API, and only then is it started
// (generator/src/tenants-docker/secret.ts). No host path is shared with the daemon, so this works
// when pgroute itself runs in a container. The password is never logged or printed; the commands
// name the file.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { accessPath, readAccess, setAccess } from '../generator/src/access.js';
import { forgetCreated, recordCreated } from '../generator/src/sources/docker/created.js';
import { ConfigError } from '../generator/src/errors.js';
import { readLayout } from '../generator/src/generate.js';
import { haproxyCli } from '../generator/src/haproxy/master.js';
import { statePaths } from '../generator/src/settings.js';
import { tenantServers } from '../generator/src/status/join.js';
import { renderTable } from '../generator/src/status/table.js';
import {
  checkTenantId,
  containerName,
  DEFAULT_TENANT_CPUS,
  DEFAULT_TENANT_IMAGE,
  DEFAULT_TENANT_MEMORY,
  DEFAULT_TENANT_NETWORK,
  DEFAULT_TENANT_PORT,
  describeManaged,
  MANAGED_LABEL,
  parseCpus,
  parseMemory,
  passwordDir,
  passwordPath,
  planTenant,
  volumeName,
  type ManagedTenant,
} from '../generator/src/tenants-docker/plan.js';
import { checkPassword, MAX_PASSWD_BYTES, PASSWORD_FILE, passwordArchive, readTar, secretOwner, type Owner } from '../generator/src/tenants-docker/secret.js';
import { parsePort } from './settings-options.js';

interface StateDirFlags {
  stateDir: string;
}

function stateDirOption(): Option {
  return new Option('--state-dir <dir>', 'state dir of the running pgroute (access.json, layout.json, sockets, tenants/)').default('.pgroute').env('PGROUTE_STATE_DIR');
}

/** A fresh password: 24 random bytes, base64url (32 characters). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

async function dockerClient(): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  return new Docker();
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

async function inspectOrUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes the password file: directory 0700, file 0600 (also when they existed with looser modes). */
async function writeSecret(stateDir: string, id: string, password: string): Promise<string> {
  const dir = passwordDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = passwordPath(stateDir, id);
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${password}\n`);
  } finally {
    await fh.close();
  }
  return path;
}

async function ensureImage(docker: Dockerode, image: string, log: Logger): Promise<void> {
  if ((await inspectOrUndefined(docker.getImage(image).inspect())) !== undefined) return;
  log.info({ image }, 'pulling the tenant image');
  const stream = await docker.pull(image);
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
}

async function ensureNetwork(docker: Dockerode, spec: { Name: string; Driver: 'bridge'; Labels: Record<string, string> }, log: Logger): Promise<void> {
  if ((await inspectOrUndefined(docker.getNetwork(spec.Name).inspect())) !== undefined) return;
  try {
    await docker.createNetwork({ ...spec, CheckDuplicate: true });
    log.info({ network: spec.Name }, 'created the tenant network; HAProxy must be able to reach it (see `pgroute tenant create --help`)');
  } catch (err) {
    if (statusCode(err) !== 409) throw err; // created meanwhile by someone else
  }
}

/** A regular file of a container (running or not) over GET /containers/{id}/archive; undefined when missing or larger than maxBytes. */
async function readContainerFile(container: Dockerode.Container, path: string, maxBytes: number): Promise<string | undefined> {
  const stream = await inspectOrUndefined(container.getArchive({ path }));
  if (stream === undefined) return undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > maxBytes + 64 * 1024) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return undefined;
    }
    chunks.push(b);
  }
  const file = readTar(Buffer.concat(chunks)).find((e) => e.type === 'file');
  return file?.content === undefined || file.content.length > maxBytes ? undefined : Buffer.from(file.content).toString('utf8');
}

/**
 * Puts the password into the created, not yet started container: PASSWORD_FILE (0400) in SECRET_DIR
 * (0700), owned by the image's postgres user (from the container's own /etc/passwd), uploaded as a tar
 * archive. Nothing touches the container's configuration or a host path.
 */
async function uploadPassword(container: Dockerode.Container, password: string): Promise<Owner> {
  const info = await container.inspect();
  const passwd = await readContainerFile(container, '/etc/passwd', MAX_PASSWD_BYTES);
  const owner = secretOwner(info.Config.User, passwd);
  await container.putArchive(passwordArchive(password, owner, Math.floor(Date.now() / 1000)), { path: '/' });
  return owner;
}

/** The tenant's managed container, or undefined; refuses a container of that name pgroute did not make. */
async function managedContainer(docker: Dockerode, id: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
  const info = await inspectOrUndefined(docker.getContainer(containerName(id)).inspect());
  if (info !== undefined && info.Config.Labels?.[MANAGED_LABEL] !== 'true') {
    throw new ConfigError(`container ${containerName(id)} exists but was not created by pgroute (no ${MANAGED_LABEL}=true label); leaving it alone`);
  }
  return info;
}

function describeInspect(info: Dockerode.ContainerInspectInfo, disabled: readonly string[]): ManagedTenant | undefined {
  return describeManaged(
    {
      Id: info.Id,
      Names: [info.Name],
      Image: info.Config.Image,
      State: info.State.Status,
      Labels: info.Config.Labels ?? {},
      NetworkSettings: { Networks: info.NetworkSettings.Networks as Record<string, { IPAddress?: string }> },
    },
    disabled,
    { NanoCpus: info.HostConfig.NanoCpus ?? 0, Memory: info.HostConfig.Memory ?? 0 },
  );
}

function limitsText(t: ManagedTenant): string {
  return [t.limits.cpus === undefined ? undefined : `${t.limits.cpus} cpu`, t.limits.memory].filter(Boolean).join(', ') || '-';
}

/**
 * Waits until routes.json says the tenant is disabled (or absent): the running pgroute has applied
 * the switch, so the agent refuses new connections. False after `timeoutMs`.
 */
async function switchApplied(stateDir: string, id: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const doc = JSON.parse(await readFile(statePaths(stateDir).routes, 'utf8')) as { tenants?: { id: string; enabled: boolean }[] };
      const t = doc.tenants?.find((x) => x.id === id);
      if (t === undefined || !t.enabled) return true;
    } catch {
      // not there (yet): nothing runs on this state dir, or it is being replaced
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `shutdown sessions server` for every server of the tenant's backends; returns the servers done. */
async function killSessions(stateDir: string, id: string, log: Logger): Promise<string[]> {
  const servers = tenantServers(await readLayout(statePaths(stateDir).layout), id);
  if (servers.length === 0) {
    log.warn({ tenant: id }, 'no backend of this tenant in layout.json: no sessions to shut down');
    return [];
  }
  const socket = statePaths(stateDir).adminSocket;
  const done: string[] = [];
  for (const s of servers) {
    const answer = (await haproxyCli(socket, `shutdown sessions server ${s}`)).trim();
    if (answer === '') done.push(s);
    else log.warn({ server: s, haproxy: answer }, 'HAProxy refused to shut down the sessions of a server');
  }
  return done;
}

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
      const docker = await dockerClient();
      const name = containerName(id);
      if ((await inspectOrUndefined(docker.getContainer(name).inspect())) !== undefined) {
        throw new ConfigError(`tenant "${id}" already exists (container ${name}); \`pgroute tenant delete ${id}\` first`);
      }
      const secretPath = passwordPath(flags.stateDir, id);
      const volumeExists = (await inspectOrUndefined(docker.getVolume(volumeName(id)).inspect())) !== undefined;
      let password: string;
      if (volumeExists) {
        // A volume kept by `delete` without --purge: its data (and password) come back.
        if (!(await fileExists(secretPath))) {
          throw new ConfigError(`volume ${volumeName(id)} exists but ${secretPath} does not: its password is unknown here; remove the volume (\`pgroute tenant delete ${id} --purge\`) or restore the file`);
        }
        password = (await readFile(secretPath, 'utf8')).trim();
        log.info({ tenant: id, volume: volumeName(id), passwordFile: secretPath }, 'reusing the kept data volume and its password');
      } else {
        password = generatePassword();
      }
      checkPassword(password);
      const plan = planTenant({ id, image: flags.image, network: flags.network, nanoCpus, memory, port });

      await ensureImage(docker, plan.container.Image, log);
      await ensureNetwork(docker, plan.network, log);
      if (!volumeExists) await writeSecret(flags.stateDir, id, password);
      // Disabled before the container can be seen by any source: nothing reaches it until `enable`.
      await mkdir(flags.stateDir, { recursive: true });
      await setAccess(flags.stateDir, id, false);

      let container: Dockerode.Container | undefined;
      try {
        if (!volumeExists) await docker.createVolume(plan.volume);
        container = await docker.createContainer(plan.container);
        const owner = await uploadPassword(container, password);
        log.debug({ tenant: id, file: PASSWORD_FILE, uid: owner.uid, gid: owner.gid }, 'password file uploaded into the container');
        // Before it starts: the Docker source admits it as pgroute's by this record alone.
        await recordCreated(flags.stateDir, id, container.id);
        await container.start();
      } catch (err) {
        await container?.remove({ force: true }).catch(() => undefined);
        if (!volumeExists) {
          await forgetCreated(flags.stateDir, id);
          await docker.getVolume(plan.volume.Name).remove().catch(() => undefined);
          await rm(secretPath, { force: true });
        }
        await setAccess(flags.stateDir, id, true);
        throw err;
      }
      const info = await container.inspect();
      const t = describeInspect(info, [id]);
      log.info({ tenant: id, container: name, volume: plan.volume.Name, network: flags.network, address: t?.address, passwordFile: secretPath }, 'tenant created (access disabled)');
      process.stdout.write(
        `tenant ${id} created: container ${name} (${t?.address || 'no address yet'} on ${flags.network}), volume ${plan.volume.Name}, limits ${t === undefined ? '-' : limitsText(t)}\n` +
          `password of the user postgres: ${secretPath} (mode 0600)\n` +
          `access is DISABLED: run \`pgroute tenant enable ${id}\` when it should take connections\n`,
      );
    });

  tenant
    .command('enable')
    .description('let the tenant take new connections again (access.json; applied by the running pgroute within ~0.5 s, any source, no reload)')
    .argument('<id>', 'tenant id')
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags) => {
      const id = checkTenantId(rawId);
      await mkdir(flags.stateDir, { recursive: true });
      const changed = await setAccess(flags.stateDir, id, true);
      log.info({ tenant: id, changed }, 'tenant enabled in access.json');
      process.stdout.write(`tenant ${id} enabled${changed ? '' : ' (it was)'}\n`);
    });

  tenant
    .command('disable')
    .description('refuse new connections to the tenant (access.json; any source, no reload); --kill-sessions also ends its open sessions')
    .argument('<id>', 'tenant id')
    .option('--kill-sessions', 'after the switch is applied, shut down the open sessions of every server of the tenant (HAProxy admin socket)', false)
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags & { killSessions: boolean }) => {
      const id = checkTenantId(rawId);
      await mkdir(flags.stateDir, { recursive: true });
      const changed = await setAccess(flags.stateDir, id, false);
      log.info({ tenant: id, changed }, 'tenant disabled in access.json');
      let killed = '';
      if (flags.killSessions) {
        const applied = await switchApplied(flags.stateDir, id, 3_000);
        if (!applied) log.warn({ tenant: id }, 'the running pgroute did not confirm the switch within 3 s (routes.json); shutting the sessions down anyway');
        const servers = await killSessions(flags.stateDir, id, log);
        // Once more shortly after: a verdict computed just before the switch may open a session late.
        await new Promise((r) => setTimeout(r, 250));
        await killSessions(flags.stateDir, id, log).catch(() => undefined);
        log.info({ tenant: id, servers }, 'open sessions shut down');
        killed = `; open sessions shut down on ${servers.length === 0 ? 'no server' : servers.join(', ')}`;
      }
      process.stdout.write(`tenant ${id} disabled${changed ? '' : ' (it was)'}${killed}\n`);
    });

  tenant
    .command('delete')
    .description('stop and remove the tenant container and drop its access entry; the data volume and password file stay unless --purge')
    .argument('<id>', 'tenant id')
    .option('--purge', 'also remove the data volume and the password file', false)
    .addOption(stateDirOption())
    .action(async (rawId: string, flags: StateDirFlags & { purge: boolean }) => {
      const id = checkTenantId(rawId);
      const docker = await dockerClient();
      const info = await managedContainer(docker, id);
      if (info === undefined && !flags.purge) throw new ConfigError(`no pgroute-managed container ${containerName(id)}`);
      if (info !== undefined) {
        const c = docker.getContainer(info.Id);
        await c.stop({ t: 10 }).catch((err: unknown) => {
          if (statusCode(err) !== 304 && statusCode(err) !== 404) throw err;
        });
        await c.remove({ v: false, force: true });
      }
      const done: string[] = info === undefined ? [] : [`container ${containerName(id)} removed`];
      if (flags.purge) {
        const vol = volumeName(id);
        try {
          await docker.getVolume(vol).remove();
          done.push(`volume ${vol} removed`);
        } catch (err) {
          if (statusCode(err) !== 404) throw err;
        }
        const secret = passwordPath(flags.stateDir, id);
        if (await fileExists(secret)) done.push(`${secret} removed`);
        await rm(secret, { force: true });
        // Only now may another container claim the id (a kept volume keeps it reserved).
        await forgetCreated(flags.stateDir, id);
      } else {
        done.push(`volume ${volumeName(id)} and ${passwordPath(flags.stateDir, id)} kept`);
      }
      if (await fileExists(accessPath(flags.stateDir))) await setAccess(flags.stateDir, id, true);
      log.info({ tenant: id, purge: flags.purge }, 'tenant deleted');
      process.stdout.write(`tenant ${id} deleted: ${done.join('; ')}\n`);
    });

  tenant
    .command('list')
    .description('pgroute-managed tenant containers: id, state, enabled (access.json), address, image, limits')
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action(async (flags: StateDirFlags & { json: boolean }) => {
      const docker = await dockerClient();
      const { disabled } = await readAccess(flags.stateDir);
      const list = await docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`] } });
      const rows: ManagedTenant[] = [];
      for (const c of list) {
        const info = await inspectOrUndefined(docker.getContainer(c.Id).inspect());
        const t = info === undefined ? undefined : describeInspect(info, disabled);
        if (t !== undefined) rows.push(t);
      }
      rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        renderTable(
          ['TENANT', 'STATE', 'ACCESS', 'ADDRESS', 'IMAGE', 'LIMITS'],
          rows.map((t) => [t.id, t.state, t.enabled ? 'enabled' : 'disabled', t.address || '-', t.image, limitsText(t)]),
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
      const docker = await dockerClient();
      const info = await managedContainer(docker, id);
      if (info === undefined) throw new ConfigError(`no pgroute-managed container ${containerName(id)}`);
      const { disabled } = await readAccess(flags.stateDir);
      const t = describeInspect(info, disabled);
      if (t === undefined) throw new ConfigError(`container ${containerName(id)} carries no tenant label`);
      const secret = passwordPath(flags.stateDir, id);
      const volume = await inspectOrUndefined(docker.getVolume(volumeName(id)).inspect());
      const detail = {
        ...t,
        containerId: info.Id.slice(0, 12),
        created: info.Created,
        status: info.State.Status + (info.State.Health ? ` (${info.State.Health.Status})` : ''),
        volume: volume === undefined ? null : volume.Name,
        passwordFile: (await fileExists(secret)) ? secret : null,
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(detail, null, 2)}\n`);
        return;
      }
      const lines: [string, string][] = [
        ['tenant', detail.id],
        ['container', `${detail.container} (${detail.containerId})`],
        ['state', detail.status],
        ['access', detail.enabled ? 'enabled' : 'disabled (access.json)'],
        ['address', detail.address || '-'],
        ['network', detail.network],
        ['image', detail.image],
        ['limits', limitsText(t)],
        ['volume', detail.volume ?? '(missing)'],
        ['password file', detail.passwordFile ?? '(missing)'],
        ['created', detail.created],
      ];
      process.stdout.write(lines.map(([k, v]) => `${`${k}:`.padEnd(15)}${v}`).join('\n') + '\n');
    });

  return tenant;
}
