// The start-up guards of the Kubernetes and Docker watchers (sources/first-view.ts): a deadline that
// turns a list nobody answers into a failure, and a warning that repeats what is still awaited.

import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { awaitFirstView, warnWhileWaiting, withDeadline } from '../../src/sources/first-view.js';

afterEach(() => {
  vi.useRealTimers();
});

function capturingLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('withDeadline', () => {
  it('passes an answer through', async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000, 'listing x')).resolves.toBe(7);
  });

  it('a list that never settles fails after the deadline, naming what was asked', async () => {
    vi.useFakeTimers();
    const never = new Promise<number>(() => {});
    const p = withDeadline(never, 2_000, 'listing kubernetes services in * from http://10.0.0.1:6443');
    const settled = expect(p).rejects.toThrow('listing kubernetes services in * from http://10.0.0.1:6443: no answer within 2000 ms');
    await vi.advanceTimersByTimeAsync(2_000);
    await settled;
  });

  it("a failure before the deadline is the list's own", async () => {
    await expect(withDeadline(Promise.reject(new Error('connect ECONNREFUSED')), 1_000, 'x')).rejects.toThrow('connect ECONNREFUSED');
  });
});

describe('warnWhileWaiting', () => {
  it('warns every interval with what is awaited and the last error, and stops when done', async () => {
    vi.useFakeTimers();
    const { log, lines } = capturingLog();
    let pending: { what: string; lastError?: string } | undefined = { what: 'the first list of kubernetes services in * from https://api:6443' };
    const wait = warnWhileWaiting(log, 10_000, () => pending, 'check that the API server is reachable');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, waitingSeconds: 10, lastError: 'none yet (no answer)' });
    expect(String(lines[0]?.msg)).toMatch(/^still waiting for the first list of kubernetes services in \* from https:\/\/api:6443 \(10 s so far; retrying with backoff\): .*\/readyz answers 503 until it arrives; check that the API server is reachable$/);
    pending = { ...pending, lastError: 'connect ECONNREFUSED' };
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines[1]).toMatchObject({ waitingSeconds: 20, lastError: 'connect ECONNREFUSED' });
    pending = undefined;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines).toHaveLength(2);
    wait.done();
    pending = { what: 'x' };
    await vi.advanceTimersByTimeAsync(30_000);
    expect(lines).toHaveLength(2);
  });
});

describe('awaitFirstView', () => {
  it('warns while the first view is awaited, and stops once it came', async () => {
    vi.useFakeTimers();
    const { log, lines } = capturingLog();
    let arrive: () => void = () => {};
    const waiting = () => ({ what: 'the first list of Docker containers at unix:///x.sock', lastError: 'connect ENOENT /x.sock' });
    const awaited = awaitFirstView(new Promise<void>((resolve) => (arrive = resolve)), { log, intervalMs: 10_000, waiting, check: 'check dockerd', stop: async () => {} });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(lines.map((l) => l.lastError)).toEqual(['connect ENOENT /x.sock', 'connect ENOENT /x.sock']);
    arrive();
    await awaited;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(lines).toHaveLength(2);
  });

  it('with a deadline (plan) gives up after it: the source stopped, one error naming what, how long, the last error and what to check', async () => {
    vi.useFakeTimers();
    const { log, lines } = capturingLog();
    let stopped = 0;
    const waiting = () => ({ what: 'the first list of kubernetes services in * from https://k8s:6443', lastError: 'connect ECONNREFUSED' });
    const awaited = awaitFirstView(new Promise<void>(() => {}), { log, intervalMs: 1_000, waiting, check: 'check the API server', giveUpMs: 10_000, stop: async () => void stopped++ });
    const outcome = expect(awaited).rejects.toThrow(/^gave up waiting for the first list of kubernetes services in \* from https:\/\/k8s:6443 after 10 s: connect ECONNREFUSED; check the API server$/);
    await vi.advanceTimersByTimeAsync(10_000);
    await outcome;
    expect(stopped).toBe(1);
    expect(lines).toHaveLength(0); // one failure, no warnings on the way
  });

  it('with a deadline, a first view in time resolves and stops nothing', async () => {
    vi.useFakeTimers();
    const { log } = capturingLog();
    let stopped = 0;
    const awaited = awaitFirstView(Promise.resolve(), { log, intervalMs: 1_000, waiting: () => undefined, check: 'x', giveUpMs: 10_000, stop: async () => void stopped++ });
    await expect(awaited).resolves.toBeUndefined();
    expect(stopped).toBe(0);
  });
});
