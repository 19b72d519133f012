// Several sources at once (`--source file,docker`): each keeps its own ownership rules (Docker's
// admission and contested claims, Kubernetes' first-claim or declared namespaces) and yields its
// own view; this one merges the newest view of each into one, as Traefik's aggregator merges its
// providers. Across sources no source outranks another: a tenant id served by two sources is
// refused in both, with the other's place in the reason, until all but one drop it (an order of
// precedence would let whoever can label a container or create a Service take over a tenant the
// file defines). Listeners and routing come from the one source that defines them (the file).

import type { Tenant } from '../model.js';
import type { SourceView, TenantSource } from './source.js';

export interface NamedView {
  /** The source's name: file, docker, kubernetes. */
  readonly source: string;
  readonly view: SourceView;
}

/** One view from every source's newest. Pure. */
export function mergeViews(views: readonly NamedView[]): SourceView {
  const claims = new Map<string, { source: string; where: string; tenant: Tenant }[]>();
  for (const { source, view } of views) {
    for (const tenant of view.snapshot.tenants) {
      const list = claims.get(tenant.id) ?? [];
      list.push({ source, where: view.where[tenant.id] ?? `the ${source} source`, tenant });
      claims.set(tenant.id, list);
    }
  }
  const tenants: Tenant[] = [];
  const where: Record<string, string> = {};
  const refused = views.flatMap((v) => v.view.snapshot.refused);
  for (const id of [...claims.keys()].sort()) {
    const list = claims.get(id) ?? [];
    const only = list[0];
    if (list.length === 1 && only !== undefined) {
      tenants.push(only.tenant);
      where[id] = only.where;
      continue;
    }
    for (const c of list) {
      const others = list.filter((o) => o !== c).map((o) => `the ${o.source} source (${o.where})`);
      refused.push({
        where: c.where,
        id,
        reason: `tenant id ${id} is also defined by ${others.join('; ')}; a tenant id belongs to one source, so neither is served until all but one drop it`,
      });
    }
  }
  const deployment = views.find((v) => v.view.deployment !== undefined)?.view.deployment;
  return { snapshot: { tenants, refused }, where, ...(deployment === undefined ? {} : { deployment }) };
}

/** Starts every source and pushes their merged view whenever one of them pushes. */
export class MergedSource implements TenantSource {
  readonly name: string;
  readonly #sources: readonly TenantSource[];
  readonly #latest = new Map<TenantSource, SourceView>();
  #started: TenantSource[] = [];

  constructor(sources: readonly TenantSource[]) {
    if (sources.length < 2) throw new Error('a merged source needs two sources or more');
    this.#sources = sources;
    this.name = sources.map((s) => s.name).join('+');
  }

  async start(onView: (view: SourceView) => void): Promise<void> {
    let ready = false;
    const push = (): void => {
      if (ready) onView(this.#merged());
    };
    try {
      // One at a time, so a source that cannot start leaves the others unstarted or stopped.
      for (const s of this.#sources) {
        await s.start((view) => {
          this.#latest.set(s, view);
          push();
        });
        this.#started.push(s);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    ready = true;
    push();
  }

  async stop(): Promise<void> {
    const started = this.#started;
    this.#started = [];
    await Promise.all(started.map((s) => s.stop()));
  }

  #merged(): SourceView {
    return mergeViews(this.#sources.map((s) => ({ source: s.name, view: this.#latest.get(s) as SourceView })));
  }
}
