// Renders haproxy.cfg and spoe.conf from the handlebars templates in haproxy/. Pure: text in, text
// out; every value placed in the templates has been validated (validate.ts) or built here.

import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { assetPath } from '../assets.js';
import type { Layout } from '../layout.js';
import { isIP } from 'node:net';
import type { BackendTls, Deployment } from '../model.js';
import type { Settings, StatePaths } from '../settings.js';
import { haproxyAddress } from '../validate.js';
import { haproxyRefusals } from './refusals.js';

export interface RenderedConfig {
  readonly haproxyConfig: string;
  readonly spoeConfig: string;
}

type Template = (context: object) => string;
const templates = new Map<string, Template>();

let partialsRegistered = false;

function template(name: string): Template {
  if (!partialsRegistered) {
    // Rules both the clear-text and the TLS frontend run, written once.
    for (const partial of ['startup-acls', 'startup-decision']) {
      Handlebars.registerPartial(partial, readFileSync(assetPath('haproxy', 'partials', `${partial}.hbs`), 'utf8'));
    }
    partialsRegistered = true;
  }
  let t = templates.get(name);
  if (t === undefined) {
    // noEscape: this is not HTML; values are validated before they get here.
    t = Handlebars.compile(readFileSync(assetPath('haproxy', name), 'utf8'), { noEscape: true, strict: true });
    templates.set(name, t);
  }
  return t;
}

export function renderConfig(
  deployment: Deployment,
  layout: Layout,
  settings: Settings,
  paths: StatePaths,
  snapshotVersion: string,
): RenderedConfig {
  const backends = layout.backends.map((b) => {
    const occupant = b.state.kind === 'occupied' ? b.state.occupant : undefined;
    const check = occupant?.check ?? { kind: 'tcp' as const };
    const checked = settings.healthCheck.enabled && check.kind !== 'none';
    const members = occupant ? (occupant.members ?? [occupant.endpoint]) : undefined;
    return {
      name: b.name,
      comment: occupant ? `tenant ${occupant.tenant}, target ${occupant.target}` : b.state.kind === 'free' ? 'spare: taken at runtime by a new tenant' : 'vacated: resting until the next reload',
      queueTimeout: settings.timeouts.queue,
      // One server: `first`. Cluster members: the health check picks who may serve (Patroni
      // answers 200 on /primary only on the leader); among several healthy ones, the least loaded.
      balance: members !== undefined && members.length > 1 && check.kind === 'patroni' && check.path !== '/primary' ? 'leastconn' : 'first',
      httpCheckPath: checked && check.kind === 'patroni' ? check.path : undefined,
      pgsqlCheckUser: checked && check.kind === 'pgsql' ? check.user : undefined,
      servers: (members ?? [undefined]).map((m, i) => ({
        name: `s${i + 1}`,
        // Spares and vacated backends hold a placeholder in maintenance; the runtime API sets
        // the real address and makes the server ready.
        address: m ? haproxyAddress(m.host, m.port) : PLACEHOLDER_ADDRESS,
        check: checked,
        checkInterval: settings.healthCheck.interval,
        checkPort: checked && check.kind === 'patroni' ? check.port : undefined,
        // Patroni's answer is authoritative: one 503 means "not the leader (or replica) any more"
        // and one 200 means "it is now"; no need to wait for several checks during a failover.
        decisive: checked && check.kind === 'patroni',
        // After a failover, sessions on a member that changed role must not linger there.
        shutdownOnDown: checked && check.kind === 'patroni',
        maxconn: occupant?.maxconn ?? 0,
        maxqueue: occupant?.maxqueue ?? 0,
        tls: occupant?.tls === undefined || m === undefined ? undefined : backendTlsWords(occupant.tls, m.host),
        disabled: occupant === undefined,
      })),
    };
  });
  const context = {
    snapshotVersion,
    paths: { adminSocket: paths.adminSocket, lua: settings.luaPath, spoeConfig: paths.spoeConfig, tlsSocket: paths.tlsSocket, serverState: paths.serverState },
    tls: settings.tls === undefined ? false : { crt: settings.tls.crtPath, minVersion: settings.tls.minVersion },
    limits: settings.limits,
    reload: settings.reload,
    log: settings.log,
    timeouts: settings.timeouts,
    healthCheck: settings.healthCheck,
    listeners: deployment.listeners.map((l) => ({ bind: haproxyAddress(l.address, l.port) })),
    negotiationAnswer: 'N',
    refusals: haproxyRefusals(settings.limits.maxStartupPacket, settings.timeouts.startup),
    agent: {
      ...settings.agent,
      servers: settings.agent.servers.map((s, i) => ({ name: `agent${i + 1}`, address: s.socket !== undefined ? `unix@${s.socket}` : haproxyAddress(s.host, s.port) })),
    },
    backends,
    stats: { ...settings.stats, allowList: settings.stats.allow.join(' ') },
  };
  return { haproxyConfig: template('haproxy.cfg.hbs')(context), spoeConfig: template('spoe.conf.hbs')(context) };
}

/** Where a spare's server points until it is given a tenant: nothing listens on port 1. */
export const PLACEHOLDER_ADDRESS = '127.0.0.1:1';

/** The server-line words for TLS to a backend that accepts TLS first. */
function backendTlsWords(tls: BackendTls, host: string): string {
  const name = tls.serverName ?? (isIP(host) === 0 ? host : undefined);
  const verify = tls.verify === 'required' ? `verify required ca-file ${tls.ca ?? ''}${name ? ` verifyhost ${name}` : ''}` : 'verify none';
  return `ssl ${verify}${name ? ` sni str(${name})` : ''} alpn postgresql`;
}
