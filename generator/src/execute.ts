// Performs a transition's steps (reconcile.ts) in order through a set of effects, and rolls back on
// failure: the files kept at the last savepoint are put back and the savepoint's state is recorded
// as what runs. The effects are the edges (agent store, admin and master sockets, files); the
// sequencing here is the same whether they are real (apply.ts) or a model (the property tests).

import type { Logger } from 'pino';
import type { RouteTableDocument } from '../../agent/src/index.js';
import { ConfigError } from './errors.js';
import type { RuntimeOp } from './plan.js';
import type { Applied, GenerationPlan, PublishPhase, Step, Transition } from './reconcile.js';

export interface Effects<Saved = unknown> {
  /** Gives the agent this table (HAProxy's maps are updated around it); `phase`: an interim table before HAProxy's change, the final one, or the one a failed change leaves. */
  publish(routes: RouteTableDocument, phase: PublishPhase): void | Promise<void>;
  /** Sends the operations' commands; resolves with how many were sent. */
  runtime(ops: readonly RuntimeOp[]): Promise<number>;
  /** The files a reload replaces, as they are now. */
  save(): Promise<Saved>;
  restore(saved: Saved): Promise<void>;
  /** Renders, (checks,) and writes a generation; a refused candidate is a ConfigError. */
  write(generation: GenerationPlan, check: boolean): Promise<void>;
  reload(): Promise<{ readonly ok: boolean; readonly detail: string }>;
}

export interface Executed {
  /** The transition's kind, or 'reload' when the runtime API failed and a reload took over. */
  readonly kind: Transition['kind'];
  readonly detail: string;
  readonly applied: Applied;
}

/**
 * A failed transition: what runs now (undefined: HAProxy is as it was, but the agent may hold a
 * table of the change, so even the running state must be applied again), whether a reload was
 * refused, and the kind it had come to (a failed runtime apply becomes a reload).
 */
export class TransitionError extends Error {
  constructor(
    message: string,
    readonly applied: Applied | undefined,
    readonly reloadFailed: boolean,
    readonly kind: Transition['kind'],
  ) {
    super(message);
  }
}

export async function execute<Saved>(transition: Transition, effects: Effects<Saved>, log: Logger): Promise<Executed> {
  let kind = transition.kind;
  let reasons = transition.reasons;
  let commands = 0;
  let reloaded = '';
  let committed: Applied | undefined;
  let finalFailed: string | undefined;
  let savepoint: { readonly files: Saved; readonly applied: Applied } | undefined;
  // Fails before the final table: HAProxy is as the savepoint recorded it (or untouched before one).
  const fail = async (message: string, reloadFailed: boolean, recorded: Applied | undefined = savepoint?.applied): Promise<never> => {
    // A restore that fails too is said, but the transition's own error (with what HAProxy holds)
    // is the one thrown: the caller's next step depends on it.
    const restored = savepoint === undefined ? '' : await effects.restore(savepoint.files).then(
      () => '',
      (err: Error) => {
        log.error({ err: err.message }, 'could not put back the files of the last-known-good configuration');
        return ` (but not all of its files could be put back: ${err.message})`;
      },
    );
    // Nothing is coming: connections held for a target the change was adding are answered now.
    const rollback = transition.rollback;
    if (rollback !== undefined) {
      await Promise.resolve()
        .then(() => effects.publish(rollback, 'rollback'))
        .catch((err: Error) => log.error({ err: err.message }, "could not update HAProxy's maps for the route table of the running configuration"));
    }
    throw new TransitionError(`${message}${restored}`, recorded, reloadFailed, kind);
  };

  const queue: Step[] = [...transition.steps];
  for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
    switch (step.kind) {
      case 'publish':
        try {
          await effects.publish(step.routes, step.phase);
        } catch (err) {
          // The agent has the table (HAProxy's maps failed around it: maps-publisher.ts).
          const message = (err as Error).message;
          if (step.phase !== 'final') await fail(message, false);
          // After HAProxy's change: carry on (the commit, and after runtime commands the files, which
          // must say the same), then fail with the commit's state recorded unsettled, so that the
          // maps are tried again.
          finalFailed = message;
        }
        break;
      case 'runtime':
        try {
          commands = await effects.runtime(step.ops);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'runtime API apply failed; falling back to a reload');
          queue.splice(0, queue.length, ...step.fallback());
          kind = 'reload';
          reasons = ['runtime API failed'];
        }
        break;
      case 'savepoint':
        try {
          savepoint = { files: await effects.save(), applied: step.applied };
        } catch (err) {
          // Nothing written yet: HAProxy is as this savepoint would have recorded it (partial, uncertain, after runtime commands).
          await fail(`the running configuration's files could not be kept before the change: ${(err as Error).message}`, false, step.applied);
        }
        break;
      case 'write':
        try {
          await effects.write(step.generation, step.check);
        } catch (err) {
          const message = (err as Error).message;
          if (!step.required) {
            log.error({ err: message }, 'applied through the runtime API, but writing the matching files failed; the next reload re-renders them');
            break;
          }
          await fail(savepoint !== undefined && err instanceof ConfigError ? `the new configuration was refused before any reload: ${message}` : message, false);
        }
        break;
      case 'reload': {
        log.info({ reasons: step.reasons }, 'reloading HAProxy');
        const outcome = await effects.reload().catch((err: Error) => ({ ok: false, detail: err.message }));
        if (!outcome.ok) await fail(`HAProxy reload failed (${outcome.detail}); restored the last-known-good configuration`, true);
        reloaded = outcome.detail;
        break;
      }
      case 'commit':
        committed = step.applied;
        break;
    }
  }
  if (committed === undefined) throw new Error('a transition ended without a commit step (a bug in reconcile)');
  if (finalFailed !== undefined) throw new TransitionError(finalFailed, { ...committed, settled: false }, false, kind);
  return { kind, detail: describe(kind, committed, transition.ops.length, commands, reasons, reloaded), applied: committed };
}

function describe(kind: Transition['kind'], applied: Applied, ops: number, commands: number, reasons: readonly string[], reloaded: string): string {
  switch (kind) {
    case 'initial':
      return `${applied.snapshot.tenants.length} tenant(s) rendered`;
    case 'agent':
      return 'route table only';
    case 'runtime':
      return `${ops} operation(s), ${commands} command(s)`;
    case 'reload':
      return `${reasons.join('; ')}: ${reloaded}`;
  }
}
