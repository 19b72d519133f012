// `pgroute tenant create|delete|list|show`: PostgreSQL tenants as Docker containers that pgroute
// creates and labels, each step compensated when a later one fails.
//
// Networking: a tenant container joins a private bridge network (default pgroute-tenants, created
// when missing) and publishes no port. HAProxy must reach the container's address on that network:
// HAProxy on the Docker host reaches it directly; HAProxy in a container must be attached to the
// network (`docker network connect pgroute-tenants <haproxy container>`). The Docker source then
// routes the container by its labels (`pgroute watch --source docker`).
//
// Secrets: the password of the user postgres is generated here and written to
// <state-dir>/tenants/<id>.password (password-file.ts). The container gets it as a file, never in its
// configuration (so `docker inspect` does not show it): it is created with
// POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password, the file (0400, owned by the image's user
// postgres) is uploaded into it as a tar archive over the Docker API, and only then is it started
// (secret.ts, docker-api.ts). No host path is shared with the daemon, so this works when pgroute
// itself runs in a container.

import { mkdir, readFile, rm } from 'node:fs/promises';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { accessPath, readAccess, setAccess } from '../access.js';
import { forgetCreated, recordCreated } from '../sources/docker/created.js';
import { ConfigError } from '../errors.js';
import { describeInspect, dockerClient, ensureImage, ensureNetwork, inspectOrUndefined, managedContainer, statusCode, uploadPassword } from './docker-api.js';
import { fileExists, generatePassword, writePasswordFile } from './password-file.js';
import { containerName, MANAGED_LABEL, passwordPath, planTenant, volumeName, type ManagedTenant, type TenantContainerRequest } from './plan.js';
import { checkPassword, PASSWORD_FILE } from './secret.js';

export interface CreateTenantRequest extends TenantContainerRequest {
  readonly stateDir: string;
}

export interface CreatedTenant {
  readonly container: string;
  readonly volume: string;
  readonly passwordFile: string;
  /** As Docker describes the started container (undefined if it carries no tenant label). */
  readonly tenant: ManagedTenant | undefined;
}

/**
 * Creates and starts the tenant's container with access disabled. A data volume kept by an earlier
 * `delete` comes back with its password file. When a step fails, what this call made is removed and
 * the access entry is dropped again.
 */
export async function createTenant(req: CreateTenantRequest, log: Logger): Promise<CreatedTenant> {
  const { id, stateDir } = req;
  const docker = await dockerClient();
  const name = containerName(id);
  if ((await inspectOrUndefined(docker.getContainer(name).inspect())) !== undefined) {
    throw new ConfigError(`tenant "${id}" already exists (container ${name}); \`pgroute tenant delete ${id}\` first`);
  }
  const secretPath = passwordPath(stateDir, id);
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
  const plan = planTenant({ id, image: req.image, network: req.network, nanoCpus: req.nanoCpus, memory: req.memory, port: req.port });

  await ensureImage(docker, plan.container.Image, log);
  await ensureNetwork(docker, plan.network, log);
  if (!volumeExists) await writePasswordFile(stateDir, id, password);
  // Disabled before the container can be seen by any source: nothing reaches it until `enable`.
  await mkdir(stateDir, { recursive: true });
  await setAccess(stateDir, id, false);

  let container: Dockerode.Container | undefined;
  try {
    if (!volumeExists) await docker.createVolume(plan.volume);
    container = await docker.createContainer(plan.container);
    const owner = await uploadPassword(container, password);
    log.debug({ tenant: id, file: PASSWORD_FILE, uid: owner.uid, gid: owner.gid }, 'password file uploaded into the container');
    // Before it starts: the Docker source admits it as pgroute's by this record alone.
    await recordCreated(stateDir, id, container.id);
    await container.start();
  } catch (err) {
    await container?.remove({ force: true }).catch(() => undefined);
    if (!volumeExists) {
      await forgetCreated(stateDir, id);
      await docker.getVolume(plan.volume.Name).remove().catch(() => undefined);
      await rm(secretPath, { force: true });
    }
    await setAccess(stateDir, id, true);
    throw err;
  }
  const tenant = describeInspect(await container.inspect(), await readAccess(stateDir));
  log.info({ tenant: id, container: name, volume: plan.volume.Name, network: req.network, address: tenant?.address, passwordFile: secretPath }, 'tenant created (access disabled)');
  return { container: name, volume: plan.volume.Name, passwordFile: secretPath, tenant };
}

/**
 * Stops and removes the tenant's container and drops its access entry; with `purge` also its data
 * volume and password file. Returns what was done, one phrase per step.
 */
export async function deleteTenant(stateDir: string, id: string, purge: boolean, log: Logger): Promise<string[]> {
  const docker = await dockerClient();
  const info = await managedContainer(docker, id);
  if (info === undefined && !purge) throw new ConfigError(`no pgroute-managed container ${containerName(id)}`);
  if (info !== undefined) {
    const c = docker.getContainer(info.Id);
    await c.stop({ t: 10 }).catch((err: unknown) => {
      if (statusCode(err) !== 304 && statusCode(err) !== 404) throw err;
    });
    await c.remove({ v: false, force: true });
  }
  const done: string[] = info === undefined ? [] : [`container ${containerName(id)} removed`];
  if (purge) {
    const vol = volumeName(id);
    try {
      await docker.getVolume(vol).remove();
      done.push(`volume ${vol} removed`);
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    const secret = passwordPath(stateDir, id);
    if (await fileExists(secret)) done.push(`${secret} removed`);
    await rm(secret, { force: true });
    // Only now may another container claim the id (a kept volume keeps it reserved).
    await forgetCreated(stateDir, id);
  } else {
    done.push(`volume ${volumeName(id)} and ${passwordPath(stateDir, id)} kept`);
  }
  if (await fileExists(accessPath(stateDir))) await setAccess(stateDir, id, true);
  log.info({ tenant: id, purge }, 'tenant deleted');
  return done;
}

/** Every pgroute-managed tenant container, by id, with its access switch from access.json (enabled, disabled, paused). */
export async function listTenants(stateDir: string): Promise<ManagedTenant[]> {
  const docker = await dockerClient();
  const access = await readAccess(stateDir);
  const list = await docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`] } });
  const rows: ManagedTenant[] = [];
  for (const c of list) {
    const info = await inspectOrUndefined(docker.getContainer(c.Id).inspect());
    const t = info === undefined ? undefined : describeInspect(info, access);
    if (t !== undefined) rows.push(t);
  }
  return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface TenantDetail extends ManagedTenant {
  readonly containerId: string;
  readonly created: string;
  /** Docker's state, with the health check's status when the image has one. */
  readonly status: string;
  /** The data volume's name, or null when it is missing. */
  readonly volume: string | null;
  /** The password file's path, or null when it is missing. */
  readonly passwordFile: string | null;
}

/** One pgroute-managed tenant; a ConfigError when there is none. */
export async function showTenant(stateDir: string, id: string): Promise<TenantDetail> {
  const docker = await dockerClient();
  const info = await managedContainer(docker, id);
  if (info === undefined) throw new ConfigError(`no pgroute-managed container ${containerName(id)}`);
  const t = describeInspect(info, await readAccess(stateDir));
  if (t === undefined) throw new ConfigError(`container ${containerName(id)} carries no tenant label`);
  const secret = passwordPath(stateDir, id);
  const volume = await inspectOrUndefined(docker.getVolume(volumeName(id)).inspect());
  return {
    ...t,
    containerId: info.Id.slice(0, 12),
    created: info.Created,
    status: info.State.Status + (info.State.Health ? ` (${info.State.Health.Status})` : ''),
    volume: volume === undefined ? null : volume.Name,
    passwordFile: (await fileExists(secret)) ? secret : null,
  };
}
