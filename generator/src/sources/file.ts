// The file source: a YAML tenants file, read whole into a snapshot.

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
// js-yaml: about six times faster than `yaml` on a 10,000-tenant file, which is re-read on every edit.
import yaml from 'js-yaml';
import { ConfigError, readFailure } from '../errors.js';
import { caFileProblem } from '../tls/ca-file.js';
import type { Deployment, Listener, TenantSnapshot } from '../model.js';
import { parseListeners, parsePolicy } from '../policy.js';
import { parseTenant, snapshotOf, type FileCheck } from '../tenants.js';
import { fileSectionsMessage, fileSectionsSchema } from '../tenants-schema.js';
import type { SourceView, TenantSource } from './source.js';
import { watchFile, type FileWatch } from '../file-watch.js';

export interface TenantsFile {
  readonly deployment: Deployment;
  readonly snapshot: TenantSnapshot;
  /** Tenant id -> where in the file it is defined. */
  readonly where: Readonly<Record<string, string>>;
}

/**
 * Parses the text of a tenants file. File-level mistakes throw ConfigError; bad tenants are refused.
 * `files` says whether a file a tenant names (tls.ca) exists; readTenantsFile asks the file system.
 */
export function parseTenantsFile(text: string, origin: string, fallbackListener: Listener, files?: FileCheck): TenantsFile {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: origin });
  } catch (err) {
    const mark = err instanceof yaml.YAMLException ? err.mark : undefined;
    const where = mark ? ` at line ${mark.line + 1}` : '';
    const reason = err instanceof yaml.YAMLException ? err.reason : (err as Error).message.split('\n')[0];
    throw new ConfigError(`${origin}: not valid YAML${where}: ${reason}`);
  }
  if (doc === null || doc === undefined) doc = {};
  const sections = fileSectionsSchema.safeParse(doc);
  if (!sections.success) throw new ConfigError(`${origin}: ${fileSectionsMessage(sections.error)}`);
  const d = sections.data;
  const listeners = withOrigin(origin, () => parseListeners(d.listeners, fallbackListener));
  const policy = withOrigin(origin, () => parsePolicy(d.routing, listeners));
  const list = d.tenants ?? [];
  const results = list.map((value: unknown, i) => {
    const where = `${origin}: tenants[${i}]`;
    return { where, result: parseTenant({ where, value }, files) };
  });
  const { snapshot, where } = snapshotOf(results);
  return { deployment: { listeners, policy }, snapshot, where };
}

/**
 * Reads and parses the tenants file. `changed`: a re-read after the file changed, where an empty file
 * is refused: a program that truncates the file before writing it (most do, unlike an editor's
 * rename) is caught in between now and then, and reading that as "no tenants" would remove every
 * tenant until the next read. Removing every tenant takes an explicit `tenants: []`.
 */
export async function readTenantsFile(path: string, fallbackListener: Listener, changed = false): Promise<TenantsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read tenants file ${path}: ${readFailure(err)}; check --tenants`);
  }
  if (changed && text.trim() === '') throw new ConfigError(`tenants file ${path} is empty (being written?); to remove every tenant, write "tenants: []"`);
  // HAProxy refuses a whole configuration over one ca-file it cannot load: such a tenant is refused
  // instead. Each file is read once per read of the tenants file (10,000 tenants may share one CA).
  const checked = new Map<string, string | undefined>();
  const caFile = (ca: string): string | undefined => {
    if (!checked.has(ca)) checked.set(ca, caFileProblem(ca));
    return checked.get(ca);
  };
  return parseTenantsFile(text, path, fallbackListener, caFile);
}

function withOrigin<T>(origin: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${origin}: ${err.message}`);
    throw err;
  }
}

/**
 * An edit that breaks the definition of a tenant already served (a malformed network, a negative
 * limit, ...) must not drop that tenant, nor open it wider: its previous definition is kept until the
 * file defines it validly again; the refusal is still reported, saying so.
 */
export function keepPreviousDefinitions(previous: TenantsFile | undefined, next: TenantsFile): TenantsFile {
  if (previous === undefined) return next;
  const served = new Set(next.snapshot.tenants.map((t) => t.id));
  const kept = previous.snapshot.tenants.filter((t) => !served.has(t.id) && next.snapshot.refused.some((r) => r.id === t.id));
  if (kept.length === 0) return next;
  const keptIds = new Set(kept.map((t) => t.id));
  const tenants = [...next.snapshot.tenants, ...kept].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const refused = next.snapshot.refused.map((r) => (r.id !== undefined && keptIds.has(r.id) ? { ...r, reason: `${r.reason}; its previous definition is kept` } : r));
  const where = { ...next.where };
  for (const t of kept) where[t.id] = next.snapshot.refused.find((r) => r.id === t.id)?.where ?? previous.where[t.id] ?? '';
  return { ...next, snapshot: { tenants, refused }, where };
}

/**
 * The file source: the tenants file, watched (see file-watch.ts). A file that stops parsing is
 * reported and the last good view is kept; so is the last good definition of a served tenant whose
 * new definition is refused (keepPreviousDefinitions).
 */
export class FileSource implements TenantSource {
  readonly name = 'file';
  #watch: FileWatch | undefined;
  #last: TenantsFile | undefined;

  constructor(
    private readonly path: string,
    private readonly fallbackListener: Listener,
    private readonly log: Logger,
    private readonly pollMs = 1_000,
  ) {}

  async start(onView: (view: SourceView) => void): Promise<void> {
    this.#last = await readTenantsFile(this.path, this.fallbackListener);
    onView(viewOf(this.#last));
    this.#watch = await watchFile(
      this.path,
      () => {
        readTenantsFile(this.path, this.fallbackListener, true).then(
          (file) => {
            this.#last = keepPreviousDefinitions(this.#last, file);
            onView(viewOf(this.#last));
          },
          (err: Error) => this.log.error({ err: err.message, path: this.path }, 'tenants file unusable; keeping the last good one'),
        );
      },
      this.log,
      this.pollMs,
    );
  }

  async stop(): Promise<void> {
    this.#watch?.stop();
  }
}

function viewOf(file: TenantsFile): SourceView {
  return { snapshot: file.snapshot, where: file.where, deployment: file.deployment };
}
