// The SPOE contract between haproxy/ (spoe.conf.hbs, haproxy.cfg.hbs, partials/, pgroute.lua) and
// this agent, declared once: which message HAProxy sends with which arguments, and which variables
// the agent sets in reply. agent/test/server/spoe-contract.test.ts reads the templates and fails
// when either side renames one of these.

/** `[pgroute]` scope of spoe.conf, `filter spoe engine pgroute`, `send-spoe-group pgroute ...`. */
export const SPOE_ENGINE = 'pgroute';
/** `spoe-agent pgroute-agent`, and the HAProxy backend of the agent servers. */
export const SPOE_AGENT = 'pgroute-agent';
/** `spoe-group pgroute-startup`, sent by `send-spoe-group pgroute pgroute-startup`. */
export const SPOE_GROUP = 'pgroute-startup';
/** `spoe-message pgroute-startup`: the one message the agent answers. */
export const STARTUP_MESSAGE = 'pgroute-startup';

/** Arguments of the startup message (`args pkt=... src=... dport=... tls=... sni=...`). */
export const STARTUP_ARG = {
  /** BINARY: the client's first packet, complete (req.payload_lv(0,4,0)). */
  pkt: 'pkt',
  /** IPV4/IPV6: the client address. */
  src: 'src',
  /** Integer: the public port the client connected to. */
  dport: 'dport',
  /** BOOL: the connection came through TLS. */
  tls: 'tls',
  /** STRING, or NULL without TLS / server name: the TLS server name. */
  sni: 'sni',
} as const;

/**
 * `spoe-group pgroute-cancel` / `spoe-message pgroute-cancel`: sent instead of the startup message
 * when the first packet is a CancelRequest, with the client address's cancel record
 * (haproxy/partials/cancel-message.hbs).
 */
export const CANCEL_GROUP = 'pgroute-cancel';
export const CANCEL_MESSAGE = 'pgroute-cancel';

/** Arguments of the cancel message. */
export const CANCEL_ARG = {
  /** BINARY: the CancelRequest, complete. */
  pkt: 'pkt',
  /** IPV4/IPV6: the client address. */
  src: 'src',
} as const;

/** The cancel message's per-table arguments: contract.ts cancelTableArgNames() (shared with the generator). */
export { CANCEL_WORD_ARG_PREFIX, CANCEL_WRITTEN_ARG_PREFIX, cancelTableArgNames } from '../contract.js';

/**
 * Held connections of a paused tenant (haproxy/partials/pause-*.hbs): `[pgroute-hold]` scope,
 * `filter spoe engine pgroute-hold` in the hold frontend, `send-spoe-group pgroute-hold pgroute-hold`
 * and the message pgroute-hold, with the startup message's arguments (STARTUP_ARG), answered when
 * the tenant is resumed (server/hold-notify.ts).
 */
export const HOLD_ENGINE = 'pgroute-hold';
export const HOLD_GROUP = 'pgroute-hold';
export const HOLD_MESSAGE = 'pgroute-hold';

/** `option var-prefix pgr`: HAProxy stores the agent's variables as txn.pgr.<name>. */
export const VAR_PREFIX = 'pgr';
/** The agent sets every variable in the transaction scope (txn.). */
export const VAR_SCOPE_NAME = 'txn';

/** Variables the agent sets (each listed in `register-var-names`, else HAProxy drops it). */
export const VERDICT_VAR = {
  /**
   * A startup's route in one variable: ROUTE_FIELDS joined with '|' (routeValue()), split by
   * HAProxy's rules into be, mc, mr, and t, tgt when HAProxy logs (haproxy/partials/route-split.hbs),
   * as a memo hit's map value is. One variable instead of five: each variable an ACK sets costs HAProxy ~1,500-1,800
   * instructions (its name formatted, then looked up), a split rule ~900 on 2.6 and about as much on
   * 3.x, and the ones nothing reads without a log are not split (bench/results/2026-12-06-session9-rate4.md).
   */
  route: 'r',
  /** The tenant's backend: `use_backend %[var(txn.pgr.be)]` (set directly by a cancel's route; a startup's from `r`). */
  backend: 'be',
  /** The tenant id (logs; set directly with a refusal, a hold, a cancel, and a route with a per-address rate, whose counter's key needs it). */
  tenant: 't',
  /** The target name (logs; set directly with a hold or a cancel). */
  target: 'tgt',
  /** A complete PostgreSQL ErrorResponse, written to the client by pgroute.lua. */
  error: 'err',
  /**
   * The tenant's most new connections per second from one client address, with a startup's route
   * when set (unset is none; haproxy/partials/policy.hbs). Not in `r`: rare, and an empty field
   * would read as set.
   */
  maxClientRate: 'mcr',
  /** "1": the tenant is paused, the connection goes to the hold frontend (never set with `be`). */
  hold: 'hold',
  // Set with a startup's route or hold (never on a cancel), for haproxy/partials/cancel-record.hbs:
  /** The routed tenant target's cancel id (contract.ts cancelId()), first word, in decimal; the next one the second word. */
  cancelA: 'ca',
  cancelB: 'cb',
} as const;

/**
 * The fields of a startup's route variable (VERDICT_VAR.route), in order, as the HAProxy variables
 * the split rules set: backend, tenant, target, then the tenant's limits (haproxy/partials/policy.hbs:
 * most client connections at once, most new connections per second; "0": none), which a route
 * without limits leaves out (then neither is set and the connection is not counted).
 */
export const ROUTE_FIELDS = [VERDICT_VAR.backend, VERDICT_VAR.tenant, VERDICT_VAR.target, 'mc', 'mr'] as const;
/** The separator of the route's fields (`field(n,|)`): never in a backend, tenant or target name, nor a count. */
export const ROUTE_SEPARATOR = '|';
