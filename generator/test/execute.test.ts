// execute()'s rollback when the rollback itself fails: the transition's error, with the state
// HAProxy holds, is still what the caller gets.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { execute, TransitionError, type Effects } from '../src/execute.js';
import { EMPTY_LAYOUT } from '../src/layout.js';
import type { Applied, GenerationPlan, Transition } from '../src/reconcile.js';

const log = pino({ level: 'silent' });

describe('execute', () => {
  it('a failed reload whose files cannot all be put back still throws a TransitionError with the savepoint state, naming both', async () => {
    const applied = { layout: EMPTY_LAYOUT, settled: true, uncertain: false } as unknown as Applied;
    const transition: Transition = {
      kind: 'reload',
      reasons: ['test'],
      ops: [],
      steps: [
        { kind: 'savepoint', applied },
        { kind: 'write', generation: {} as GenerationPlan, check: true, required: true },
        { kind: 'reload', reasons: ['test'] },
        { kind: 'commit', applied },
      ],
    } as Transition;
    const effects: Effects<string> = {
      publish: () => undefined,
      runtime: async () => 0,
      save: async () => 'files',
      restore: async () => {
        throw new Error('/state/haproxy.cfg: EMFILE');
      },
      write: async () => undefined,
      reload: async () => ({ ok: false, detail: 'HAProxy refused it' }),
    };
    const err = await execute(transition, effects, log).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TransitionError);
    const t = err as TransitionError;
    expect(t.applied).toBe(applied);
    expect(t.reloadFailed).toBe(true);
    expect(t.message).toBe('HAProxy reload failed (HAProxy refused it); restored the last-known-good configuration (but not all of its files could be put back: /state/haproxy.cfg: EMFILE)');
  });
});
