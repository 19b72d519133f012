// `watch --kube-peers-service`: the replicas from the EndpointSlices of pgroute's own Service
// instead of a fixed --peer list (docs/replicas.md, "Replicas on Kubernetes"); `--access-configmap`:
// the access switch kept in a ConfigMap across restarts of every pod.

import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { ConfigError, loadAccessConfigMap, loadKubernetesPeers, type DurableAccess, type ReplicaWatch, type Settings } from '../generator/src/index.js';
import { flagLabel, parsePort } from './flag-values.js';

export interface KubePeersFlags {
  accessConfigmap?: string;
  kubePeersService?: string;
  kubePeersNamespace?: string;
  kubePeersPort: string;
}

/** Where a pod's service account token says which namespace it runs in. */
const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function addKubePeersFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kube-peers-service <name>', "take the replicas from the EndpointSlices of this Service (pgroute's own) instead of --peer: one per pod, named by the pod (--name must be this pod's name); needs list + watch on endpointslices in its namespace").env('PGROUTE_KUBE_PEERS_SERVICE'))
    .addOption(new Option('--kube-peers-namespace <ns>', "that Service's namespace (default: the namespace of this pod's service account)").env('PGROUTE_KUBE_PEERS_NAMESPACE'))
    .addOption(new Option('--kube-peers-port <port>', "the port every replica's HAProxy peers listener uses with --kube-peers-service").default('6712').env('PGROUTE_KUBE_PEERS_PORT'))
    .addOption(new Option('--access-configmap <[ns/]name>', "keep the access switch (tenant enable|disable) in this ConfigMap too, read before the first configuration, so that it survives a restart of every replica (default namespace: this pod's); needs get + update on it").env('PGROUTE_ACCESS_CONFIGMAP'));
}

/** The durable access store the flags ask for, or undefined (the switch lives in the state dirs and the replicated table). */
export async function durableAccessFromFlags(f: KubePeersFlags): Promise<DurableAccess | undefined> {
  if (f.accessConfigmap === undefined) return undefined;
  const { ConfigMapAccessStore, configMapApi, parseConfigMapRef } = await loadAccessConfigMap();
  const ref = parseConfigMapRef(f.accessConfigmap, podNamespace());
  if (typeof ref === 'string') throw new ConfigError(`${flagLabel('--access-configmap', 'PGROUTE_ACCESS_CONFIGMAP')} ${ref}`);
  return { store: new ConfigMapAccessStore(ref, configMapApi()), pointer: { configMap: ref } };
}

/** The replica watch the flags ask for, or undefined (replicas from --name/--peer alone). */
export async function kubePeersFromFlags(f: KubePeersFlags, settings: Settings, log: Logger): Promise<ReplicaWatch | undefined> {
  if (f.kubePeersService === undefined) return undefined;
  const serviceLabel = flagLabel('--kube-peers-service', 'PGROUTE_KUBE_PEERS_SERVICE');
  if (!DNS_LABEL.test(f.kubePeersService)) throw new ConfigError(`${serviceLabel} must be a Service name (lowercase letters, digits and '-'), got ${JSON.stringify(f.kubePeersService)}`);
  if (settings.replicas.peers.length > 0) throw new ConfigError(`${serviceLabel} and --peer (PGROUTE_PEERS) both list the replicas: give one of them`);
  const namespace = f.kubePeersNamespace ?? podNamespace();
  if (namespace === undefined) throw new ConfigError(`${serviceLabel}: no namespace; give --kube-peers-namespace (PGROUTE_KUBE_PEERS_NAMESPACE), or run in a pod with its service account mounted (${POD_NAMESPACE_FILE})`);
  if (!DNS_LABEL.test(namespace)) throw new ConfigError(`--kube-peers-namespace (PGROUTE_KUBE_PEERS_NAMESPACE) must be a namespace name, got ${JSON.stringify(namespace)}`);
  const port = parsePort(flagLabel('--kube-peers-port', 'PGROUTE_KUBE_PEERS_PORT'), f.kubePeersPort);
  const { KubernetesPeers } = await loadKubernetesPeers();
  return new KubernetesPeers({ namespace, service: f.kubePeersService, port, self: settings.replicas.self, log });
}

function podNamespace(): string | undefined {
  try {
    return readFileSync(POD_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
