// A client-node KubeConfig for the test API server (test/support/fake-kube-apiserver.ts). Apart from
// the server, which imports no package, so that the benchmarks can run the server on its own.

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startWatch } from './pgroute.js';
import type { PortBlock } from './ports.js';
import { stopAll, type ProcessHandle } from './process.js';

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

/**
 * `pgroute watch --source kubernetes --kube-address cluster-ip --spawn-haproxy` against the test API
 * server at `url`, with a kubeconfig written into `dir` (and no in-cluster variables), once it runs.
 * The test servers listen on the block's pg ports, outside the default --kube-allowed-ports: those
 * are allowed unless `args` is given (the flags then are the caller's).
 */
export async function startKubeWatch(
  ports: PortBlock,
  dir: string,
  url: string,
  opts: { readonly name: string; readonly env?: Record<string, string | undefined>; readonly args?: readonly string[] },
): Promise<ProcessHandle> {
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeConfigFor(url).exportConfig());
  const args = opts.args ?? ['--kube-allowed-ports', `${ports.pg[0]}-${ports.pg[9]}`];
  return startWatch(ports, join(dir, 'state'), ['--source', 'kubernetes', '--kube-address', 'cluster-ip', '--spares', '8', ...args], {
    name: opts.name,
    env: { KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined, ...opts.env },
  });
}

/**
 * The teardown of a Kubernetes e2e file: stops pgroute watch, then the fake API server and every
 * other process the file started, removes its directory and prints its timings.
 */
export async function stopKubeWatch(what: string, run: { readonly watch?: ProcessHandle | undefined; readonly fake?: { stop(): Promise<void> } | undefined; readonly dir: string; readonly timings: Record<string, number> }): Promise<void> {
  await run.watch?.stop('SIGINT', 15_000);
  await run.fake?.stop();
  await stopAll();
  if (run.dir) rmSync(run.dir, { recursive: true, force: true });
  console.log(`${what} timings (ms): ${JSON.stringify(run.timings)}`);
}
