// Test and benchmark support: encodes the frames HAProxy sends (HAPROXY-HELLO, NOTIFY,
// HAPROXY-DISCONNECT), so tests and the benchmark can play HAProxy. The agent never sends these.

import { ByteWriter } from '../byte-writer.js';
import { FRAME_FLAG, FRAME_TYPE, KV_KEY } from '../constants.js';
import { invalid } from '../errors.js';
import { Payload, checkCommaItems, checkFlags, checkId, checkNbArgs, checkUint32, writeFrame } from '../frame-codec.js';
import type { HaproxyDisconnectFrame, HaproxyFrame, HaproxyHelloFrame, NotifyFrame, SpoeMessage } from '../frames.js';
import { disconnectPayload } from '../agent-frames.js';

export function encodeHaproxyHello(frame: HaproxyHelloFrame, maxFrameSize?: number): Buffer {
  checkUint32(frame.maxFrameSize, 'max-frame-size');
  const p = new Payload();
  p.kv(KV_KEY.SUPPORTED_VERSIONS, { type: 'string', value: checkCommaItems(frame.supportedVersions, 'supported-versions') });
  p.kv(KV_KEY.MAX_FRAME_SIZE, { type: 'uint32', value: frame.maxFrameSize });
  p.kv(KV_KEY.CAPABILITIES, { type: 'string', value: checkCommaItems(frame.capabilities, 'capabilities') });
  if (frame.healthcheck) p.kv(KV_KEY.HEALTHCHECK, { type: 'bool', value: true });
  if (frame.engineId !== undefined) p.kv(KV_KEY.ENGINE_ID, { type: 'string', value: frame.engineId });
  return writeFrame(FRAME_TYPE.HAPROXY_HELLO, FRAME_FLAG.FIN, 0, 0, p, maxFrameSize);
}

/** The LIST-OF-MESSAGES of a NOTIFY, prepared. */
export function messagesPayload(messages: readonly SpoeMessage[]): Payload {
  const p = new Payload();
  for (const m of messages) {
    checkNbArgs(m.args.length, `message ${JSON.stringify(m.name)}`);
    p.str(m.name, 'message name');
    p.u8(m.args.length);
    for (const a of m.args) {
      p.str(a.name, 'argument name');
      p.val(a.value);
    }
  }
  return p;
}

/** The LIST-OF-MESSAGES of a NOTIFY as bytes (a benchmark sends one payload with many ids). */
export function encodeMessages(messages: readonly SpoeMessage[]): Buffer {
  const p = messagesPayload(messages);
  const w = new ByteWriter(p.size);
  p.write(w);
  return w.finish();
}

export function encodeNotify(frame: NotifyFrame, maxFrameSize?: number): Buffer {
  checkId(frame.streamId, 'STREAM-ID');
  checkId(frame.frameId, 'FRAME-ID');
  checkFlags(frame.flags);
  return writeFrame(FRAME_TYPE.NOTIFY, frame.flags, frame.streamId, frame.frameId, messagesPayload(frame.messages), maxFrameSize);
}

export function encodeHaproxyDisconnect(frame: HaproxyDisconnectFrame, maxFrameSize?: number): Buffer {
  return writeFrame(FRAME_TYPE.HAPROXY_DISCONNECT, FRAME_FLAG.FIN, 0, 0, disconnectPayload(frame.statusCode, frame.message), maxFrameSize);
}

export function encodeHaproxyFrame(frame: HaproxyFrame, maxFrameSize?: number): Buffer {
  switch (frame.type) {
    case 'haproxy-hello':
      return encodeHaproxyHello(frame, maxFrameSize);
    case 'notify':
      return encodeNotify(frame, maxFrameSize);
    case 'haproxy-disconnect':
      return encodeHaproxyDisconnect(frame, maxFrameSize);
    default: {
      const unknown: { type?: unknown } = frame;
      throw invalid(`unknown HAProxy frame type ${JSON.stringify(unknown.type)}`);
    }
  }
}
