// The replicas of pgroute on Kubernetes, read from the EndpointSlices of pgroute's own Service: one
// peer per pod (name = pod name, host = pod IP, the peers port), pure so it is tested without an
// API server (kubernetes-peers.ts feeds it from a watch).
//
// Why EndpointSlices: they hold exactly what a peer list needs (pod names and IPs) and nothing
// else of the pods (no spec, no environment), and RBAC can grant list + watch on them in pgroute's
// namespace alone. Pods not ready yet are listed too (conditions.ready false): a starting replica
// must be a peer of the others before it can resync from them and become ready. Terminating pods
// stay peers until they are gone: they still serve sessions whose records the others keep.

import { shortPeerName, type Peer, type Replicas } from './peers.js';

/** The fields of a discovery.k8s.io/v1 EndpointSlice read here (client-node's V1EndpointSlice fits). */
export interface EndpointSliceLike {
  readonly addressType?: string;
  readonly endpoints?: readonly {
    readonly addresses?: readonly string[];
    readonly targetRef?: { readonly kind?: string; readonly name?: string };
  }[];
}

/** Pod names are DNS labels: what a HAProxy peer name may safely be. */
const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The pods of the slices whose names are too long for a peer name, with the name used instead. */
export function shortenedPods(slices: readonly EndpointSliceLike[]): { pod: string; peer: string }[] {
  const out = new Map<string, string>();
  for (const slice of slices) {
    for (const e of slice.endpoints ?? []) {
      const pod = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined;
      if (pod !== undefined && POD_NAME.test(pod) && shortPeerName(pod) !== pod) out.set(pod, shortPeerName(pod));
    }
  }
  return [...out].map(([pod, peer]) => ({ pod, peer }));
}

/**
 * Every pod in the slices, once, sorted by name. An endpoint without a Pod reference or an address
 * (FQDN slices, manually written slices) names no replica and is left out.
 */
export function peersOfSlices(slices: readonly EndpointSliceLike[], port: number): Peer[] {
  const byName = new Map<string, Peer>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    for (const e of slice.endpoints ?? []) {
      const pod = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined;
      const host = e.addresses?.[0];
      if (pod === undefined || !POD_NAME.test(pod) || host === undefined) continue;
      // A pod name over HAProxy's 63 characters gets the short name its own pod derives too.
      const name = shortPeerName(pod);
      if (byName.has(name)) continue;
      byName.set(name, { name, host, port });
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * This replica (`self`, its pod name) among the pods of the slices. Its own entry is the address
 * its peers listener binds: its pod IP once a slice lists it, every address (0.0.0.0) until then,
 * so a pod starting before the EndpointSlice controller saw it still takes its peers' connections.
 */
export function replicasOfSlices(self: string, peers: readonly Peer[], port: number): Replicas {
  const own = peers.find((p) => p.name === self) ?? { name: self, host: '0.0.0.0', port };
  return { self, peers: [own, ...peers.filter((p) => p.name !== self)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}
