// The records of the containers `pgroute tenant create` made: <state-dir>/tenants/<id>.container
// holds the full id Docker gave the container (directory 0700, file 0600, beside <id>.password).
// The Docker source admits a container as pgroute's only when its id is recorded for the tenant its
// labels name (ownership.ts): a label can be copied onto any container, a container id cannot.
//
// `tenant create` records the id after creating the container and before starting it, so the
// source's list on the `start` event already reads the record. `tenant delete` keeps it while the
// data volume is kept (the id stays reserved: no other container can take the tenant while it is
// being re-created); `tenant delete --purge` removes it. Whoever
// runs pgroute (`watch --source docker`) must read the same <state-dir> as `tenant create`, as it
// already must for `tenant enable|disable` (access.json).

import { chmod, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { passwordDir } from '../../tenants-docker/plan.js';
import { tenantIdProblem } from '../../validate.js';

const SUFFIX = '.container';
/** A full Docker container id. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** <state-dir>/tenants: the 0700 directory of tenants-docker's password files. */
export function recordsDir(stateDir: string): string {
  return passwordDir(stateDir);
}

export function recordPath(stateDir: string, tenant: string): string {
  return join(recordsDir(stateDir), `${tenant}${SUFFIX}`);
}

/** One record file's name and text -> [tenant, container id], or undefined when it is not a record. */
export function parseRecord(fileName: string, text: string): [string, string] | undefined {
  if (!fileName.endsWith(SUFFIX)) return undefined;
  const tenant = fileName.slice(0, -SUFFIX.length);
  const id = text.trim();
  if (tenantIdProblem(tenant) !== undefined || !CONTAINER_ID.test(id)) return undefined;
  return [tenant, id];
}

/** Every record (tenant id -> container id); an empty map when the directory does not exist. */
export async function readCreated(stateDir: string): Promise<Map<string, string>> {
  const dir = recordsDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const created = new Map<string, string>();
  for (const name of names.filter((n) => n.endsWith(SUFFIX)).sort()) {
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted meanwhile
      throw err;
    }
    const record = parseRecord(name, text);
    if (record !== undefined) created.set(record[0], record[1]);
  }
  return created;
}

/** Records that pgroute created this container for this tenant (replacing an older record). */
export async function recordCreated(stateDir: string, tenant: string, containerId: string): Promise<void> {
  if (tenantIdProblem(tenant) !== undefined || !CONTAINER_ID.test(containerId)) throw new Error(`cannot record container ${containerId} for tenant ${tenant}: not a tenant id and a full container id`);
  const dir = recordsDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Written aside and renamed: a source listing meanwhile reads the old record or the new one.
  const path = recordPath(stateDir, tenant);
  const aside = `${path}.${process.pid}.tmp`;
  const fh = await open(aside, 'w', 0o600);
  try {
    await fh.writeFile(`${containerId}\n`);
  } finally {
    await fh.close();
  }
  await rename(aside, path);
}

export async function forgetCreated(stateDir: string, tenant: string): Promise<void> {
  await rm(recordPath(stateDir, tenant), { force: true });
}

/** The records as last read: a directory that cannot be read keeps the last good ones (and says why). */
export class CreatedRecords {
  private last = new Map<string, string>();

  constructor(private readonly stateDir: string | undefined) {}

  async read(): Promise<{ readonly created: ReadonlyMap<string, string>; readonly error?: string }> {
    if (this.stateDir === undefined) return { created: this.last };
    try {
      this.last = await readCreated(this.stateDir);
      return { created: this.last };
    } catch (err) {
      return { created: this.last, error: `cannot read ${recordsDir(this.stateDir)}: ${(err as Error).message}` };
    }
  }
}
