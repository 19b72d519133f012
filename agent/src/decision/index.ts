// The routing decision: pure functions of (route table, connection facts, cancel records, time).

export type * from './types.js';
export {
  decide,
  notServedMessage,
  INTERNAL_ERROR_MESSAGE,
  SQLSTATE,
} from './decide.js';
export {
  compilePolicy,
  findTenantKey,
  type CompiledPolicy,
  type KeyClaim,
  type TenantKey,
} from './tenant-key.js';
export { readTenantOption, type TenantOptionReader } from './options-tenant.js';
export {
  CancelRateLimiter,
  CANCEL_DEFAULTS,
  cancelTargetIndex,
  normalizeAddress,
  recordIds,
  routeCancel,
  type CancelRateOptions,
  type CancelRouting,
  type CancelTarget,
} from './cancel-router.js';
export { MAX_ECHO_CHARS, quoteValue, sanitizeText } from '../quote.js';
