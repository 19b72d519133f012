import type { Logger } from 'pino';
import type { RefusedTenant } from '../generator/src/index.js';

/** Every refused tenant definition is logged with where it came from and why. */
export function reportRefused(log: Logger, refused: readonly RefusedTenant[]): void {
  for (const r of refused) log.warn({ where: r.where, tenant: r.id, reason: r.reason }, 'tenant definition refused');
}
