// The access switch's paused state reaches the agent's table: applyAccess marks the tenant paused
// (never while disabled), and a paused entry outlives a restart in access.json like the others.

import { describe, expect, it } from 'vitest';
import { accessFile, applyAccess, parseAccess, pausedTenants } from '../src/access.js';
import type { Tenant, TenantSnapshot } from '../src/model.js';

const t = (id: string, enabled = true): Tenant => ({ id, enabled, targets: { primary: { host: '127.0.0.1', port: 5432 } } });
const snapshot: TenantSnapshot = { tenants: [t('acme'), t('globex'), t('initech', false)], refused: [] };

describe('access switch: paused', () => {
  it('marks paused tenants, leaves the others, and a disabled source stays disabled', () => {
    const access = accessFile({ acme: { state: 'paused', version: 5 }, globex: { state: 'disabled', version: 3 }, initech: { state: 'paused', version: 4 } });
    expect(pausedTenants(access)).toEqual(['acme', 'initech']);
    const applied = applyAccess(snapshot, access).tenants;
    expect(applied.find((x) => x.id === 'acme')).toMatchObject({ enabled: true, paused: true });
    expect(applied.find((x) => x.id === 'globex')).toEqual({ ...t('globex'), enabled: false });
    expect(applied.find((x) => x.id === 'initech')).toEqual(t('initech', false));
  });

  it('is read back from access.json', () => {
    const text = JSON.stringify({ disabled: [], entries: { acme: { state: 'paused', version: 7 } } });
    expect(parseAccess(text).entries).toEqual({ acme: { state: 'paused', version: 7 } });
    expect(pausedTenants(parseAccess(text))).toEqual(['acme']);
  });
});
