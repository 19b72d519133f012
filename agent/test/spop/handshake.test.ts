import { describe, expect, it } from 'vitest';
import { STATUS, negotiateHello, parseVersion, type HaproxyHelloFrame } from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';

const hello = (over: Partial<HaproxyHelloFrame> = {}): HaproxyHelloFrame => ({
  type: 'haproxy-hello',
  supportedVersions: ['2.0'],
  maxFrameSize: 16380,
  capabilities: ['pipelining', 'async'],
  healthcheck: false,
  engineId: 'E1',
  ...over,
});

const limits = { maxFrameSize: 4096, capabilities: ['pipelining', 'async'] as const };

describe('negotiateHello', () => {
  it('answers with version 2.0, min(max-frame-size) and the capability intersection', () => {
    const r = negotiateHello(hello(), { maxFrameSize: 4096, capabilities: ['pipelining'] });
    expect(r).toEqual({
      ok: true,
      reply: { type: 'agent-hello', version: '2.0', maxFrameSize: 4096, capabilities: ['pipelining'] },
      maxFrameSize: 4096,
      capabilities: new Set(['pipelining']),
      healthcheck: false,
      closeAfterReply: false,
      engineId: 'E1',
    });
    // The reply is encodable and decodes back.
    expect(decodeFrame(encodeFrame(r.reply).subarray(4))).toEqual(r.reply);
  });

  it("takes HAProxy's size when it is the smaller", () => {
    const r = negotiateHello(hello({ maxFrameSize: 1024 }), limits);
    expect(r.ok && r.maxFrameSize).toBe(1024);
  });

  it('never announces capabilities HAProxy did not offer (or fragmentation)', () => {
    const r = negotiateHello(hello({ capabilities: ['fragmentation', 'async', 'future-thing'] }), limits);
    expect(r.ok && r.reply.capabilities).toEqual(['async']);
  });

  it('flags health checks so the caller closes after replying', () => {
    const r = negotiateHello(hello({ healthcheck: true, capabilities: [] }), limits);
    expect(r).toMatchObject({ ok: true, healthcheck: true, closeAfterReply: true });
  });

  it('accepts any 2.x announcement (it implies 2.0)', () => {
    expect(negotiateHello(hello({ supportedVersions: ['1.0', '2.3'] }), limits).ok).toBe(true);
  });

  it('refuses with BAD_VERSION (8) when no 2.x is offered', () => {
    for (const v of [[], ['1.0'], ['3.0'], ['2'], ['x.y'], ['0.2']]) {
      const r = negotiateHello(hello({ supportedVersions: v }), limits);
      expect(r.ok).toBe(false);
      expect(r.reply).toMatchObject({ type: 'agent-disconnect', statusCode: STATUS.BAD_VERSION });
      expect(r.closeAfterReply).toBe(true);
    }
  });

  it('refuses with BAD_FRAME_SIZE (9) when HAProxy offers less than 256 bytes', () => {
    const r = negotiateHello(hello({ maxFrameSize: 255 }), limits);
    expect(r.reply).toMatchObject({ type: 'agent-disconnect', statusCode: STATUS.BAD_FRAME_SIZE });
    expect(negotiateHello(hello({ maxFrameSize: 256 }), limits).ok).toBe(true);
  });

  it('refusals are encodable (message within 255 bytes)', () => {
    const r = negotiateHello(hello({ supportedVersions: ['1.0'] }), limits);
    expect(() => encodeFrame(r.reply)).not.toThrow();
  });

  it('rejects an invalid agent configuration with RangeError', () => {
    expect(() => negotiateHello(hello(), { maxFrameSize: 100, capabilities: [] })).toThrow(RangeError);
  });
});

describe('parseVersion', () => {
  it('parses Major.Minor like HAProxy', () => {
    expect(parseVersion('2.0')).toEqual({ major: 2, minor: 0 });
    expect(parseVersion(' 1.5 ')).toEqual({ major: 1, minor: 5 });
    expect(parseVersion('2.1000')).toBeNull();
    expect(parseVersion('0.9')).toBeNull();
    expect(parseVersion('2')).toBeNull();
  });
});
