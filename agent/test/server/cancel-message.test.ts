// The cancel message as HAProxy sends it with one record per replica's table.

import { describe, expect, it } from 'vitest';
import { cancelId } from '../../src/contract.js';
import { encodeCancelRequest } from '../../src/pg/frontend.js';
import { cancelMessage } from '../../src/server/cancel-message.js';
import { cancelMessageOf, cancelMessageOfTables } from './spop-client.js';

const PKT = encodeCancelRequest(7, Buffer.from([1, 2, 3, 4]));
const A = cancelId('acme', 'primary');
const G = cancelId('globex', 'primary');
const I = cancelId('initech', 'pool');

describe('cancelMessage', () => {
  it('one table: its ids, newest first', () => {
    expect(cancelMessage(cancelMessageOf(PKT, '10.0.0.1', [A, G]))?.facts.cancelIds).toEqual([G, A]);
    expect(cancelMessage(cancelMessageOf(PKT, '10.0.0.1'))?.facts.cancelIds).toEqual([]);
  });

  it('several tables: the union, deduplicated, whichever tables hold a record', () => {
    const m = cancelMessageOfTables(PKT, '10.0.0.1', [{ ids: [A], written: 1 }, undefined, { ids: [A, I], written: 2 }, { ids: [G], written: 1 }]);
    const facts = cancelMessage(m)?.facts;
    expect(facts?.cancelIds).toEqual([A, I, G]);
    expect(facts?.clientAddress).toBe('10.0.0.1');
  });

  it('ignores argument names it does not know (a word index beyond the record, a malformed table index)', () => {
    const m = cancelMessageOf(PKT, '10.0.0.1', [A]);
    const extra = [
      { name: 'g0_8', value: { type: 'int64' as const, value: 5n } },
      { name: 'n01', value: { type: 'int64' as const, value: 1n } },
      { name: 'g01_0', value: { type: 'int64' as const, value: 5n } },
      { name: 'g', value: { type: 'int64' as const, value: 5n } },
    ];
    expect(cancelMessage({ ...m, args: [...m.args, ...extra] })?.facts.cancelIds).toEqual([A]);
  });
});
