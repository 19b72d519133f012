// Renders haproxy.cfg and spoe.conf from the handlebars templates in haproxy/. Pure: text in, text
// out; every value placed in the templates has been validated (validate.ts) or built here.

import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { assetPath } from '../assets.js';
import type { Deployment, TenantSnapshot } from '../model.js';
import type { Settings, StatePaths } from '../settings.js';
import { haproxyAddress } from '../validate.js';
import { backendName } from './backend-name.js';
import { haproxyRefusals } from './refusals.js';

export interface RenderedConfig {
  readonly haproxyConfig: string;
  readonly spoeConfig: string;
}

type Template = (context: object) => string;
const templates = new Map<string, Template>();

function template(name: string): Template {
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
  snapshot: TenantSnapshot,
  settings: Settings,
  paths: StatePaths,
  snapshotVersion: string,
): RenderedConfig {
  const backends = snapshot.tenants.flatMap((tenant) =>
    Object.entries(tenant.targets)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([target, endpoint]) => ({
        name: backendName(tenant.id, target),
        maxconn: tenant.maxconn ?? 0,
        queueTimeout: settings.timeouts.queue,
        servers: [
          {
            name: 's1',
            address: haproxyAddress(endpoint.host, endpoint.port),
            check: settings.healthCheck.enabled,
            checkInterval: settings.healthCheck.interval,
            maxconn: tenant.maxconn ?? 0,
          },
        ],
      })),
  );
  const context = {
    snapshotVersion,
    paths: { adminSocket: paths.adminSocket, lua: settings.luaPath, spoeConfig: paths.spoeConfig },
    limits: settings.limits,
    reload: settings.reload,
    log: settings.log,
    timeouts: settings.timeouts,
    listeners: deployment.listeners.map((l) => ({ bind: haproxyAddress(l.address, l.port) })),
    negotiationAnswer: 'N',
    refusals: haproxyRefusals(settings.limits.maxStartupPacket, settings.timeouts.startup),
    agent: {
      ...settings.agent,
      servers: settings.agent.servers.map((s, i) => ({ name: `agent${i + 1}`, address: haproxyAddress(s.host, s.port) })),
    },
    backends,
    stats: settings.stats,
  };
  return { haproxyConfig: template('haproxy.cfg.hbs')(context), spoeConfig: template('spoe.conf.hbs')(context) };
}
