// The generator's public surface: what the CLI and the benchmarks import. Everything else under
// generator/src is internal (its own tests reach in; other packages do not).
//
// Modules that load slow libraries (the X.509 library, dockerode, the Kubernetes client, prom-client,
// tar-stream) are not re-exported: they are reached through the loaders at the end, so a command that
// does not need them does not pay for loading them (`pgroute generate` loads neither pgroute's
// runtime nor the agent's).

export { ConfigError, readFailure } from './errors.js';
export { durationMs } from './duration.js';
export type { Deployment, Listener, RefusedTenant, Tenant, TenantSnapshot } from './model.js';
export {
  DEFAULT_AGENT_HTTP_PORT,
  DEFAULT_AGENT_PORT,
  DEFAULT_PORT,
  DEFAULT_STATS_PORT,
  defaultSettings,
  DEFAULT_AGENT_TIMEOUT_MS,
  DEFAULT_REFUSAL_DELAY_MS,
  refusalDelay,
  REFUSAL_DELAY_SPARE_MS,
  statePaths,
  type AgentEndpoint,
  type Settings,
  type StatePaths,
} from './settings.js';
export { parsePolicy } from './policy.js';
export { restoreFiles, saveFiles, type SavedFiles } from './files.js';
export { defaultReplicaName, parseReplicas, peerEntries, peerNameProblem, PeersProblem, shortPeerName, type Peer, type Replicas } from './replicas/peers.js';
export { readAccess, type AccessState } from './access.js';

// Tenant sources, and what `pgroute up` is run with (its runtime: loadRun below).
export type { SourceView, TenantSource } from './sources/source.js';
export { FileSource, parseTenantsFile, readTenantsFile, type TenantsFile } from './sources/file.js';
export { describePatterns, describePorts, targetPolicyFromFlags } from './sources/kubernetes/target-policy.js';
export { admissionFromFlags, describeAdmission } from './sources/docker/ownership.js';
export { MergedSource, mergeViews } from './sources/merged.js';
export { DEFAULT_DRAIN, type DrainOptions } from './drain.js';
export type { DurableAccess, ReplicaWatch, RunOptions, Running } from './run.js';

// Rendering, layout and planning (the CLI's `generate`; the benchmarks time them one by one).
export { generate, generationFiles, readLayout, writeMaps, type Generation } from './generate.js';
export { desiredOccupants, EMPTY_LAYOUT, layoutForReload, type Layout } from './layout.js';
export { planChange } from './plan.js';
export { routeTableDocument } from './render/route-table.js';
export { renderConfig } from './render/haproxy-config.js';
export { loadTemplates, type ConfigTemplates } from './render/templates.js';

// HAProxy: the master-worker process and its sockets.
export { haproxyCli, killStartedMasters, startHaproxyMaster, type HaproxyMaster } from './haproxy/master.js';
export { reloadMaster, showProc, type ProcStatus } from './haproxy/reload.js';
export { markLearnedOnce } from './haproxy/learned-mark.js';
export { waitForTcp } from './haproxy/wait-tcp.js';
export { showPeersSection } from './haproxy/show-peers.js';
export { certificateBlocks, privateKeyBlocks } from './tls/pem.js';
export { haproxyBinary } from './haproxy/check.js';
export { haproxyVersion } from './haproxy/version.js';

// `pgroute plan`: a desired state previewed against what the state dir records as applied.
export { planOnStateDir, previewOnStateDir } from './preview/collect.js';
export { checkPlannedGeneration, type PlanCheck } from './preview/check.js';
export { previewText } from './preview/text.js';
export type { ChangePreview } from './preview/preview.js';

// Operator commands: status, the access switch, Docker tenants.
export { collectStatus } from './status/collect.js';
export { renderTable, statusTable } from './status/table.js';
export type { StatusReport } from './status/join.js';
export { disableTenant, enableTenant, type AccessWritten, type Disabled } from './tenants-docker/access-switch.js';
export { pauseTenant, resumeTenant } from './tenants-docker/pause.js';
export type { CreatedTenant, TenantDetail } from './tenants-docker/lifecycle.js';
export {
  checkTenantId,
  DEFAULT_TENANT_CPUS,
  DEFAULT_TENANT_IMAGE,
  DEFAULT_TENANT_MEMORY,
  DEFAULT_TENANT_NETWORK,
  DEFAULT_TENANT_PORT,
  parseCpus,
  parseMemory,
  type ManagedTenant,
} from './tenants-docker/plan.js';

// TLS on the public port.
export { tlsPaths } from './tls/paths.js';
export { parseSecretRef } from './tls/secret-ref.js';
export { parseSan } from './tls/sans.js';
export { swapCertificate, watchRenewal, type RenewalWatch } from './tls/hot-swap.js';
export type { AutoTlsResult } from './tls/store.js';
export type { CertificateDescription } from './tls/certificates.js';
export type { SecretApi } from './tls/secret-store.js';

// Loaded on demand (see above).
export const loadCertificateStore = () => import('./tls/store.js');
export const loadCertificates = () => import('./tls/certificates.js');
export const loadSecretStore = () => import('./tls/secret-store.js');
export const loadDockerSource = () => import('./sources/docker.js');
export const loadKubernetesSource = () => import('./sources/kubernetes.js');
export const loadKubernetesPeers = () => import('./replicas/kubernetes-peers.js');
export const loadAccessConfigMap = () => import('./replicas/access-configmap.js');
// `pgroute up`: the pipeline, the applier, HAProxy's master and the metrics (prom-client).
export const loadRun = () => import('./run.js');
// Docker tenants' create/delete/list/show (tar-stream, for the secrets' archives).
export const loadTenantLifecycle = () => import('./tenants-docker/lifecycle.js');
export { isHostName } from './validate.js';
export { claimStateDir, stateDirOwner, type StateDirClaim } from './state-owner.js';
