// Which namespace may claim a tenant id on Kubernetes (--kube-ownership). Pure: no API calls here.
//
// first-claim (the default): the namespace of the oldest Service claim owns the tenant
//   (mergeClaims in ../labels.ts). It remembers nothing: the moment the owner's Service is gone
//   (deleted, or deleted and re-created by a redeploy), a claim from another namespace that was
//   refused until then is the oldest one and takes the tenant, and keeps it after the owner's
//   Service is back, because that one is newer now.
// declared: the cluster admin declares on each Namespace, in the annotation pgroute.io/tenants,
//   the tenant ids its Services may claim. A claim is accepted only from the one namespace that
//   declares its id; an id declared by two namespaces is an admin error and every claim of it is
//   refused. The outcome is a function of the current Services and Namespaces alone (no memory),
//   so every replica, whenever it started, decides the same.
//
// The annotation is a list of entries separated by commas and/or white space. An entry is a tenant
// id (`acme`) or a prefix followed by `*` (`acme-*`: every id that starts with `acme-`). A bare `*`
// is refused: it would declare every tenant. Annotation values are unvalidated input: a value over
// MAX_ANNOTATION_CHARS or with more than MAX_ENTRIES entries declares nothing at all (reported),
// an invalid entry is skipped (reported; the valid ones count).

import type { RefusedTenant } from '../../model.js';
import { quote, TENANT_ID_RULE, tenantIdProblem } from '../../validate.js';
import type { Claim } from '../labels.js';

export const TENANTS_ANNOTATION = 'pgroute.io/tenants';

export type OwnershipMode = 'first-claim' | 'declared';
export const OWNERSHIP_MODES: readonly OwnershipMode[] = ['first-claim', 'declared'];

/** Longest annotation value read (characters); a longer one declares nothing. */
export const MAX_ANNOTATION_CHARS = 65_536;
/** Most entries read from one annotation; more declare nothing. */
export const MAX_ENTRIES = 4_096;
/** Invalid entries reported one by one per Namespace; the others are counted in one more line. */
export const MAX_REPORTED_ENTRIES = 10;
/** Namespaces named in one conflict's reason. */
const MAX_NAMED_NAMESPACES = 5;

/** What a prefix entry may hold before its `*`: the start of a tenant id (it may end in '-'). */
const PREFIX = /^[a-z0-9][a-z0-9-]{0,61}$/;

/** The part of a Namespace pgroute reads (structural, as ServiceLike). */
export interface NamespaceLike {
  readonly metadata?: {
    readonly name?: string;
    readonly annotations?: Readonly<Record<string, unknown>>;
  };
}

/** One annotation value, read. */
export type ParsedAnnotation =
  | { readonly kind: 'ok'; readonly ids: readonly string[]; readonly prefixes: readonly string[]; readonly invalid: readonly string[] }
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Reads one pgroute.io/tenants value. `invalid` holds one reason per invalid entry, in order;
 * `ids` and `prefixes` are deduplicated and sorted.
 */
export function parseTenantsAnnotation(value: unknown): ParsedAnnotation {
  if (typeof value !== 'string') return { kind: 'refused', reason: `the value is not a string` };
  if (value.length > MAX_ANNOTATION_CHARS) {
    return { kind: 'refused', reason: `the value is ${value.length} characters long, more than the ${MAX_ANNOTATION_CHARS} read` };
  }
  const entries = value.split(/[\s,]+/).filter((e) => e !== '');
  if (entries.length > MAX_ENTRIES) return { kind: 'refused', reason: `the value has ${entries.length} entries, more than the ${MAX_ENTRIES} read` };
  const ids = new Set<string>();
  const prefixes = new Set<string>();
  const invalid: string[] = [];
  for (const entry of entries) {
    if (entry.endsWith('*')) {
      const prefix = entry.slice(0, -1);
      if (prefix === '') invalid.push(`${quote(entry)} would declare every tenant id; list the ids, or use a prefix such as acme-*`);
      else if (!PREFIX.test(prefix)) invalid.push(`${quote(entry)} is not a tenant id prefix followed by * (a prefix is 1 to 62 lower-case letters, digits and "-", starting with a letter or digit)`);
      else prefixes.add(prefix);
      continue;
    }
    if (tenantIdProblem(entry) !== undefined) {
      invalid.push(`${quote(entry)} is not a tenant id (${TENANT_ID_RULE}), nor a prefix followed by *`);
      continue;
    }
    ids.add(entry);
  }
  return { kind: 'ok', ids: [...ids].sort(), prefixes: [...prefixes].sort(), invalid };
}

/** Who declares which tenant ids, read from every Namespace pgroute sees. */
export class Declarations {
  private readonly exact = new Map<string, Set<string>>();
  private readonly byPrefix = new Map<string, Set<string>>();
  private longestPrefix = 0;

  /** Records that `namespace` declares these ids and prefixes. */
  add(namespace: string, ids: Iterable<string>, prefixes: Iterable<string>): void {
    for (const id of ids) addTo(this.exact, id, namespace);
    for (const prefix of prefixes) {
      addTo(this.byPrefix, prefix, namespace);
      this.longestPrefix = Math.max(this.longestPrefix, prefix.length);
    }
  }

  /** The namespaces that declare `tenant` (by id or by prefix), sorted. */
  declaring(tenant: string): string[] {
    const found = new Set(this.exact.get(tenant) ?? []);
    const longest = Math.min(tenant.length, this.longestPrefix);
    for (let n = 1; n <= longest; n++) for (const ns of this.byPrefix.get(tenant.slice(0, n)) ?? []) found.add(ns);
    return [...found].sort();
  }
}

function addTo(map: Map<string, Set<string>>, key: string, namespace: string): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(namespace);
}

export function namespaceWhere(name: string): string {
  return `kubernetes namespace ${name}`;
}

/**
 * Reads the declarations of these Namespaces, and why parts of them are refused. Independent of
 * the order of `namespaces` (the same name twice, which the API never yields, counts as one
 * Namespace declaring the union).
 */
export function readDeclarations(namespaces: Iterable<NamespaceLike>): { declarations: Declarations; refused: RefusedTenant[] } {
  const declarations = new Declarations();
  const refused: RefusedTenant[] = [];
  const values = new Map<string, unknown[]>();
  for (const ns of namespaces) {
    const name = ns.metadata?.name;
    if (typeof name !== 'string' || name === '') continue;
    const annotations = ns.metadata?.annotations;
    if (annotations === undefined || annotations === null || typeof annotations !== 'object') continue;
    if (!Object.prototype.hasOwnProperty.call(annotations, TENANTS_ANNOTATION)) continue;
    let list = values.get(name);
    if (list === undefined) values.set(name, (list = []));
    list.push(annotations[TENANTS_ANNOTATION]);
  }
  for (const name of [...values.keys()].sort()) {
    const where = namespaceWhere(name);
    const about = `annotation ${TENANTS_ANNOTATION} on Namespace ${name}`;
    const invalid = new Set<string>();
    for (const value of values.get(name) ?? []) {
      const parsed = parseTenantsAnnotation(value);
      if (parsed.kind === 'refused') {
        refused.push({ where, reason: `${about}: ${parsed.reason}; the namespace declares no tenant until it is fixed` });
        continue;
      }
      declarations.add(name, parsed.ids, parsed.prefixes);
      for (const problem of parsed.invalid) invalid.add(problem);
    }
    const problems = [...invalid];
    for (const problem of problems.slice(0, MAX_REPORTED_ENTRIES)) refused.push({ where, reason: `${about}: ${problem}; that entry is ignored` });
    if (problems.length > MAX_REPORTED_ENTRIES) refused.push({ where, reason: `${about}: ${problems.length - MAX_REPORTED_ENTRIES} more invalid entries are ignored` });
  }
  return { declarations, refused };
}

/**
 * Keeps the claims whose namespace, and no other, declares their tenant id; refuses the others
 * with their reason (sorted by where). Claims with an invalid tenant id are refused with that.
 */
export function acceptDeclared(claims: readonly Claim[], declarations: Declarations): { accepted: Claim[]; refused: RefusedTenant[] } {
  const accepted: Claim[] = [];
  const refused: RefusedTenant[] = [];
  for (const c of claims) {
    const problem = tenantIdProblem(c.tenant);
    if (problem !== undefined) {
      refused.push({ where: c.where, id: c.tenant, reason: problem });
      continue;
    }
    const owners = declarations.declaring(c.tenant);
    if (owners.length === 1 && owners[0] === c.owner) {
      accepted.push(c);
      continue;
    }
    let reason: string;
    if (owners.length > 1) {
      const named = owners.slice(0, MAX_NAMED_NAMESPACES).join(', ') + (owners.length > MAX_NAMED_NAMESPACES ? ` and ${owners.length - MAX_NAMED_NAMESPACES} more` : '');
      reason = `tenant ${c.tenant} is declared for ${owners.length} namespaces (${named}; annotation ${TENANTS_ANNOTATION}): every claim of it is refused until one Namespace alone declares it`;
    } else {
      reason = `tenant ${c.tenant} is not declared for namespace ${c.owner} (annotation ${TENANTS_ANNOTATION} on Namespace ${c.owner})`;
      if (owners.length === 1) reason += `; it is declared for namespace ${owners[0]}`;
    }
    refused.push({ where: c.where, id: c.tenant, reason });
  }
  refused.sort((a, b) => (a.where < b.where ? -1 : a.where > b.where ? 1 : 0));
  return { accepted, refused };
}
