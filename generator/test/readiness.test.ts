import { describe, expect, it } from 'vitest';
import { Readiness } from '../src/readiness.js';

describe('Readiness', () => {
  it('is ready only once every hold is released, whatever the order', () => {
    const r = new Readiness();
    expect(r.notReady()).toBeUndefined();
    r.hold('haproxy', 'HAProxy is starting');
    r.hold('peers', 'peers resync');
    expect(r.notReady()).toBe('HAProxy is starting; peers resync');
    r.release('peers');
    expect(r.notReady()).toBe('HAProxy is starting');
    r.hold('haproxy', 'HAProxy does not answer');
    expect(r.notReady()).toBe('HAProxy does not answer');
    r.release('haproxy');
    r.release('never held');
    expect(r.notReady()).toBeUndefined();
  });
});
