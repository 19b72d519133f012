// Reads the `pgroute.tenant` setting out of the `options` startup parameter. The decision only needs
// this one lookup, so it depends on a TenantOptionReader function; the default one uses the
// protocol package's parser (PostgreSQL's own rules: pg_split_opts + `-c name=value` /
// `--name=value`, names case-insensitive, the last setting wins).

import { parseStartupOptions, TENANT_OPTION } from '../pg/options.js';

/** The value of `pgroute.tenant` in an `options` string, or undefined when it is not set. */
export type TenantOptionReader = (options: string) => string | undefined;

/**
 * Could `options` set pgroute.tenant at all? Without the letters "tenant" (in any case) and
 * without a backslash (which could split them, `ten\ant`), it cannot; that spares the full parse
 * for the common `options=-c search_path=...`.
 */
function mayNameTenant(options: string): boolean {
  return options.indexOf('\\') >= 0 || /tenant/i.test(options);
}

export const readTenantOption: TenantOptionReader = (options) =>
  mayNameTenant(options) ? parseStartupOptions(options).get(TENANT_OPTION) : undefined;
