import { describe, expect, it } from 'vitest';
import { startRounds } from '../../src/replicas/rounds.js';

describe('startRounds: the replicas\' periodic exchange loop', () => {
  it('never runs two rounds at once, reports every failure (first marked), the recovery once, and stop waits for the round in flight', async () => {
    const outcomes = ['fail', 'fail', 'ok', 'ok', 'fail', 'ok'];
    const seen: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let started = 0;
    let release: () => void = () => undefined;
    const last = new Promise<void>((r) => (release = r));
    const rounds = startRounds({
      intervalMs: 1,
      async round() {
        started++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        const o = outcomes.shift();
        if (outcomes.length === 0) release();
        if (o === 'fail') throw new Error(`round ${seen.length}`);
      },
      failed: (err, first) => seen.push(`failed ${first ? 'first' : 'again'}`),
      recovered: () => seen.push('recovered'),
    });
    await last;
    await rounds.stop();
    expect(maxInFlight).toBe(1);
    expect(seen).toEqual(['failed first', 'failed again', 'recovered', 'failed first', 'recovered']);
    // Stopped: no round starts after stop() resolved.
    const after = started;
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toBe(after);
  });
});
