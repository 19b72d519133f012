/** The HAProxy backend that serves one target of one tenant. Ids and targets are validated, so the
 * name only ever holds [a-z0-9-.]. */
export function backendName(tenantId: string, target: string): string {
  return `pg.${tenantId}.${target}`;
}
