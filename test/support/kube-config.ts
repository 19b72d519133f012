// A client-node KubeConfig for the test API server (test/support/fake-kube-apiserver.ts). Apart from
// the server, which imports no package, so that the benchmarks can run the server on its own.

import { KubeConfig } from '@kubernetes/client-node';

/** A client-node KubeConfig that talks to a fake API server at `url` (plain http, no credentials). */
export function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'nobody' }],
    currentContext: 'fake',
  });
  return kc;
}
