// The Kubernetes manifests in kubernetes/ (kustomize base, overlays, examples), checked offline:
// - every object validates against the Kubernetes schemas (kubernetes-models) and has no field the
//   API does not know (client-node's models), so a typo such as readOnlyRootFileSystem is caught;
// - each kustomization (and component) lists exactly the files beside it, and the overlays render
//   as intended, components composed (a small kustomize for the features used here; cross-checked
//   by `kubectl kustomize` if present);
// - the RBAC grants exactly what generator/src/sources/kubernetes*.ts calls, derived from its code:
//   Services always, Namespaces where pgroute runs with --kube-ownership=declared (the calls in
//   sources/kubernetes/namespaces.ts, which only that mode makes); and, where pgroute runs with
//   --tls-secret, what generator/src/tls/secret-store.ts calls on that one Secret;
// - an egress NetworkPolicy limits the pgroute pods to DNS, the API server and the ports pgroute's
//   --kube-allowed-ports allows (parsed by the CLI's own parser), never link-local addresses;
// - pods run as non-root, without privilege escalation or capabilities, with limits and probes
//   that point at ports that exist;
// - pgroute's arguments are accepted by the built CLI (dist/, made by `npm run build`).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Command } from 'commander';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { addDeploymentFlags, ENV, settingsFromFlags, type DeploymentFlags } from '../../cli/settings-options.js';
import { type NamespaceLike } from '../src/sources/kubernetes/ownership.js';
import { type ServiceLike, viewOfServices } from '../src/sources/kubernetes/service-claims.js';
import { describePorts, parseAllowedPorts, PORTS_ENV, PORTS_FLAG } from '../src/sources/kubernetes/target-policy.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const KUBE = join(ROOT, 'kubernetes');
const CLI = join(ROOT, 'dist', 'cli', 'pgroute.js');
/** The state dir the HAProxy image's entrypoint waits on (haproxy -f /var/lib/pgroute/haproxy.cfg). */
const STATE_DIR = '/var/lib/pgroute';

// ---------------------------------------------------------------------------------------------
// Loading

type Obj = Record<string, any>;
interface Loaded {
  readonly file: string;
  readonly obj: Obj;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** Every document of a (multi-document) YAML file, read as kubectl reads it (YAML 1.1). */
function loadDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: Obj[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    out.push(value as Obj);
  }
  return out;
}

const FILES = existsSync(KUBE) ? yamlFiles(KUBE).sort() : [];
const ALL: Loaded[] = FILES.flatMap((file) => loadDocs(file).map((obj) => ({ file: relative(ROOT, file), obj })));
/** kustomization.yaml files: overlays and bases (Kustomization) and the components under kubernetes/components (Component). */
const KUSTOMIZE_KINDS = new Set(['Kustomization', 'Component']);
const KUSTOMIZATIONS = ALL.filter((l) => KUSTOMIZE_KINDS.has(l.obj.kind));
const OBJECTS = ALL.filter((l) => !KUSTOMIZE_KINDS.has(l.obj.kind));
/** Prometheus Operator kinds (components/monitoring): no schema here; generator/test/monitoring.test.ts checks them. */
const OPERATOR_KINDS = new Set(['monitoring.coreos.com/v1/ServiceMonitor', 'monitoring.coreos.com/v1/PrometheusRule']);

// ---------------------------------------------------------------------------------------------
// Schema validation

/** kubernetes-models' validators for every apiVersion/kind used; a new kind must be added here. */
const VALIDATORS: Record<string, (o: Obj) => void> = {
  'v1/Namespace': (o) => new Namespace(o as never).validate(),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never).validate(),
  'v1/Service': (o) => new Service(o as never).validate(),
  'v1/Secret': (o) => new Secret(o as never).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o as never).validate(),
  'apps/v1/Deployment': (o) => new Deployment(o as never).validate(),
  'apps/v1/StatefulSet': (o) => new StatefulSet(o as never).validate(),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as never).validate(),
  'networking.k8s.io/v1/NetworkPolicy': (o) => new NetworkPolicy(o as never).validate(),
  'rbac.authorization.k8s.io/v1/ClusterRole': (o) => new ClusterRole(o as never).validate(),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': (o) => new ClusterRoleBinding(o as never).validate(),
  'rbac.authorization.k8s.io/v1/Role': (o) => new Role(o as never).validate(),
  'rbac.authorization.k8s.io/v1/RoleBinding': (o) => new RoleBinding(o as never).validate(),
};

interface AttributeType {
  readonly baseName: string;
  readonly type: string;
}
type Model = { getAttributeTypeMap(): AttributeType[] };
const MODELS = k8s as unknown as Record<string, Model | undefined>;

/**
 * Fields the API does not know, and primitives of the wrong type, walking client-node's model of
 * the object. (kubernetes-models checks types and required fields but ignores unknown fields,
 * which the API server drops or, with kubectl's strict validation, refuses.)
 */
function unknownFields(value: unknown, type: string, path: string, problems: string[]): void {
  const wrong = (what: string): void => void problems.push(`${path}: expected ${what}, got ${JSON.stringify(value)}`);
  if (type === 'any' || type === 'object') return;
  if (type === 'string' || type === 'Date') return void (typeof value === 'string' || wrong(type));
  if (type === 'number') return void (typeof value === 'number' || wrong(type));
  if (type === 'boolean') return void (typeof value === 'boolean' || wrong(type));
  if (type === 'IntOrString') return void (typeof value === 'string' || typeof value === 'number' || wrong(type));
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return wrong('a list');
    value.forEach((item, i) => unknownFields(item, array[1]!, `${path}[${i}]`, problems));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (map) {
    if (!isObject) return wrong('a map');
    for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}.${k}`, problems);
    return;
  }
  const model = MODELS[type];
  if (model === undefined || typeof model.getAttributeTypeMap !== 'function') return void problems.push(`${path}: no client-node model ${type}`);
  if (!isObject) return wrong(`an object (${type})`);
  const attrs = model.getAttributeTypeMap();
  for (const [k, v] of Object.entries(value)) {
    const attr = attrs.find((a) => a.baseName === k);
    if (attr === undefined) problems.push(`${path}.${k}: unknown field of ${type}`);
    else unknownFields(v, attr.type, `${path}.${k}`, problems);
  }
}

function modelName(obj: Obj): string {
  const version = String(obj.apiVersion).split('/').pop() ?? '';
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
}

// ---------------------------------------------------------------------------------------------
// A small kustomize: resources (files and directories), components, `$patch: delete` patches, JSON
// 6902 `add` patches, and images. Anything else fails the test, so the manifests stay within what it
// models. As in kustomize, a Kustomization collects its resources, then applies its components in
// order (each adds its own resources and patches everything collected so far), then its own
// patches and images.

interface Kustomization {
  kind?: string;
  resources?: string[];
  components?: string[];
  patches?: { target?: { kind?: string; name?: string }; patch?: string; path?: string }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  [key: string]: unknown;
}
const KNOWN_KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'images']);

function readKustomization(dir: string): Kustomization {
  return parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'), { version: '1.1' }) as Kustomization;
}

/** A Kustomization's objects; `collected` is what a Component is applied to (its parent's objects so far). */
function render(dir: string, collected?: Obj[]): Obj[] {
  const k = readKustomization(dir);
  const unknown = Object.keys(k).filter((f) => !KNOWN_KUSTOMIZATION_FIELDS.has(f));
  if (unknown.length > 0) throw new Error(`${relative(ROOT, dir)}: kustomization fields this test does not model: ${unknown.join(', ')}`);
  const component = k.kind === 'Component';
  expect(component, `${relative(ROOT, dir)}: a ${k.kind} ${component ? 'is only used as a component' : 'is not used as a component'}`).toBe(collected !== undefined);
  let objs: Obj[] = [
    ...(collected ?? []),
    ...(k.resources ?? []).flatMap((r) => {
      const path = resolve(dir, r);
      return statSync(path).isDirectory() ? render(path) : loadDocs(path);
    }),
  ];
  for (const c of k.components ?? []) objs = render(resolve(dir, c), objs);
  for (const p of k.patches ?? []) {
    if (p.patch === undefined) throw new Error('only inline patches are modelled');
    const body = parseYaml(p.patch, { version: '1.1' }) as unknown;
    const matches = (o: Obj): boolean => (p.target?.kind ?? o.kind) === o.kind && (p.target?.name ?? o.metadata?.name) === o.metadata?.name;
    if (Array.isArray(body)) {
      const hits = objs.filter(matches);
      expect(hits.length, `patch target ${JSON.stringify(p.target)}`).toBeGreaterThan(0);
      for (const o of hits) for (const op of body as { op: string; path: string; value: unknown }[]) jsonPatchAdd(o, op);
    } else if ((body as Obj)['$patch'] === 'delete') {
      const before = objs.length;
      objs = objs.filter((o) => !(o.kind === (body as Obj).kind && o.metadata?.name === (body as Obj).metadata?.name));
      expect(objs.length, `delete patch ${JSON.stringify(p.target)} removes something`).toBeLessThan(before);
    } else {
      throw new Error(`unmodelled patch ${p.patch}`);
    }
  }
  for (const image of k.images ?? []) {
    for (const c of objs.flatMap(podContainers)) {
      const [name] = String(c.image).split(':');
      if (name === image.name) c.image = `${image.newName ?? name}:${image.newTag ?? String(c.image).split(':')[1]}`;
    }
  }
  return objs;
}

function jsonPatchAdd(target: Obj, op: { op: string; path: string; value: unknown }): void {
  if (op.op !== 'add') throw new Error(`unmodelled JSON patch op ${op.op}`);
  const parts = op.path.split('/').slice(1);
  const last = parts.pop()!;
  let at: any = target;
  for (const part of parts) {
    at = at[part];
    if (at === undefined) throw new Error(`JSON patch path ${op.path} does not exist`);
  }
  if (Array.isArray(at)) {
    if (last === '-') at.push(op.value);
    else at.splice(Number(last), 0, op.value);
  } else {
    at[last] = op.value;
  }
}

// ---------------------------------------------------------------------------------------------
// Pods

function podSpec(o: Obj): Obj | undefined {
  return ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind) ? o.spec?.template?.spec : undefined;
}
function podContainers(o: Obj): Obj[] {
  const spec = podSpec(o);
  return spec === undefined ? [] : [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}
function pgrouteDeployment(objs: Obj[]): Obj {
  const d = objs.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'pgroute');
  if (d === undefined) throw new Error('no Deployment pgroute');
  return d;
}
function container(d: Obj, name: string): Obj {
  const c = (podSpec(d)?.containers ?? []).find((x: Obj) => x.name === name);
  if (c === undefined) throw new Error(`no container ${name}`);
  return c;
}
/** The value of --flag=value or --flag value in an argument list. */
function flag(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i]!.startsWith(`${name}=`)) return args[i]!.slice(name.length + 1);
  }
  return undefined;
}
function probes(c: Obj): [string, Obj][] {
  return (['startupProbe', 'readinessProbe', 'livenessProbe'] as const).filter((p) => c[p] !== undefined).map((p) => [p, c[p]]);
}

// ---------------------------------------------------------------------------------------------
// What the Kubernetes source calls, read from its code

/** CoreV1Api methods and the RBAC verb/resource each needs. A method not listed fails the test. */
const API_METHODS: Record<string, { verb: string; resource: string; clusterWide?: boolean }> = {
  listServiceForAllNamespaces: { verb: 'list', resource: 'services', clusterWide: true },
  listNamespacedService: { verb: 'list', resource: 'services' },
  // Namespaces are cluster-scoped: a list is a cluster-scope request even with fieldSelector
  // metadata.name=<ns> (which RBAC then authorizes by that name, so resourceNames can narrow it).
  listNamespace: { verb: 'list', resource: 'namespaces', clusterWide: true },
  readNamespacedService: { verb: 'get', resource: 'services' },
  readNamespacedSecret: { verb: 'get', resource: 'secrets' },
  createNamespacedSecret: { verb: 'create', resource: 'secrets' },
  replaceNamespacedSecret: { verb: 'update', resource: 'secrets' },
  patchNamespacedSecret: { verb: 'patch', resource: 'secrets' },
  readNamespacedConfigMap: { verb: 'get', resource: 'configmaps' },
  replaceNamespacedConfigMap: { verb: 'update', resource: 'configmaps' },
};

function sourceFiles(): string[] {
  const dir = join(ROOT, 'generator', 'src', 'sources');
  const top = readdirSync(dir).filter((f) => /^kubernetes.*\.ts$/.test(f)).map((f) => join(dir, f));
  const sub = join(dir, 'kubernetes');
  return [...top, ...(existsSync(sub) ? yamlFilesOrTs(sub) : [])];
}
function yamlFilesOrTs(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? yamlFilesOrTs(path) : name.endsWith('.ts') ? [path] : [];
  });
}
function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
}

/** What only --kube-ownership=declared calls (the Namespace informers). */
const DECLARED_ONLY = join(ROOT, 'generator', 'src', 'sources', 'kubernetes', 'namespaces.ts');

/** The replicas' EndpointSlice watcher (--kube-peers-service) and the Role that grants what it calls. */
const PEERS_WATCHER = join(ROOT, 'generator', 'src', 'replicas', 'kubernetes-peers.ts');
const PEERS_ROLE = 'pgroute-peers-reader';

/** What the EndpointSlice watcher calls, derived from its code as neededAccess does for the source. */
function peersAccess(): Set<string> {
  const code = stripComments(readFileSync(PEERS_WATCHER, 'utf8'));
  const clients = [...code.matchAll(/makeApiClient\((\w+)\)/g)].map((m) => m[1]);
  expect(clients).toEqual(['DiscoveryV1Api']);
  const rules = new Set<string>();
  for (const m of code.matchAll(/\.((?:list|read|create|replace|patch|delete)[A-Z]\w*)\(/g)) {
    expect(m[1], 'the watcher lists the EndpointSlices of one namespace').toBe('listNamespacedEndpointSlice');
    rules.add('discovery.k8s.io/endpointslices:list');
  }
  if (/\bnew (ListWatch|TimedWatch|Watch)\b/.test(code)) {
    expect(code).toMatch(/`\/apis\/discovery\.k8s\.io\/v1\/namespaces\/\$\{namespace\}\/endpointslices`/);
    rules.add('discovery.k8s.io/endpointslices:watch');
  }
  return rules;
}

/** The access switch's durable store (--access-configmap): RBAC on the one ConfigMap it names. */
const ACCESS_STORE = join(ROOT, 'generator', 'src', 'replicas', 'access-configmap.ts');
const ACCESS_ROLE = 'pgroute-access-store';

/** The TLS Secret store (--tls-secret): its calls need RBAC on the one Secret it names. */
const SECRET_STORE = join(ROOT, 'generator', 'src', 'tls', 'secret-store.ts');

/** "apiGroup/resource:verb" for everything these files call, and whether any of it is cluster-wide. */
function neededAccess(files: readonly string[] = sourceFiles()): { rules: Set<string>; clusterWide: boolean } {
  const rules = new Set<string>();
  let clusterWide = false;
  for (const file of files) {
    const code = stripComments(readFileSync(file, 'utf8'));
    for (const m of code.matchAll(/makeApiClient\((\w+)\)/g)) expect(m[1], `${relative(ROOT, file)} uses an API client the test does not model`).toBe('CoreV1Api');
    for (const m of code.matchAll(/\.((?:list|read|create|replace|patch|delete|connect)[A-Z]\w*)\(/g)) {
      const method = API_METHODS[m[1]!];
      if (method === undefined) throw new Error(`${relative(ROOT, file)} calls ${m[1]}: add it to API_METHODS with the RBAC it needs`);
      rules.add(`core/${method.resource}:${method.verb}`);
      if (method.clusterWide) clusterWide = true;
    }
    // A ListWatch (or Watch) watches the collection paths named in the file.
    if (/\bnew (ListWatch|TimedWatch|Watch)\b|extends Watch\b/.test(code)) {
      for (const m of code.matchAll(/['`]\/api\/v1\/(namespaces\/\$\{[^}]+\}\/)?([a-z]+)['`]/g)) {
        rules.add(`core/${m[2]}:watch`);
        if (m[1] === undefined) clusterWide = true;
      }
    }
  }
  return { rules, clusterWide };
}

/**
 * "apiGroup/resource:verb", or "…:verb@name" for a rule limited by resourceNames (allowed on
 * secrets only: the one Secret --tls-secret names).
 */
function grantedAccess(role: Obj): Set<string> {
  const out = new Set<string>();
  for (const rule of role.rules ?? []) {
    if (rule.resourceNames !== undefined) expect([['secrets'], ['namespaces'], ['configmaps']], 'resourceNames only limit the TLS Secret, the watched Namespaces or the access ConfigMap').toContainEqual(rule.resources);
    expect(rule.nonResourceURLs, 'no non-resource URLs are needed').toBeUndefined();
    for (const g of rule.apiGroups ?? []) {
      for (const r of rule.resources ?? []) {
        for (const v of rule.verbs ?? []) {
          const base = `${g === '' ? 'core' : g}/${r}:${v}`;
          if (rule.resourceNames === undefined) out.add(base);
          else for (const n of rule.resourceNames as string[]) out.add(`${base}@${n}`);
        }
      }
    }
  }
  return out;
}

/** Whether pgroute runs with --kube-ownership=declared (flag or environment) in a rendering. */
function declaredOwnership(objs: Obj[]): boolean {
  const c = container(pgrouteDeployment(objs), 'pgroute');
  const env = (c.env ?? []).find((e: Obj) => e.name === 'PGROUTE_KUBE_OWNERSHIP')?.value;
  return (flag(c.args, '--kube-ownership') ?? env ?? 'first-claim') === 'declared';
}

/** The Secret pgroute's --tls-secret names in a rendering, if any. */
function tlsSecretOf(objs: Obj[]): { namespace: string; name: string } | undefined {
  const value = flag(container(pgrouteDeployment(objs), 'pgroute').args, '--tls-secret');
  if (value === undefined) return undefined;
  const [namespace, name] = value.split('/');
  return { namespace: namespace!, name: name! };
}

// ---------------------------------------------------------------------------------------------

const BASE = join(KUBE, 'base');
const OVERLAYS = existsSync(join(KUBE, 'overlays')) ? readdirSync(join(KUBE, 'overlays')).map((d) => join(KUBE, 'overlays', d)) : [];
const RENDERS: [string, () => Obj[]][] = [
  ['base', () => render(BASE)],
  ...OVERLAYS.map((d): [string, () => Obj[]] => [relative(KUBE, d), () => render(d)]),
];

describe('kubernetes manifests', () => {
  it('are there: base, the single-namespace, tls-auto and declared-ownership components and overlays, the example tenant and its Namespace', () => {
    for (const f of ['base/kustomization.yaml', 'base/networkpolicy.yaml', 'components/single-namespace/kustomization.yaml', 'components/tls-auto/kustomization.yaml', 'components/declared-ownership/kustomization.yaml', 'overlays/single-namespace/kustomization.yaml', 'overlays/tls-auto/kustomization.yaml', 'overlays/declared-ownership/kustomization.yaml', 'overlays/single-namespace-tls-declared/kustomization.yaml', 'components/peers-tls/kustomization.yaml', 'overlays/peers-tls/kustomization.yaml', 'examples/tenant-acme.yaml', 'examples/tenants-namespace.yaml']) {
      expect(existsSync(join(KUBE, f)), f).toBe(true);
    }
    expect(OBJECTS.length).toBeGreaterThan(8);
  });

  it('validate against the Kubernetes schemas, with no unknown fields', () => {
    const problems: string[] = [];
    for (const { file, obj } of OBJECTS) {
      const key = `${obj.apiVersion}/${obj.kind}`;
      if (OPERATOR_KINDS.has(key)) continue;
      const validate = VALIDATORS[key];
      if (validate === undefined) {
        problems.push(`${file}: ${key} has no validator in this test`);
        continue;
      }
      try {
        validate(obj);
      } catch (err) {
        problems.push(`${file} ${obj.kind}/${obj.metadata?.name}: ${(err as Error).message}`);
      }
      unknownFields(obj, modelName(obj), `${file} ${obj.kind}/${obj.metadata?.name}`, problems);
    }
    expect(problems).toEqual([]);
  });

  it('the strict field check does catch a misspelt field', () => {
    const problems: string[] = [];
    const d = structuredClone(pgrouteDeployment(render(BASE)));
    d.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    unknownFields(d, modelName(d), 'd', problems);
    expect(problems).toEqual(['d.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem: unknown field of V1SecurityContext']);
  });

  it('each kustomization lists every YAML file beside it, and only files that exist', () => {
    expect(KUSTOMIZATIONS.length).toBeGreaterThanOrEqual(2);
    for (const { file } of KUSTOMIZATIONS) {
      const dir = dirname(join(ROOT, file));
      const k = readKustomization(dir);
      for (const r of k.resources ?? []) {
        const path = resolve(dir, r);
        expect(existsSync(path), `${file}: ${r} exists`).toBe(true);
        if (statSync(path).isDirectory()) expect(readKustomization(path).kind, `${file}: ${r} is a kustomization`).toBe('Kustomization');
      }
      for (const c of k.components ?? []) {
        expect(relative(KUBE, resolve(dir, c)).startsWith('components/'), `${file}: ${c} is under kubernetes/components`).toBe(true);
        expect(readKustomization(resolve(dir, c)).kind, `${file}: ${c} is a Component`).toBe('Component');
      }
      const beside = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
      const listed = (k.resources ?? []).filter((r) => !r.includes('/')).sort();
      expect(listed, file).toEqual(beside);
    }
  });

  it.each(RENDERS)('%s renders to unique objects, every pod image covered by the images list', (_name, build) => {
    const objs = build();
    const keys = objs.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    const images = readKustomization(BASE).images!.map((i) => i.name);
    const used = new Set(podContainers(pgrouteDeployment(objs)).map((c) => String(c.image).split(':')[0]));
    expect([...used].sort()).toEqual([...images].sort());
  });

  it('RBAC grants exactly what the Kubernetes source calls (list + watch on Services), nothing else', () => {
    // What every mode calls; the Namespace calls only --kube-ownership=declared makes are below.
    const needed = neededAccess(sourceFiles().filter((f) => f !== DECLARED_ONLY));
    // The derivation must find the calls it knows are there (guards against a silent regex miss).
    expect([...needed.rules].sort()).toEqual(['core/services:list', 'core/services:watch']);
    expect(needed.clusterWide).toBe(true);
    expect([...needed.rules].some((r) => r.startsWith('core/secrets'))).toBe(false);
    expect(sourceFiles()).toContain(DECLARED_ONLY);
    const declared = neededAccess([DECLARED_ONLY]).rules;

    const base = render(BASE);
    expect(tlsSecretOf(base)).toBeUndefined();
    const clusterRoles = base.filter((o) => o.kind === 'ClusterRole');
    expect(clusterRoles.map((r) => r.metadata.name)).toEqual(['pgroute-service-reader']);
    expect(grantedAccess(clusterRoles[0]!)).toEqual(needed.rules);
    expect(base.filter((o) => o.kind === 'Role').map((r) => r.metadata.name).sort()).toEqual([ACCESS_ROLE, PEERS_ROLE]);

    const single = render(join(KUBE, 'overlays', 'single-namespace'));
    expect(single.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    const roles = single.filter((o) => o.kind === 'Role' && o.metadata.name !== PEERS_ROLE && o.metadata.name !== ACCESS_ROLE);
    expect(roles.length).toBeGreaterThan(0);
    const args: string[] = container(pgrouteDeployment(single), 'pgroute').args;
    const watched = args.filter((a) => a.startsWith('--namespace=')).map((a) => a.slice('--namespace='.length));
    expect(watched.sort()).toEqual(roles.map((r) => r.metadata.namespace).sort());
    for (const role of roles) expect(grantedAccess(role)).toEqual(needed.rules);

    // Every grant anywhere (examples included) is one of these, or one the TLS Secret store needs
    // on a Secret named by resourceNames (checked per overlay below).
    const secretStore = neededAccess([SECRET_STORE]).rules;
    const peers = peersAccess();
    const accessStore = neededAccess([ACCESS_STORE]).rules;
    for (const { obj } of OBJECTS.filter((l) => l.obj.kind === 'Role' || l.obj.kind === 'ClusterRole')) {
      for (const g of grantedAccess(obj)) expect(needed.rules.has(g) || declared.has(g.split('@')[0]!) || secretStore.has(g.split('@')[0]!) || (peers.has(g) && obj.metadata.name === PEERS_ROLE) || (accessStore.has(g.split('@')[0]!) && obj.metadata.name === ACCESS_ROLE), g).toBe(true);
    }
  });

  it.each(RENDERS)('%s: the replicas read the EndpointSlices of pgroute\'s namespace (list + watch) and nothing else, in that namespace only', (_name, build) => {
    // Derived from the watcher's code: the one API client and call it makes, and the path it watches.
    const peers = peersAccess();
    expect([...peers].sort()).toEqual(['discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
    const objs = build();
    const d = pgrouteDeployment(objs);
    const args: string[] = container(d, 'pgroute').args;
    expect(flag(args, '--kube-peers-service')).toBe('pgroute');
    expect(objs.some((o) => o.kind === 'Service' && o.metadata.name === 'pgroute' && o.metadata.namespace === d.metadata.namespace)).toBe(true);
    const granting = objs.filter((o) => (o.kind === 'Role' || o.kind === 'ClusterRole') && [...grantedAccess(o)].some((g) => g.startsWith('discovery.k8s.io/')));
    expect(granting.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`)).toEqual([`Role/${d.metadata.namespace}/${PEERS_ROLE}`]);
    expect(grantedAccess(granting[0]!)).toEqual(peers);
    // Its peer name is the pod's name, as the EndpointSlices name it; HAProxy listens on the peers port.
    const env = (container(d, 'pgroute').env ?? []).find((e: Obj) => e.name === 'PGROUTE_NAME');
    expect(env?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    const port = Number(flag(args, '--kube-peers-port') ?? 6712);
    expect((container(d, 'haproxy').ports ?? []).some((p: Obj) => p.containerPort === port && p.name === 'peers')).toBe(true);
  });

  it('declared ownership reads Namespaces (list + watch, cluster-scoped) and nothing else', () => {
    const declared = neededAccess([DECLARED_ONLY]);
    expect([...declared.rules].sort()).toEqual(['core/namespaces:list', 'core/namespaces:watch']);
    expect(declared.clusterWide).toBe(true);
    // And it is the only code that touches Namespaces.
    const others = neededAccess(sourceFiles().filter((f) => f !== DECLARED_ONLY));
    expect([...others.rules].filter((r) => r.startsWith('core/namespaces:'))).toEqual([]);
  });

  it.each(RENDERS)('%s: namespaces are granted exactly where --kube-ownership=declared needs them', (_name, build) => {
    const objs = build();
    const needed = [...neededAccess([DECLARED_ONLY]).rules].sort();
    const namespaceGrants = (o: Obj): string[] => [...grantedAccess(o)].filter((g) => g.startsWith('core/namespaces:')).sort();
    const roles = objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
    // A Role cannot authorize a list of a cluster-scoped resource: namespaces only in ClusterRoles.
    for (const r of roles.filter((o) => o.kind === 'Role')) expect(namespaceGrants(r), `Role ${r.metadata.namespace}/${r.metadata.name}`).toEqual([]);
    const granting = roles.filter((r) => namespaceGrants(r).length > 0);
    if (!declaredOwnership(objs)) {
      expect(granting).toEqual([]);
      return;
    }
    const args: string[] = container(pgrouteDeployment(objs), 'pgroute').args;
    const watched = args.filter((a) => a.startsWith('--namespace=')).map((a) => a.slice('--namespace='.length)).sort();
    // Every namespace: plain list + watch; --namespace: the same, limited to those names.
    const expected = watched.length === 0 ? needed : watched.flatMap((ns) => needed.map((r) => `${r}@${ns}`)).sort();
    expect(granting.flatMap(namespaceGrants).sort()).toEqual(expected);
    for (const r of granting) {
      const binding = objs.find((o) => o.kind === 'ClusterRoleBinding' && o.roleRef.kind === 'ClusterRole' && o.roleRef.name === r.metadata.name);
      expect(binding?.subjects, `ClusterRoleBinding for ${r.metadata.name}`).toEqual([{ kind: 'ServiceAccount', name: 'pgroute', namespace: 'pgroute' }]);
    }
    // The Services grants stay the base's.
    const serviceGrants = (list: Obj[]): string[] => list.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((o) => [...grantedAccess(o)].filter((g) => g.startsWith('core/services:'))).sort();
    expect(serviceGrants(objs)).toEqual(serviceGrants(render(BASE)));
  });

  it('the overlays with the declared-ownership component turn declared ownership on, and the base and other overlays do not', () => {
    const on = RENDERS.filter(([, build]) => declaredOwnership(build())).map(([name]) => name);
    const withComponent = OVERLAYS.filter((d) => (readKustomization(d).components ?? []).some((c) => c.endsWith('components/declared-ownership'))).map((d) => relative(KUBE, d));
    expect(on.sort()).toEqual(withComponent.sort());
    expect(on).toContain('overlays/declared-ownership');
  });

  it('components compose: one overlay with single-namespace, tls-auto and declared-ownership together', () => {
    const objs = render(join(KUBE, 'overlays', 'single-namespace-tls-declared'));
    const args: string[] = container(pgrouteDeployment(objs), 'pgroute').args;
    expect(flag(args, '--namespace')).toBe('tenants');
    expect(flag(args, '--tls')).toBe('auto');
    expect(flag(args, '--kube-ownership')).toBe('declared');
    expect(tlsSecretOf(objs)).toEqual({ namespace: 'pgroute', name: 'pgroute-tls' });
    // Each component's own objects are there, and the base's cluster-wide Service access is not.
    for (const key of ['Role/tenants/pgroute-service-reader', 'Secret/pgroute/pgroute-tls', 'Role/pgroute/pgroute-tls-secret', 'ClusterRole//pgroute-namespace-reader']) {
      expect(objs.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`)).toContain(key);
    }
    expect(objs.filter((o) => o.metadata?.name === 'pgroute-service-reader' && o.kind.startsWith('Cluster'))).toEqual([]);
    // Every component is used by at least one overlay, so each is rendered (and checked) somewhere.
    const used = new Set(OVERLAYS.flatMap((d) => (readKustomization(d).components ?? []).map((c) => resolve(d, c))));
    // components/monitoring needs the Prometheus Operator's kinds, so no overlay takes it: monitoring.test.ts renders it with the base.
    for (const c of readdirSync(join(KUBE, 'components')).filter((c) => c !== 'monitoring')) expect(used.has(join(KUBE, 'components', c)), `components/${c} is used by an overlay`).toBe(true);
  });

  it('the peers-tls overlay: both containers mount the Secret at one path, and the variables name its files as HAProxy reads them', () => {
    const d = pgrouteDeployment(render(join(KUBE, 'overlays', 'peers-tls')));
    const env = Object.fromEntries((container(d, 'pgroute').env ?? []).map((e: Obj) => [e.name, e.value]));
    // The variables the CLI reads for --peers-tls-cert and --peers-tls-ca (cli/settings-options.ts).
    const cert = env[ENV['--peers-tls-cert'] ?? ''];
    const ca = env[ENV['--peers-tls-ca'] ?? ''];
    expect([cert, ca].every((v) => typeof v === 'string' && v.startsWith('/'))).toBe(true);
    const volume = podSpec(d)?.volumes.find((v: Obj) => v.name === 'peers-tls');
    expect(volume?.secret.secretName).toBe('pgroute-peers-tls');
    const mounts = ['pgroute', 'haproxy'].map((c) => (container(d, c).volumeMounts ?? []).find((m: Obj) => m.name === 'peers-tls'));
    // The pgroute container renders and checks haproxy.cfg with these paths; HAProxy reads them.
    expect(mounts.map((m) => m?.mountPath)).toEqual([mounts[0]?.mountPath, mounts[0]?.mountPath]);
    expect(mounts.every((m) => m?.readOnly === true)).toBe(true);
    // cert-manager's keys; the key where HAProxy looks for one its certificate file lacks (<file>.key).
    const files = Object.fromEntries(volume.secret.items.map((i: Obj) => [i.key, `${mounts[0]?.mountPath}/${i.path}`]));
    expect(files).toEqual({ 'tls.crt': cert, 'tls.key': `${cert}.key`, 'ca.crt': ca });
    // Readable by the pods' group (the containers run as 10001:10001, fsGroup 10001), not by others.
    expect(volume.secret.defaultMode & 0o007).toBe(0);
    expect(podSpec(d)?.securityContext.fsGroup).toBe(podSpec(d)?.securityContext.runAsGroup);
  });

  it('the access store calls get and update on configmaps (and nothing cluster-wide)', () => {
    const needed = neededAccess([ACCESS_STORE]);
    expect([...needed.rules].sort()).toEqual(['core/configmaps:get', 'core/configmaps:update']);
    expect(needed.clusterWide).toBe(false);
  });

  it.each(RENDERS)('%s: the access switch is kept in one pre-created ConfigMap, granted get + update on it by name alone', (_name, build) => {
    const objs = build();
    const d = pgrouteDeployment(objs);
    const c = container(d, 'pgroute');
    const value = flag(c.args, '--access-configmap');
    expect(value).toBe('pgroute-access');
    const ns = d.metadata.namespace;
    // Pre-created without data: RBAC cannot limit create to one name, and a re-apply must not reset it.
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === ns && o.metadata.name === value);
    expect(cm, `the ConfigMap ${ns}/${value} is pre-created`).toBeDefined();
    expect(cm!.data).toBeUndefined();
    expect(cm!.binaryData).toBeUndefined();
    const granting = objs.filter((o) => (o.kind === 'Role' || o.kind === 'ClusterRole') && [...grantedAccess(o)].some((g) => g.startsWith('core/configmaps:')));
    expect(granting.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`)).toEqual([`Role/${ns}/${ACCESS_ROLE}`]);
    expect([...grantedAccess(granting[0]!)].sort()).toEqual([...neededAccess([ACCESS_STORE]).rules].map((r) => `${r}@${value}`).sort());
    const binding = objs.find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === ns && o.roleRef.name === ACCESS_ROLE);
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pgroute', namespace: 'pgroute' }]);
    // `kubectl exec ... pgroute tenant disable` finds the state dir the watcher uses.
    expect((c.env ?? []).find((e: Obj) => e.name === 'PGROUTE_STATE_DIR')?.value).toBe(flag(c.args, '--state-dir'));
  });

  it('the TLS Secret store calls get, create and update on secrets (and nothing cluster-wide)', () => {
    const needed = neededAccess([SECRET_STORE]);
    expect([...needed.rules].sort()).toEqual(['core/secrets:create', 'core/secrets:get', 'core/secrets:update']);
    expect(needed.clusterWide).toBe(false);
  });

  it.each(RENDERS)('%s: secrets are granted exactly where --tls-secret needs them, on that Secret only', (_name, build) => {
    const objs = build();
    const ref = tlsSecretOf(objs);
    const secretGrants = (o: Obj): string[] => [...grantedAccess(o)].filter((g) => g.startsWith('core/secrets:'));
    const roles = objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
    if (ref === undefined) {
      for (const r of roles) expect(secretGrants(r), `${r.kind}/${r.metadata.name}`).toEqual([]);
      return;
    }
    const args: string[] = container(pgrouteDeployment(objs), 'pgroute').args;
    expect(flag(args, '--tls')).toBe('auto');
    // One certificate for every replica: the names must be given (the default includes the pod's host name).
    expect(args.includes('--tls-san') || args.some((a) => a.startsWith('--tls-san='))).toBe(true);
    // create is needed only when the Secret does not exist; RBAC cannot limit create to one name,
    // so the Secret is pre-created (empty, no data that a re-apply would reset) and create is not granted.
    const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.namespace === ref.namespace && o.metadata.name === ref.name);
    expect(secret, `the Secret ${ref.namespace}/${ref.name} is pre-created`).toBeDefined();
    expect(secret!.type ?? 'Opaque').toBe('Opaque');
    expect(secret!.data).toBeUndefined();
    expect(secret!.stringData).toBeUndefined();
    const needed = [...neededAccess([SECRET_STORE]).rules].filter((r) => r !== 'core/secrets:create').map((r) => `${r}@${ref.name}`).sort();
    expect(needed).toEqual([`core/secrets:get@${ref.name}`, `core/secrets:update@${ref.name}`]);
    const granting = roles.filter((r) => secretGrants(r).length > 0);
    expect(granting.map((r) => `${r.kind}/${r.metadata.namespace}`)).toEqual([`Role/${ref.namespace}`]);
    expect(secretGrants(granting[0]!).sort()).toEqual(needed);
    const binding = objs.find((o) => o.kind === 'RoleBinding' && o.metadata.namespace === ref.namespace && o.roleRef.name === granting[0]!.metadata.name);
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pgroute', namespace: 'pgroute' }]);
    // The other grants stay the base's (Namespace grants, which a composed declared-ownership adds,
    // are checked where declared ownership is).
    const base = render(BASE);
    const serviceGrants = (list: Obj[]): string[] => list.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((o) => [...grantedAccess(o)].filter((g) => !g.startsWith('core/secrets:') && !g.startsWith('core/namespaces:'))).sort();
    expect(serviceGrants(objs)).toEqual(serviceGrants(base));
  });

  it.each(RENDERS)('%s: bindings name the pgroute ServiceAccount and roles that exist', (_name, build) => {
    const objs = build();
    const sa = objs.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'pgroute');
    expect(sa).toBeDefined();
    const d = pgrouteDeployment(objs);
    expect(podSpec(d)!.serviceAccountName).toBe('pgroute');
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pgroute', namespace: sa!.metadata.namespace }]);
      const roleKind = b.roleRef.kind;
      const ns = roleKind === 'Role' ? b.metadata.namespace : undefined;
      expect(objs.some((o) => o.kind === roleKind && o.metadata.name === b.roleRef.name && o.metadata.namespace === ns), `${b.kind}/${b.metadata.name} -> ${roleKind}/${b.roleRef.name}`).toBe(true);
    }
  });

  it.each(RENDERS)('%s: an ingress NetworkPolicy admits the peers port from pgroute pods alone, the public port and metrics from anywhere', (_name, build) => {
    const objs = build();
    const d = pgrouteDeployment(objs);
    const podLabels: Obj = d.spec.template.metadata.labels;
    const policy = objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'pgroute-ingress');
    expect(policy).toBeDefined();
    expect(policy!.metadata.namespace).toBe(d.metadata.namespace);
    expect(Object.entries(policy!.spec.podSelector.matchLabels).every(([k, v]) => podLabels[k] === v)).toBe(true);
    expect(policy!.spec.policyTypes).toEqual(['Ingress']);
    // Every port the pod listens on is named in exactly one rule (an unnamed one would be closed).
    const containerPorts = new Map<string, number>((d.spec.template.spec.containers as Obj[]).flatMap((c) => ((c.ports ?? []) as Obj[]).map((p) => [p.name as string, p.containerPort as number] as const)));
    expect([...containerPorts.keys()].sort()).toEqual(['metrics', 'peers', 'postgres']);
    const rules: Obj[] = policy!.spec.ingress;
    const named = (rule: Obj): string[] => (rule.ports as Obj[]).map((p) => String(p.port)).sort();
    const open = rules.filter((r) => r.from === undefined);
    expect(open.map(named)).toEqual([['metrics', 'postgres']]);
    const peers = rules.filter((r) => r.from !== undefined);
    expect(peers.map(named)).toEqual([['peers']]);
    expect(peers[0]!.from).toEqual([{ podSelector: { matchLabels: podLabels } }]);
    // The peers port the replicas are told to use is the one the policy closes to strangers.
    const args: string[] = container(d, 'pgroute').args;
    expect(containerPorts.get('peers')).toBe(Number(flag(args, '--kube-peers-port') ?? 6712));
  });

  it.each(RENDERS)('%s: an egress NetworkPolicy limits the pgroute pods to DNS, the API server and the allowed tenant ports', (_name, build) => {
    const objs = build();
    const d = pgrouteDeployment(objs);
    const podLabels: Obj = d.spec.template.metadata.labels;
    const selecting = objs.filter((o) => o.kind === 'NetworkPolicy' && Object.entries(o.spec.podSelector?.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v));
    expect(selecting.map((o) => o.metadata.name).sort()).toEqual(['pgroute-egress', 'pgroute-ingress']);
    const policy = selecting.find((o) => o.metadata.name === 'pgroute-egress')!;
    expect(policy.metadata.namespace).toBe(d.metadata.namespace);
    expect(policy.spec.podSelector.matchExpressions).toBeUndefined();
    // Egress alone: the public port stays open to clients.
    expect(policy.spec.policyTypes).toEqual(['Egress']);
    expect(policy.spec.ingress).toBeUndefined();

    /** A rule's ports as "PROTO low-high"; a rule without ports would allow every port. */
    const portsOf = (rule: Obj): string[] => {
      expect(rule.ports, 'every egress rule names its ports').toBeDefined();
      return (rule.ports as Obj[]).map((p) => {
        expect(typeof p.port, 'numeric ports (a named port means nothing for egress)').toBe('number');
        return `${p.protocol ?? 'TCP'} ${p.port}-${p.endPort ?? p.port}`;
      });
    };
    const rules: Obj[] = policy.spec.egress;
    const byPorts = new Map(rules.map((r) => [portsOf(r).sort().join(','), r]));
    // DNS, to any address (the cluster DNS, or a node-local cache on a link-local address).
    expect(byPorts.get('TCP 53-53,UDP 53-53')?.to).toBeUndefined();
    // The API server: its usual ports.
    const api = byPorts.get('TCP 443-443,TCP 6443-6443');
    expect(api).toBeDefined();
    // The tenant databases: exactly what --kube-allowed-ports (flag, else environment, else the
    // default) lets pgroute route to, read by pgroute's own parser.
    const pg = container(d, 'pgroute');
    const args: string[] = pg.args;
    const flagged = args.filter((a, i) => a.startsWith(`${PORTS_FLAG}=`) || args[i - 1] === PORTS_FLAG).map((a) => a.replace(`${PORTS_FLAG}=`, ''));
    const env = (pg.env ?? []).find((e: Obj) => e.name === PORTS_ENV)?.value;
    const allowed = parseAllowedPorts(flagged.length > 0 ? flagged : env);
    // The other replicas' peers port, to pgroute's own pods alone.
    const peersPort = Number(flag(args, '--kube-peers-port') ?? 6712);
    const peersRule = byPorts.get(`TCP ${peersPort}-${peersPort}`);
    expect(peersRule?.to).toEqual([{ podSelector: { matchLabels: d.spec.template.metadata.labels } }]);
    const tenantRule = [...byPorts.entries()].filter(([k]) => k !== 'TCP 53-53,UDP 53-53' && k !== 'TCP 443-443,TCP 6443-6443' && k !== `TCP ${peersPort}-${peersPort}`);
    expect(tenantRule).toHaveLength(1);
    expect(describePorts(parseAllowedPorts(portsOf(tenantRule[0]![1]).map((p) => p.replace(/^TCP /, '').replace(/^(\d+)-\1$/, '$1'))))).toBe(describePorts(allowed));
    expect(rules).toHaveLength(4);

    // Nowhere link-local (169.254.169.254 is the cloud metadata service) except by DNS's port 53.
    for (const rule of [api!, tenantRule[0]![1]]) {
      expect(rule.to?.length, 'rules other than DNS name their peers').toBeGreaterThan(0);
      for (const peer of rule.to as Obj[]) {
        if (peer.ipBlock === undefined) continue;
        const { cidr, except } = peer.ipBlock as { cidr: string; except?: string[] };
        if (cidr === '0.0.0.0/0') expect(except).toContain('169.254.0.0/16');
        else if (cidr === '::/0') expect(except).toContain('fe80::/10');
        else expect(cidr.startsWith('169.254.') || cidr.toLowerCase().startsWith('fe80:')).toBe(false);
      }
    }
    // And none of the ports a relay is after is open: kubelet, etcd, metadata, HTTP.
    const open = rules.flatMap(portsOf).map((p) => p.split(' ')[1]!.split('-').map(Number) as [number, number]);
    for (const port of [80, 2379, 8080, 10250, 10255]) expect(open.some(([a, b]) => port >= a && port <= b), String(port)).toBe(false);
  });

  it('pods run as non-root, without privilege escalation or capabilities, with seccomp and limits', () => {
    const pods = OBJECTS.filter((l) => podSpec(l.obj) !== undefined);
    expect(pods.length).toBeGreaterThanOrEqual(2);
    for (const { file, obj } of pods) {
      const spec = podSpec(obj)!;
      const where = `${file} ${obj.kind}/${obj.metadata.name}`;
      expect(spec.hostNetwork ?? false, where).toBe(false);
      expect(spec.hostPID ?? false, where).toBe(false);
      expect(spec.hostIPC ?? false, where).toBe(false);
      for (const c of podContainers(obj)) {
        const at = `${where} container ${c.name}`;
        const sc = c.securityContext ?? {};
        const pod = spec.securityContext ?? {};
        expect(sc.runAsNonRoot ?? pod.runAsNonRoot, at).toBe(true);
        expect(sc.runAsUser ?? pod.runAsUser ?? 1, at).not.toBe(0);
        expect(sc.privileged ?? false, at).toBe(false);
        expect(sc.allowPrivilegeEscalation, at).toBe(false);
        expect(sc.readOnlyRootFilesystem, at).toBe(true);
        expect(sc.capabilities?.drop, at).toEqual(['ALL']);
        expect(sc.capabilities?.add, at).toBeUndefined();
        expect((sc.seccompProfile ?? pod.seccompProfile)?.type, at).toBe('RuntimeDefault');
        for (const kind of ['requests', 'limits']) for (const r of ['cpu', 'memory']) expect(c.resources?.[kind]?.[r], `${at} ${kind}.${r}`).toBeDefined();
        expect(c.livenessProbe, `${at} liveness`).toBeDefined();
        expect(c.readinessProbe, `${at} readiness`).toBeDefined();
      }
    }
  });

  it('probes point at ports that exist', () => {
    for (const { file, obj } of OBJECTS.filter((l) => podSpec(l.obj) !== undefined)) {
      for (const c of podContainers(obj)) {
        const ports: Obj[] = c.ports ?? [];
        for (const [kind, p] of probes(c)) {
          const at = `${file} ${obj.metadata.name}/${c.name} ${kind}`;
          const port = p.tcpSocket?.port ?? p.httpGet?.port ?? p.grpc?.port;
          if (port !== undefined) {
            // The kubelet resolves a named port in the probed container itself.
            const found = typeof port === 'string' ? ports.some((x) => x.name === port) : ports.some((x) => x.containerPort === port);
            expect(found, `${at}: port ${port}`).toBe(true);
          } else {
            expect(p.exec?.command, at).toBeDefined();
          }
        }
      }
    }
  });

  it.each(RENDERS)('%s: the pgroute/HAProxy pair agrees on ports, state dir, user, and selectors', (_name, build) => {
    const objs = build();
    const d = pgrouteDeployment(objs);
    const spec = podSpec(d)!;
    expect(spec.containers.map((c: Obj) => c.name)).toEqual(['pgroute', 'haproxy']);
    const pg = container(d, 'pgroute');
    const hap = container(d, 'haproxy');
    const args: string[] = pg.args;
    expect(args[0]).toBe('watch');
    expect(flag(args, '--source')).toBe('kubernetes');
    expect(flag(args, '--agent-host')).toBe('127.0.0.1');
    expect(args.includes('--spawn-haproxy')).toBe(false);

    // The state dir is one emptyDir, mounted where both containers expect it.
    expect(flag(args, '--state-dir')).toBe(STATE_DIR);
    const stateMount = (c: Obj): Obj | undefined => (c.volumeMounts ?? []).find((m: Obj) => m.mountPath === STATE_DIR);
    expect(stateMount(pg)?.name).toBeDefined();
    expect(stateMount(hap)?.name).toBe(stateMount(pg)?.name);
    expect(stateMount(hap)?.readOnly ?? false).toBe(false);
    const volume = (spec.volumes ?? []).find((v: Obj) => v.name === stateMount(pg)?.name);
    expect(volume?.emptyDir).toBeDefined();

    // HAProxy's admin socket is 0600 and pgroute writes the TLS key 0600: one user for both.
    const uid = (c: Obj): unknown => c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
    expect(uid(pg)).toBeDefined();
    expect(uid(hap)).toBe(uid(pg));

    // The public port HAProxy binds is the container port the Service targets.
    const publicPort = Number(flag(args, '--port') ?? 5432);
    const named = (hap.ports ?? []).find((p: Obj) => p.containerPort === publicPort);
    expect(named?.name).toBe('postgres');
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'pgroute');
    expect(svc?.spec.ports.map((p: Obj) => p.targetPort)).toEqual(['postgres']);
    expect(svc?.spec.ports.map((p: Obj) => p.port)).toEqual([5432]);

    // The exec probes ask the agent on the port of --metrics-address: /readyz for readiness
    // (false while starting and draining), /healthz for the others.
    const httpPort = (flag(args, '--metrics-address') ?? '127.0.0.1:6711').split(':').pop();
    for (const [kind, p] of probes(pg)) {
      const script = (p.exec?.command ?? []).join(' ');
      expect(script, kind).toContain(`http://127.0.0.1:${httpPort}/${kind === 'readinessProbe' ? 'readyz' : 'healthz'}`);
    }
    expect(probes(pg).map(([k]) => k).sort()).toEqual(['livenessProbe', 'readinessProbe', 'startupProbe']);

    // The drain fits the grace period: pgroute's delay equals the haproxy preStop's sleep, and the
    // delay plus the drain timeout leave the kubelet's SIGKILL a margin.
    const seconds = (v: string | undefined): number => Number(/^(\d+)s$/.exec(v ?? '')?.[1] ?? NaN);
    const delay = seconds(flag(args, '--drain-delay'));
    const timeout = seconds(flag(args, '--drain-timeout'));
    const preStop: string = (hap.lifecycle?.preStop?.exec?.command ?? []).join(' ');
    expect(preStop).toContain(`sleep ${delay}; kill -USR1 1`);
    expect(preStop).toContain(`[ $i -lt ${timeout} ]`);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(delay + timeout);

    // Selectors: the Deployment's, the Service's and the PDB's all select these pods.
    const labels: Obj = d.spec.template.metadata.labels;
    const selects = (sel: Obj): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(selects(d.spec.selector.matchLabels)).toBe(true);
    expect(selects(svc!.spec.selector)).toBe(true);
    const pdb = objs.find((o) => o.kind === 'PodDisruptionBudget');
    expect(selects(pdb!.spec.selector.matchLabels)).toBe(true);
    expect(pdb!.spec.minAvailable).toBe(1);
    expect(d.spec.replicas).toBe(2);

    // Only the pgroute container holds the API token.
    expect(spec.automountServiceAccountToken).toBe(false);
    const tokenDir = '/var/run/secrets/kubernetes.io/serviceaccount';
    expect((pg.volumeMounts ?? []).some((m: Obj) => m.mountPath === tokenDir)).toBe(true);
    expect((hap.volumeMounts ?? []).some((m: Obj) => m.mountPath === tokenDir)).toBe(false);

    // Every namespaced object lives in the Namespace the base creates, except RBAC in watched namespaces.
    for (const o of objs.filter((x) => x.metadata.namespace !== undefined && x.kind !== 'Role' && x.kind !== 'RoleBinding')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('pgroute');
  });

  it('the example Namespace declares the example tenant: pgroute routes it with declared ownership', () => {
    const services = loadDocs(join(KUBE, 'examples', 'tenant-acme.yaml')).filter((o) => o.kind === 'Service');
    const namespaces = loadDocs(join(KUBE, 'examples', 'tenants-namespace.yaml')).filter((o) => o.kind === 'Namespace');
    expect(namespaces.map((n) => n.metadata.name)).toEqual([...new Set(services.map((s) => s.metadata.namespace))]);
    // kubectl sets creationTimestamp; the example has none.
    const created = services.map((s): ServiceLike => ({ ...s, metadata: { ...s.metadata, creationTimestamp: '2024-01-01T00:00:00Z' } }));
    const view = viewOfServices(created, { address: 'dns', clusterDomain: 'cluster.local' }, { mode: 'declared', namespaces: namespaces as NamespaceLike[] });
    expect(view.snapshot.refused).toEqual([]);
    expect(view.snapshot.tenants.map((r) => r.id)).toEqual(['acme']);
    // Without the annotation, the same Service is refused.
    const bare = viewOfServices(created, { address: 'dns', clusterDomain: 'cluster.local' }, { mode: 'declared', namespaces: [{ metadata: { name: 'tenants' } }] });
    expect(bare.snapshot.tenants).toEqual([]);
    expect(bare.snapshot.refused.map((r) => r.reason)).toEqual(['tenant acme is not declared for namespace tenants (annotation pgroute.io/tenants on Namespace tenants)']);
  });

  it('the example tenant is a Service pgroute reads as tenant acme', () => {
    const objs = loadDocs(join(KUBE, 'examples', 'tenant-acme.yaml'));
    const svc = objs.find((o) => o.kind === 'Service');
    expect(svc?.metadata.labels['pgroute.tenant']).toBe('acme');
    expect(svc?.spec.ports.find((p: Obj) => p.name === 'postgres')?.port).toBe(5432);
    const sts = objs.find((o) => o.kind === 'StatefulSet');
    const labels = sts?.spec.template.metadata.labels;
    expect(Object.entries(svc!.spec.selector).every(([k, v]) => labels[k] === v)).toBe(true);
    const pgPorts = podContainers(sts!).flatMap((c) => c.ports ?? []);
    expect(pgPorts.some((p: Obj) => p.name === svc!.spec.ports[0].targetPort)).toBe(true);
  });

  it.each(RENDERS)("%s: pgroute's arguments are accepted by the real CLI", (_name, build) => {
    const args: string[] = container(pgrouteDeployment(build()), 'pgroute').args;
    // Values: the CLI's own flag definitions and validation (ports, durations, counts).
    const cmd = addDeploymentFlags(new Command('watch').allowUnknownOption().allowExcessArguments().exitOverride(), 'unix');
    cmd.parse(args.slice(1), { from: 'user' });
    const { settings, fallbackListener, metricsAddress } = settingsFromFlags(cmd.opts<DeploymentFlags>());
    expect(settings.stateDir).toBe(STATE_DIR);
    expect(settings.agent.servers).toEqual([{ host: '127.0.0.1', port: 6710 }]);
    expect(fallbackListener.port).toBe(5432);
    // The metrics address is the pod's, for a Prometheus in another pod (docs/monitoring.md).
    expect(metricsAddress).toEqual({ host: '0.0.0.0', port: 6711 });

    // Names and choices: the built CLI. `--help` would hide an unknown option (commander prints
    // help first), so a stray operand goes first instead: commander then reports "too many
    // arguments" only after every option was accepted, and unknown options or bad choices first.
    expect(existsSync(CLI), `${CLI} is missing: run npm run build`).toBe(true);
    const run = spawnSync(process.execPath, [CLI, args[0]!, 'stray-operand', ...args.slice(1)], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, PGROUTE_LOG_LEVEL: 'silent' } });
    expect(run.stderr.split('\n')[0]).toBe("pgroute: too many arguments for 'watch'. Expected 0 arguments but got 1. (see pgroute watch --help)");
    expect(run.status).toBe(2);
  });

  it('the CLI probe does catch a bad option', () => {
    expect(existsSync(CLI), `${CLI} is missing: run npm run build`).toBe(true);
    const run = spawnSync(process.execPath, [CLI, 'watch', 'stray-operand', '--source=kubernetes', '--kube-adress=dns'], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr.split('\n')[0]).toContain("unknown option '--kube-adress=dns'");
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  it.each(RENDERS)('%s: kubectl kustomize renders the same objects as this test', (name, build) => {
    // Required, never skipped: kubectl (with kustomize) comes with this machine image.
    expect(kubectl, 'kubectl is not installed: it renders the manifests as an operator would').toBe(true);
    const run = spawnSync('kubectl', ['kustomize', join(KUBE, name)], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const theirs = parseAllDocuments(run.stdout, { version: '1.1' });
    const real = (Array.isArray(theirs) ? theirs : [theirs]).map((doc) => doc.toJS() as Obj);
    const ours = build();
    const key = (o: Obj): string => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
    expect(real.map(key).sort()).toEqual(ours.map(key).sort());
    for (const o of ours) expect(real.find((r) => key(r) === key(o)), key(o)).toEqual(o);
  });
});
