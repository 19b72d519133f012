// The SPOE contract (server/spoe-contract.ts) against the real templates in haproxy/: the message,
// its arguments, the engine, group and agent names, the variable prefix and the variables must be
// spelled the same on both sides. Renaming one on either side fails here, not in production (where
// HAProxy would silently drop an unregistered variable or send an argument nobody reads).

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CANCEL_ARG,
  CANCEL_GROUP,
  CANCEL_MESSAGE,
  cancelTableArgNames,
  HOLD_ENGINE,
  HOLD_GROUP,
  HOLD_MESSAGE,
  SPOE_AGENT,
  SPOE_ENGINE,
  SPOE_GROUP,
  STARTUP_ARG,
  STARTUP_MESSAGE,
  VAR_PREFIX,
  ROUTE_FIELDS,
  ROUTE_SEPARATOR,
  VAR_SCOPE_NAME,
  VERDICT_VAR,
} from '../../src/server/spoe-contract.js';
import { cancelId } from '../../src/contract.js';
import { routeValue, verdictActions } from '../../src/server/verdict-actions.js';

const HAPROXY = join(dirname(fileURLToPath(import.meta.url)), '../../../haproxy');
const read = (rel: string): string => readFileSync(join(HAPROXY, rel), 'utf8');
/** spoe.conf with the partials it includes. */
const spoeFile = read('spoe.conf.hbs').replace(/\{\{> ([a-z-]+)\}\}/g, (_m, name: string) => read(`partials/${name}.hbs`));
/** The engine scope [pgroute]; the hold engine's scope [pgroute-hold] follows it (partials/pause-spoe.hbs). */
const [spoeConf, holdConf] = spoeFile.split(`\n[${HOLD_ENGINE}]\n`) as [string, string];
/** haproxy.cfg with its partials, and the Lua actions: every place HAProxy reads the verdict. */
const haproxyCfg = [read('haproxy.cfg.hbs'), ...readdirSync(join(HAPROXY, 'partials')).map((f) => read(`partials/${f}`))]
  .join('\n')
  // Variables numbered per cancel slot ({{#each cancel.slots}}): as rendered for slot 0.
  .replace(/\{\{slot\}\}/g, '0');
const lua = read('pgroute.lua');

/** The words after `keyword` on each line of spoe.conf that starts with it. */
function directives(keyword: string): string[][] {
  const lines = spoeConf.split('\n').filter((l) => l.trim().startsWith(`${keyword} `));
  return lines.map((l) => l.trim().slice(keyword.length).trim().split(/\s+/));
}

/** The words after `keyword` on the (single) line of spoe.conf that starts with it. */
function directive(keyword: string): string[] {
  const all = directives(keyword);
  expect(all, `spoe.conf.hbs has one "${keyword}" line`).toHaveLength(1);
  return all[0]!;
}

/** The lines of the section `spoe-message <name>` (up to the next blank line). */
function messageArgs(name: string): string[] {
  const at = spoeConf.indexOf(`spoe-message ${name}\n`);
  expect(at, `spoe-message ${name}`).toBeGreaterThanOrEqual(0);
  const section = spoeConf.slice(at).split('\n\n')[0]!;
  const args = section.split('\n').find((l) => l.trim().startsWith('args '))!;
  // {{#each}} of the per-table arguments: n0, g0_0..g0_7 for one table, as the generator renders them.
  return args
    .trim()
    .slice(5)
    .replace(/\{\{#each cancel\.args\}\} \{\{this\}\}\{\{\/each\}\}/, cancelArgs(1).map((a) => ` ${a}=x`).join(''))
    .split(/\s+/)
    .map((a) => a.slice(0, a.indexOf('=')));
}

/** The per-table argument names of the cancel message for `tables` tables. */
const cancelArgs = (tables: number): string[] =>
  Array.from({ length: tables }, (_, j) => cancelTableArgNames(j)).flatMap((n) => [n.written, ...n.words]);
const sorted = (names: Iterable<string>): string[] => [...names].sort();
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const VAR = `${VAR_SCOPE_NAME}.${VAR_PREFIX}.`;

describe('SPOE contract: spoe.conf.hbs', () => {
  it('declares the engine scope, the agent, its group and the agent backend', () => {
    expect(spoeConf.split('\n').map((l) => l.trim())).toContain(`[${SPOE_ENGINE}]`);
    expect(directive('spoe-agent')).toEqual([SPOE_AGENT]);
    expect(directive('groups')).toEqual([SPOE_GROUP, CANCEL_GROUP]);
    expect(directives('spoe-group')).toEqual([[SPOE_GROUP], [CANCEL_GROUP]]);
    expect(directives('messages')).toEqual([[STARTUP_MESSAGE], [CANCEL_MESSAGE]]);
    expect(directive('use-backend')).toEqual([SPOE_AGENT]);
  });

  it('sends the startup and cancel messages with exactly the arguments the agent reads', () => {
    expect(directives('spoe-message')).toEqual([[STARTUP_MESSAGE], [CANCEL_MESSAGE]]);
    expect(sorted(messageArgs(STARTUP_MESSAGE))).toEqual(sorted(Object.values(STARTUP_ARG)));
    expect(sorted(messageArgs(CANCEL_MESSAGE))).toEqual(sorted([...Object.values(CANCEL_ARG), ...cancelArgs(1)]));
  });

  it('uses the agent\'s variable prefix and registers exactly the variables the agent sets', () => {
    expect(directive('option var-prefix')).toEqual([VAR_PREFIX]);
    expect(sorted(directive('register-var-names'))).toEqual(sorted(Object.values(VERDICT_VAR)));
  });
});

describe('SPOE contract: the hold engine (partials/pause-spoe.hbs)', () => {
  const lines = (keyword: string): string[][] =>
    holdConf
      .split('\n')
      .filter((l) => l.trim().startsWith(`${keyword} `))
      .map((l) => l.trim().slice(keyword.length).trim().split(/\s+/));
  it('declares its own scope, group and message, with the startup message\'s arguments', () => {
    expect(holdConf, `[${HOLD_ENGINE}] scope`).toBeDefined();
    expect(lines('groups')).toEqual([[HOLD_GROUP]]);
    expect(lines('spoe-group')).toEqual([[HOLD_GROUP]]);
    expect(lines('messages')).toEqual([[HOLD_MESSAGE]]);
    expect(lines('option var-prefix')).toEqual([[VAR_PREFIX]]);
    const args = holdConf.split('\n').find((l) => l.trim().startsWith('args '))!.trim().slice(5).split(/\s+/).map((a) => a.slice(0, a.indexOf('=')));
    expect(sorted(args)).toEqual(sorted(Object.values(STARTUP_ARG)));
    expect(haproxyCfg).toMatch(new RegExp(`filter spoe engine ${escape(HOLD_ENGINE)} config `));
    expect(haproxyCfg).toMatch(new RegExp(`send-spoe-group ${escape(HOLD_ENGINE)} ${escape(HOLD_GROUP)}\\b`));
  });

  it('registers every variable of the routes and refusals it answers with', () => {
    const registered = lines('register-var-names')[0]!;
    const limits = { maxClientConnections: 5, maxConnectionRate: 6, maxClientConnectionRate: 7 };
    const route = verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary', cancel: false, limits });
    const refusal = verdictActions({ kind: 'refuse', reason: 'unknown-target', sqlstate: '08004', message: 'm', logDetail: 'd', tenant: 'acme' });
    for (const n of [...route, ...refusal].map((a) => a.name.toString()).filter((n) => n !== VERDICT_VAR.cancelA && n !== VERDICT_VAR.cancelB)) {
      expect(registered).toContain(n);
    }
    // The hold frontend splits the route as the public ones do.
    const hold = read('partials/pause-frontend.hbs');
    expect(hold.indexOf('{{> route-split}}')).toBeGreaterThan(hold.indexOf(`send-spoe-group ${HOLD_ENGINE} ${HOLD_GROUP}`));
  });

  it('a hold verdict sets the hold variable and never a backend', () => {
    const names = verdictActions({ kind: 'hold', cause: 'paused', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary' }).map((a) => a.name.toString());
    expect(sorted(names)).toEqual(sorted([VERDICT_VAR.hold, VERDICT_VAR.tenant, VERDICT_VAR.target, VERDICT_VAR.cancelA, VERDICT_VAR.cancelB]));
    expect(names).not.toContain(VERDICT_VAR.backend);
  });
});

describe('SPOE contract: haproxy.cfg.hbs, partials and pgroute.lua', () => {
  it('attach the engine and send its group', () => {
    expect(haproxyCfg).toMatch(new RegExp(`filter spoe engine ${escape(SPOE_ENGINE)} config `));
    expect(haproxyCfg).toMatch(new RegExp(`send-spoe-group ${escape(SPOE_ENGINE)} ${escape(SPOE_GROUP)}\\b`));
    expect(haproxyCfg).toMatch(new RegExp(`send-spoe-group ${escape(SPOE_ENGINE)} ${escape(CANCEL_GROUP)}\\b`));
    expect(haproxyCfg).toMatch(new RegExp(`^backend ${escape(SPOE_AGENT)}$`, 'm'));
  });

  it('read every variable the agent sets, and no agent variable it does not set', () => {
    const everywhere = `${haproxyCfg}\n${lua}`;
    const used = new Set([...everywhere.matchAll(new RegExp(`${escape(VAR)}([A-Za-z0-9_]+)`, 'g'))].map((m) => m[1]!));
    // Variables HAProxy sets itself: set-var(...) in the frontends, set-on-error/set-process-time in spoe.conf.
    const ownVars = new Set([
      ...[...haproxyCfg.matchAll(new RegExp(`set-var(?:-fmt)?\\(${escape(VAR)}([A-Za-z0-9_]+)\\)`, 'g'))].map((m) => m[1]!),
      ...directive('option set-on-error'),
      ...directive('option set-process-time'),
    ]);
    for (const name of Object.values(VERDICT_VAR)) expect(used, `txn.${VAR_PREFIX}.${name} is read`).toContain(name);
    const fromAgent = [...used].filter((n) => !ownVars.has(n) || (Object.values(VERDICT_VAR) as string[]).includes(n));
    expect(sorted(fromAgent)).toEqual(sorted(Object.values(VERDICT_VAR)));
    // The backend comes from the verdict, the refusal from the Lua action.
    expect(haproxyCfg).toContain(`use_backend %[var(${VAR}${VERDICT_VAR.backend})]`);
    expect(lua).toContain(`txn:get_var("${VAR}${VERDICT_VAR.error}")`);
  });
});

describe('SPOE contract: the agent side', () => {
  it('verdicts set only registered variables', () => {
    const names = (vs: ReturnType<typeof verdictActions>): string[] => vs.map((a) => a.name.toString());
    const registered = directive('register-var-names');
    const route = names(verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: false }));
    const refusal = names(
      verdictActions({ kind: 'refuse', reason: 'unknown-target', sqlstate: '08004', message: 'm', logDetail: 'd', tenant: 'acme' }),
    );
    const cancel = names(verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: true }));
    expect(sorted(route)).toEqual(sorted([VERDICT_VAR.route, VERDICT_VAR.cancelA, VERDICT_VAR.cancelB]));
    // A cancel is not recorded: no cancel id.
    expect(sorted(cancel)).toEqual(sorted([VERDICT_VAR.backend, VERDICT_VAR.tenant, VERDICT_VAR.target]));
    expect(sorted(refusal)).toEqual(sorted([VERDICT_VAR.error, VERDICT_VAR.tenant]));
    // With a per-address rate: that rate, and the tenant for its counter's key (concat() reads variables only).
    const perAddress = names(
      verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: false, limits: { maxClientConnectionRate: 3 } }),
    );
    expect(sorted(perAddress)).toEqual(sorted([VERDICT_VAR.route, VERDICT_VAR.cancelA, VERDICT_VAR.cancelB, VERDICT_VAR.maxClientRate, VERDICT_VAR.tenant]));
    for (const n of perAddress) expect(registered).toContain(n);
    for (const n of [...route, ...refusal]) expect(registered).toContain(n);
  });

  it('a route is one variable that HAProxy splits into its fields, in the agent\'s order (partials/route-split.hbs)', () => {
    const split = read('partials/route-split.hbs');
    ROUTE_FIELDS.forEach((name, i) => {
      expect(split).toContain(`set-var(${VAR}${name}) var(${VAR}${VERDICT_VAR.route}),field(${i + 1},${ROUTE_SEPARATOR})`);
    });
    expect([...split.matchAll(/field\((\d+),/g)]).toHaveLength(ROUTE_FIELDS.length);
    const value = (limits?: { maxClientConnections?: number; maxConnectionRate?: number }): string | Buffer | undefined =>
      verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary', cancel: false, ...(limits ? { limits } : {}) }).find(
        (a) => a.name.toString() === VERDICT_VAR.route,
      )?.value;
    expect(value({ maxClientConnections: 10, maxConnectionRate: 0 })).toBe('pg.acme.primary|acme|primary|10|0');
    expect(value({})).toBe('pg.acme.primary|acme|primary|0|0');
    // Without limits no 4th and 5th fields: HAProxy sets no mc, mr and counts nothing.
    expect(value()).toBe('pg.acme.primary|acme|primary');
    expect(routeValue('pg.acme.primary', 'acme', 'primary', undefined)).toBe(value());
    // The split runs after both exchanges that may answer a route, before anything reads the route.
    const decision = read('partials/startup-decision.hbs');
    expect(decision.indexOf('{{> route-split}}')).toBeGreaterThan(decision.indexOf(`send-spoe-group ${SPOE_ENGINE} ${SPOE_GROUP}`));
    expect(decision.indexOf('{{> route-split}}')).toBeLessThan(decision.indexOf('pgr_routed'));
  });

  it('a route carries the cancel id HAProxy records, in decimal (contract.ts cancelId())', () => {
    const actions = verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary', cancel: false });
    const value = (name: string): string | Buffer | undefined => actions.find((a) => a.name.toString() === name)?.value;
    const [a, b] = cancelId('acme', 'primary');
    expect([value(VERDICT_VAR.cancelA), value(VERDICT_VAR.cancelB)]).toEqual([String(a), String(b)]);
  });
});
