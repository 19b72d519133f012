// The Docker API calls behind `pgroute tenant`: find or make the image, network and container, and
// move the password file into a created container. Effects only; what to create is plan.ts.

import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { defaultDockerEndpoint, DOCKER_CHECK } from '../sources/docker.js';
import { quote } from '../validate.js';
import { containerName, describeManaged, MANAGED_LABEL, type ManagedTenant } from './plan.js';
import type { AccessFile } from '../access.js';
import { MAX_PASSWD_BYTES, passwordArchive, secretOwner, type Owner } from './secret.js';
import { readTar } from './tar.js';

/**
 * A client of the engine that answered a ping: a command that cannot reach dockerd says so, naming
 * Docker and where it looked, not the socket error alone. dockerode is loaded only by the commands
 * that talk to Docker.
 */
export async function dockerClient(): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (err) {
    const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
    const why = typeof e.code === 'string' ? e.code : typeof e.statusCode === 'number' ? `HTTP ${e.statusCode}` : quote(String(e.message));
    throw new Error(`cannot reach the Docker engine at ${quote(defaultDockerEndpoint())} (${why}): ${DOCKER_CHECK}`);
  }
  return docker;
}

export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** The inspected object, or undefined when Docker answers 404. */
export async function inspectOrUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

export async function ensureImage(docker: Dockerode, image: string, log: Logger): Promise<void> {
  if ((await inspectOrUndefined(docker.getImage(image).inspect())) !== undefined) return;
  log.info({ image }, 'pulling the tenant image');
  const stream = await docker.pull(image);
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
}

export async function ensureNetwork(docker: Dockerode, spec: { Name: string; Driver: 'bridge'; Labels: Record<string, string> }, log: Logger): Promise<void> {
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
  const file = (await readTar(Buffer.concat(chunks))).find((e) => e.type === 'file');
  return file?.content === undefined || file.content.length > maxBytes ? undefined : Buffer.from(file.content).toString('utf8');
}

/**
 * Puts the password into the created, not yet started container: PASSWORD_FILE (0400) in SECRET_DIR
 * (0700), owned by the image's postgres user (from the container's own /etc/passwd), uploaded as a tar
 * archive. Nothing touches the container's configuration or a host path.
 */
export async function uploadPassword(container: Dockerode.Container, password: string): Promise<Owner> {
  const info = await container.inspect();
  const passwd = await readContainerFile(container, '/etc/passwd', MAX_PASSWD_BYTES);
  const owner = secretOwner(info.Config.User, passwd);
  await container.putArchive(await passwordArchive(password, owner, Math.floor(Date.now() / 1000)), { path: '/' });
  return owner;
}

/** The tenant's managed container, or undefined; refuses a container of that name pgroute did not make. */
export async function managedContainer(docker: Dockerode, id: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
  const info = await inspectOrUndefined(docker.getContainer(containerName(id)).inspect());
  if (info !== undefined && info.Config.Labels?.[MANAGED_LABEL] !== 'true') {
    throw new ConfigError(`container ${containerName(id)} exists but was not created by pgroute (no ${MANAGED_LABEL}=true label); leaving it alone`);
  }
  return info;
}

export function describeInspect(info: Dockerode.ContainerInspectInfo, access: AccessFile): ManagedTenant | undefined {
  return describeManaged(
    {
      Id: info.Id,
      Names: [info.Name],
      Image: info.Config.Image,
      State: info.State.Status,
      Labels: info.Config.Labels ?? {},
      NetworkSettings: { Networks: info.NetworkSettings.Networks as Record<string, { IPAddress?: string }> },
    },
    access,
    { NanoCpus: info.HostConfig.NanoCpus ?? 0, Memory: info.HostConfig.Memory ?? 0 },
  );
}
