// The one schema of the tenants file (zod): what the file source validates every tenant, listener
// and routing section against, what the Docker and Kubernetes sources' typed fields go through too,
// and what `tenants.schema.json` publishes for editors (yaml-language-server), generated from it.
//
// zod rather than ajv: the schema is TypeScript, so the parsed values are typed without a second
// declaration; each field's error callback gives today's message word for word (the rules stay in
// validate.ts); and z.toJSONSchema publishes the editor schema from this very object, where ajv
// would need the JSON Schema as the source plus a table mapping its generic errors to our messages.
//
// A value with several mistakes is refused for one of them: the first in the order the file reads
// (id, unknown fields, the primary target, targets, enabled, maxconn/maxqueue, allow, limits), as before.

import { isIP } from 'node:net';
import { z } from 'zod';
import { describeValue, networksProblem } from '../../agent/src/index.js';
import { countProblem, hostProblem, portProblem, positiveIntProblem, quote, targetNameProblem, tenantIdProblem, TENANT_ID, TARGET_NAME } from './validate.js';

export const MAX_MEMBERS = 16;
export const MAX_TARGETS = 8;
export const MAX_CONN = 100_000;
/** Absolute paths of plain characters: nothing that could end or extend a haproxy.cfg word. */
export const SAFE_PATH = /^\/[A-Za-z0-9._/-]{1,250}$/;
const CHECK_USER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const CHECK_PATH = /^\/[A-Za-z0-9/_?=&.-]{0,100}$/;
export const CHECK_KINDS = ['tcp', 'pgsql', 'patroni', 'none'] as const;

/** Every failure of the schema it is given reads as `message(value)`. */
function says(message: (value: unknown) => string): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => message(issue.input) };
}
const problemOr = (problem: (v: unknown) => string | undefined, fallback: string) => (v: unknown): string => problem(v) ?? fallback;

const unknownField = (known: readonly string[], prefix = '') => (issue: { code?: string; keys?: string[] }): string | undefined =>
  issue.code === 'unrecognized_keys' ? `${prefix}unknown field ${quote(issue.keys?.[0] ?? '')} (known: ${known.join(', ')})` : undefined;

// ---- leaves --------------------------------------------------------------------------------------

const hostMessage = problemOr(hostProblem, 'host is invalid');
export const hostSchema = z
  .string(says(hostMessage))
  .refine((h) => hostProblem(h) === undefined, says(hostMessage))
  .meta({ description: 'An IP address (no IPv6 zone id) or an RFC 1123 host name.', examples: ['10.0.0.5', 'db.acme.internal'] });

const portMessage = problemOr(portProblem, 'port is invalid');
export const portSchema = z.int(says(portMessage)).min(1, says(portMessage)).max(65535, says(portMessage));

export const tenantIdSchema = z
  .string(says(problemOr(tenantIdProblem, 'tenant id is invalid')))
  .regex(TENANT_ID, says(problemOr(tenantIdProblem, 'tenant id is invalid')))
  .meta({ description: 'Lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit.' });

export const targetNameSchema = z
  .string(says(problemOr(targetNameProblem, 'target name is invalid')))
  .regex(TARGET_NAME, says(problemOr(targetNameProblem, 'target name is invalid')))
  .meta({ description: 'A lower-case letter, then letters, digits or "-" (at most 31).' });

const limitSchema = (name: string) => {
  const message = problemOr((v) => positiveIntProblem(name, v, MAX_CONN), `${name} is invalid`);
  return z.int(says(message)).min(1, says(message)).max(MAX_CONN, says(message));
};

/** The admission limits a tenant may set (model.ts TenantLimits), and the largest value of each. */
export const LIMIT_MAX = { maxClientConnections: 1_000_000, maxConnectionRate: 1_000_000, maxClientConnectionRate: 1_000_000 } as const;
export const LIMIT_KEYS = Object.keys(LIMIT_MAX) as (keyof typeof LIMIT_MAX)[];
/** An admission limit: a whole number, 0 meaning no limit. */
const admissionLimitSchema = (name: keyof typeof LIMIT_MAX, description: string) => {
  const max = LIMIT_MAX[name];
  const message = (v: unknown): string => `${countProblem(name, v, max) ?? `${name} is invalid`} (0: no limit)`;
  return z.int(says(message)).min(0, says(message)).max(max, says(message)).optional().meta({ description: `${description} 0 or absent: no limit.` });
};

/** Networks clients may connect from, checked by the agent's own rule (networksProblem) so both read them alike. */
const allowMessage = problemOr(networksProblem, 'allow is invalid');
const allowSchema = z
  .array(z.unknown(), says(allowMessage))
  .superRefine((list, ctx) => {
    const problem = networksProblem(list);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: list });
  })
  .meta({
    description: 'Networks clients may connect from (CIDR or single addresses); absent: every address.',
    examples: [['10.0.0.0/8', '2001:db8::/32']],
    // the elements are checked by networksProblem (exact messages); editors still see strings
    items: { type: 'string' },
  });

const booleanSchema = (message: string) => z.boolean({ error: () => message });

// ---- targets -------------------------------------------------------------------------------------

/** One server of a cluster target; other fields are ignored, as they always were. */
const endpointSchema = z.looseObject({ host: hostSchema, port: portSchema }, { error: () => 'a member must be a mapping with host and port' });

const checkObjectSchema = z.looseObject(
  {
    kind: z.enum(CHECK_KINDS, { error: (issue) => `check kind ${describeValue(issue.input, 80)} is not one of ${CHECK_KINDS.join(', ')}` }),
    user: z.string({ error: () => CHECK_USER_MESSAGE }).regex(CHECK_USER, { error: () => CHECK_USER_MESSAGE }).optional().meta({ description: 'pgsql: the role of the check (default pgroute).' }),
    port: z.int(says((v) => `check.port: ${portMessage(v)}`)).min(1, says((v) => `check.port: ${portMessage(v)}`)).max(65535, says((v) => `check.port: ${portMessage(v)}`)).optional().meta({ description: "patroni: Patroni's REST API port (default 8008)." }),
    path: z.string({ error: () => CHECK_PATH_MESSAGE }).regex(CHECK_PATH, { error: () => CHECK_PATH_MESSAGE }).optional().meta({ description: 'patroni: the URL path that answers 200 on the right member (default /primary, /replica or /health by target name).' }),
  },
  { error: () => CHECK_MESSAGE },
);
const CHECK_MESSAGE = 'check must be tcp, pgsql, patroni, none or a mapping { kind, ... }';
const CHECK_USER_MESSAGE = 'check.user must be a PostgreSQL role name of letters, digits and _';
const CHECK_PATH_MESSAGE = 'check.path must be a URL path such as /primary';

const checkSchema = z
  .union([z.enum(CHECK_KINDS), checkObjectSchema], {
    error: (issue) => {
      const v = issue.input;
      return typeof v === 'string' ? `check kind ${quote(v)} is not one of ${CHECK_KINDS.join(', ')}` : CHECK_MESSAGE;
    },
  })
  .meta({ description: 'The health check: tcp (default), pgsql, patroni, none, or a mapping { kind, user, port, path }.' });

const TLS_KEYS = ['verify', 'ca', 'serverName'] as const;
const tlsSchema = z
  .strictObject(
    {
      verify: z.enum(['required', 'none'], { error: () => 'tls.verify must be required or none' }).optional().meta({ description: 'required (default): the server certificate must be signed by ca; none: encrypt without verifying.' }),
      ca: z
        .string({ error: () => TLS_CA_MESSAGE })
        .regex(SAFE_PATH, { error: () => TLS_CA_MESSAGE })
        .optional()
        .meta({ description: 'The CA file that signed the server certificate, on the machine that runs HAProxy.' }),
      serverName: z
        .string({ error: () => TLS_SNI_MESSAGE })
        .refine((h) => hostProblem(h) === undefined && isIP(h) === 0, { error: () => TLS_SNI_MESSAGE })
        .optional()
        .meta({ description: 'The host name sent as SNI and checked against the certificate.' }),
    },
    { error: (issue) => unknownField(TLS_KEYS, 'tls: ')(issue) ?? 'tls must be a mapping { verify: required | none, ca, serverName }' },
  )
  .refine((t) => (t.verify ?? 'required') !== 'required' || t.ca !== undefined, { error: () => 'tls.verify required needs tls.ca (the CA that signed the server certificate)' })
  .meta({ description: 'TLS to the tenant server.' });
const TLS_CA_MESSAGE = 'tls.ca must be an absolute path of letters, digits and . _ / -';
const TLS_SNI_MESSAGE = 'tls.serverName must be a host name';

const MEMBERS_MESSAGE = `members must be a list of 1 to ${MAX_MEMBERS} { host, port }`;
/** The fields of a target, whether the tenant's own (primary) or one under targets. */
const targetShape = {
  host: hostSchema.optional(),
  port: portSchema.optional(),
  members: z
    .array(endpointSchema, { error: () => MEMBERS_MESSAGE })
    .min(1, { error: () => MEMBERS_MESSAGE })
    .max(MAX_MEMBERS, { error: () => MEMBERS_MESSAGE })
    .optional()
    .meta({ description: 'A cluster: its servers (the first is where a single-server check would go); instead of host and port.' }),
  check: checkSchema.optional(),
  tls: tlsSchema.optional(),
};
export const TARGET_KEYS = Object.keys(targetShape) as (keyof typeof targetShape)[];

/**
 * Cross-field rules run even when a field is wrong, so that they take their place in the reading
 * order (firstMessage) instead of waiting for the fields; a mapping is all they need.
 */
const ALWAYS = { when: (payload: z.core.ParsePayload): boolean => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value) };

type TargetInput = { host?: string | undefined; port?: number | undefined; members?: unknown[] | undefined };
/** host and port, or members: one of the two, complete. */
function targetComplete(t: TargetInput, ctx: z.core.$RefinementCtx<TargetInput>): void {
  if (t.members !== undefined) {
    if (t.host !== undefined || t.port !== undefined) ctx.addIssue({ code: 'custom', message: 'give either host and port, or members, not both', input: t });
    return;
  }
  if (t.host === undefined) ctx.addIssue({ code: 'custom', path: ['host'], message: hostMessage(undefined), input: t });
  else if (t.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: portMessage(undefined), input: t });
}

const targetSchema = z
  .strictObject(targetShape, { error: (issue) => unknownField(TARGET_KEYS)(issue) ?? 'must be a mapping with host and port (or members)' })
  .superRefine(targetComplete, ALWAYS)
  .meta({ description: 'An extra target: host and port, or members.' });

// ---- a tenant ------------------------------------------------------------------------------------

const TARGETS_MESSAGE = 'targets must be a mapping of target name to { host, port }';
const tenantShape = {
  id: tenantIdSchema,
  ...targetShape,
  enabled: booleanSchema('enabled must be true or false').optional().meta({ description: 'false: refuse its connections with a clear error (default true).' }),
  targets: z
    .record(
      targetNameSchema.refine((name) => name !== 'primary', { error: () => "the primary target is the tenant's own host and port; do not repeat it under targets" }),
      targetSchema,
      { error: (issue) => (issue.code === 'invalid_key' ? undefined : TARGETS_MESSAGE) },
    )
    .refine((t) => Object.keys(t).length <= MAX_TARGETS, { error: () => `at most ${MAX_TARGETS} extra targets are allowed` })
    .optional()
    .meta({ description: `Extra targets by name (at most ${MAX_TARGETS}), chosen by the listener port or the client's pgroute.target option.` }),
  maxconn: limitSchema('maxconn').optional().meta({ description: 'Connections at once to each server of the tenant.' }),
  maxqueue: limitSchema('maxqueue').optional().meta({ description: 'Connections that may wait for a slot.' }),
  allow: allowSchema.optional(),
  maxClientConnections: admissionLimitSchema('maxClientConnections', 'Client connections open at once to the tenant (counted by HAProxy).'),
  maxConnectionRate: admissionLimitSchema('maxConnectionRate', 'New connections per second to the tenant.'),
  maxClientConnectionRate: admissionLimitSchema('maxClientConnectionRate', 'New connections per second to the tenant from one client address.'),
};
export const TENANT_KEYS = Object.keys(tenantShape) as (keyof typeof tenantShape)[];

export const tenantSchema = z
  .strictObject(tenantShape, { error: (issue) => unknownField(TENANT_KEYS)(issue) ?? 'a tenant must be a mapping with id, host and port' })
  .superRefine(targetComplete, ALWAYS)
  .meta({ description: 'A tenant: its id and its primary target (host and port, or members).' });

export type TenantInput = z.infer<typeof tenantSchema>;
export type TargetSpec = z.infer<typeof targetSchema>;

// ---- listeners and routing ----------------------------------------------------------------------

const LISTENER_KEYS = ['port', 'address', 'target', 'tls', 'acceptProxy'] as const;
export const listenerSchema = z.strictObject(
  {
    port: portSchema,
    address: hostSchema.optional(),
    target: targetNameSchema.optional().meta({ description: 'The target a client of this port reaches when it names none.' }),
    tls: z.enum(['optional', 'required'], { error: () => 'tls must be optional or required' }).optional(),
    acceptProxy: booleanSchema('acceptProxy must be true or false').optional().meta({ description: 'true: connections to this port start with a PROXY protocol header (v1 or v2) naming the real client.' }),
  },
  { error: (issue) => unknownField(LISTENER_KEYS)(issue) ?? 'must be a mapping' },
);
const LISTENERS_MESSAGE = 'listeners must be a non-empty list of { port, address?, target? }';
export const listenersSchema = z
  .array(listenerSchema, { error: () => LISTENERS_MESSAGE })
  .min(1, { error: () => LISTENERS_MESSAGE })
  .superRefine((list, ctx) => {
    const seen = new Set<number>();
    list.forEach((l, i) => {
      if (seen.has(l.port)) ctx.addIssue({ code: 'custom', path: [i, 'port'], message: `port ${l.port} is listed twice`, input: l.port });
      seen.add(l.port);
    });
  })
  .meta({ description: 'Public ports (default: one, from --bind and --port).' });

export const KEY_SOURCES = ['options', 'user', 'database'] as const;
const ROUTING_KEYS = ['keys', 'user', 'defaultTarget', 'revealDisabled', 'sni'] as const;
const KEYS_MESSAGE = `routing.keys must be a non-empty list of ${KEY_SOURCES.join(', ')}`;
const SNI_MESSAGE = 'routing.sni must be a pattern with a named group (?<tenant>...), e.g. "^(?<tenant>[a-z0-9-]+)\\.db\\.example\\.com$"';
export const routingSchema = z
  .strictObject(
    {
      keys: z
        .array(z.enum(KEY_SOURCES, { error: (issue) => `routing.keys: ${describeValue(issue.input, 80)} is not one of ${KEY_SOURCES.join(', ')}` }), { error: () => KEYS_MESSAGE })
        .min(1, { error: () => KEYS_MESSAGE })
        .refine((keys) => new Set(keys).size === keys.length, { error: () => 'routing.keys lists a source twice' })
        .optional()
        .meta({ description: 'Where the tenant key is read, in order (default options, database).' }),
      user: z
        .looseObject(
          {
            mode: z.enum(['exact', 'pattern'], { error: () => 'routing.user.mode must be exact or pattern' }),
            pattern: z.string({ error: () => 'routing.user.pattern is required when mode is pattern' }).optional(),
          },
          { error: () => 'routing.user must be a mapping { mode: exact | pattern, pattern }' },
        )
        .refine((u) => u.mode !== 'pattern' || u.pattern !== undefined, { path: ['pattern'], error: () => 'routing.user.pattern is required when mode is pattern' })
        .optional(),
      defaultTarget: targetNameSchema.optional(),
      revealDisabled: booleanSchema('routing.revealDisabled must be true or false').optional(),
      sni: z
        .union([z.string(), z.looseObject({ pattern: z.string() })], { error: () => SNI_MESSAGE })
        .optional()
        .meta({ description: 'A pattern with a named group (?<tenant>...) read from the TLS server name.' }),
    },
    { error: (issue) => unknownField(ROUTING_KEYS, 'routing: ')(issue) ?? 'routing must be a mapping (keys, user, defaultTarget, revealDisabled)' },
  )
  .meta({ description: 'How the agent finds the tenant and target of a connection.' });
export type RoutingInput = z.infer<typeof routingSchema>;

// ---- the file ------------------------------------------------------------------------------------

export const TOP_KEYS = ['tenants', 'listeners', 'routing'] as const;
/** The whole file as editors see it. The file source reads `tenants` item by item (one bad tenant never stops the others). */
export const tenantsFileSchema = z
  .strictObject({
    tenants: z.array(tenantSchema).optional().meta({ description: 'The tenants.' }),
    listeners: listenersSchema.optional(),
    routing: routingSchema.optional(),
  })
  .meta({ title: 'pgroute tenants file', description: 'The tenants pgroute routes to (README, "Tenants file").' });

/**
 * The file around its sections, as the file source checks it first: a mapping of the known
 * sections, tenants a list (each tenant is then validated alone, tenantSchema).
 */
export const fileSectionsSchema = tenantsFileSchema.extend({
  tenants: z.array(z.unknown(), { error: () => 'tenants must be a list' }).nullish(),
  listeners: z.unknown().optional(),
  routing: z.unknown().optional(),
});
export function fileSectionsMessage(error: z.ZodError): string {
  const issue = error.issues[0] as z.core.$ZodIssue;
  if (issue.code === 'unrecognized_keys') return `unknown top-level field ${quote(issue.keys[0] ?? '')} (known: ${TOP_KEYS.join(', ')})`;
  if (issue.path.length === 0) return 'expected a mapping with a tenants list';
  return issue.message;
}

/** The JSON Schema published as tenants.schema.json (what editors validate with). */
export function tenantsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(tenantsFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

// ---- the one message of a failed parse ---------------------------------------------------------------

/**
 * The message of the issue the file's reading order meets first. zod reports the fields of a
 * mapping in the order of its schema, then its unknown fields, then its cross-field rules; today's
 * order puts unknown fields of a tenant right after its id.
 */
export function firstMessage(error: z.ZodError): string {
  const entries: string[] = [];
  for (const i of error.issues) if (i.path[0] === 'targets' && i.path.length >= 2 && !entries.includes(String(i.path[1]))) entries.push(String(i.path[1]));
  const ranked = error.issues.map((issue, at) => ({ issue, key: [...rankOf(issue, entries), at] }));
  ranked.sort((a, b) => compare(a.key, b.key));
  return messageOf(ranked[0]?.issue as z.core.$ZodIssue);
}

/** The order in which a tenant (or a target) was always checked; unknown fields right after the id. */
const CHECK_ORDER = ['id', '<unknown>', '<both>', 'members', 'host', 'port', 'check', 'tls', 'targets', 'enabled', 'maxconn', 'maxqueue', 'allow', ...LIMIT_KEYS];

/** [field, target entry (file order), field within that target]. */
function rankOf(issue: z.core.$ZodIssue, entries: readonly string[]): number[] {
  const path = issue.path;
  const here = (field: PropertyKey | undefined): number => {
    if (field === undefined) return CHECK_ORDER.indexOf(issue.code === 'unrecognized_keys' ? '<unknown>' : issue.code === 'custom' ? '<both>' : 'id');
    const i = CHECK_ORDER.indexOf(String(field));
    return i === -1 ? CHECK_ORDER.length : i;
  };
  if (path[0] === 'targets' && path.length >= 2) return [here('targets'), 1 + entries.indexOf(String(path[1])), here(path[2])];
  return [here(path[0]), 0, 0];
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** An issue's message with where it is: `target pool: ...`, `members[1]: ...`. */
function messageOf(issue: z.core.$ZodIssue): string {
  const path = [...issue.path];
  // targets.<name>.<...>
  if (path[0] === 'targets' && path.length >= 2 && issue.code !== 'invalid_key') {
    const name = String(path[1]);
    const inner = messageOf({ ...issue, path: path.slice(2) } as z.core.$ZodIssue);
    return path.length === 2 && issue.code !== 'unrecognized_keys' && issue.code !== 'custom' ? `target ${name} ${inner}` : `target ${name}: ${inner}`;
  }
  if (path[0] === 'targets' && issue.code === 'invalid_key') {
    const inner = (issue as { issues?: z.core.$ZodIssue[] }).issues?.[0];
    return inner?.message ?? issue.message;
  }
  const m = path.indexOf('members');
  if (m !== -1 && typeof path[m + 1] === 'number') {
    const i = path[m + 1] as number;
    return path.length === m + 2 ? `members[${i}] must be a mapping with host and port` : `members[${i}]: ${issue.message}`;
  }
  return issue.message;
}

/** listeners[i]: ... as a ConfigError message. */
export function listenersMessage(error: z.ZodError): string {
  const issue = error.issues[0] as z.core.$ZodIssue;
  if (issue.path.length === 0) return issue.message;
  const i = issue.path[0] as number;
  return issue.path.length === 1 && issue.code !== 'unrecognized_keys' ? `listeners[${i}] ${issue.message}` : `listeners[${i}]: ${issue.message}`;
}

/** routing: ... as a ConfigError message. */
export function routingMessage(error: z.ZodError): string {
  const issue = error.issues[0] as z.core.$ZodIssue;
  if (issue.path[0] === 'defaultTarget') return `routing.defaultTarget: ${issue.message}`;
  return issue.message;
}
