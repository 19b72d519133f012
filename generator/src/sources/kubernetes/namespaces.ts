// The Namespaces the Kubernetes source reads with declared ownership (--kube-ownership declared),
// for their pgroute.io/tenants annotation (ownership.ts). Only that mode uses this file, so only
// that mode needs its RBAC (generator/test/kubernetes-manifests.test.ts derives it from here):
// - every namespace watched: CoreV1Api.listNamespace and a watch of /api/v1/namespaces, i.e.
//   list + watch on core namespaces (a ClusterRole: Namespaces are cluster-scoped);
// - --namespace x: the same two calls with fieldSelector metadata.name=x, which the apiserver
//   authorizes as a request for the object named x, so a ClusterRole rule with
//   `resourceNames: [x]` is enough (RBAC can limit list and watch by name only this way).

import type { CoreV1Api, V1Namespace, V1NamespaceList, Watch } from '@kubernetes/client-node';
import { ListWatch } from '@kubernetes/client-node';

/**
 * A ListWatch of every Namespace (`name` undefined) or of the Namespace `name` alone. `listed` runs
 * after each successful list, before ListWatch goes on to watch (it may throw to stop there);
 * `bounded` puts a deadline on the list call (../first-view.ts).
 */
export function namespaceInformer(
  api: CoreV1Api,
  watch: Watch,
  name: string | undefined,
  listed: () => void,
  bounded: <T>(p: Promise<T>) => Promise<T> = (p) => p,
): ListWatch<V1Namespace> {
  const fieldSelector = name === undefined ? undefined : `metadata.name=${name}`;
  const list = async (): Promise<V1NamespaceList> => {
    const result = await bounded(api.listNamespace(fieldSelector === undefined ? {} : { fieldSelector }));
    listed();
    return result;
  };
  return new ListWatch<V1Namespace>('/api/v1/namespaces', watch, list, false, undefined, fieldSelector);
}
