// The decoder of what HAProxy sends (SPOE.txt 3.2): HAPROXY-HELLO, NOTIFY and HAPROXY-DISCONNECT,
// from a frame body WITHOUT the 4-byte length prefix (what FrameReader yields). The agent's hot
// path reads its one NOTIFY shape in place (readStartupNotify in server/startup-message.ts) and falls back to this
// decoder for everything else; a property test proves both read the same.

import type { ByteReader } from './byte-reader.js';
import { FRAME_TYPE, KV_KEY } from './constants.js';
import { decodeFrame, type PayloadReaders } from './frame-codec.js';
import type { HaproxyFrame, HaproxyHelloFrame, SpoeArg, SpoeMessage } from './frames.js';
import { expectBool, expectString, readDisconnect, readHello, splitCommaList } from './kv-list.js';
import { readTypedData } from './typed-data.js';

function readHaproxyHello(r: ByteReader): HaproxyHelloFrame {
  let healthcheck = false;
  let engineId: string | undefined;
  const hello = readHello(r, 'HAPROXY-HELLO', KV_KEY.SUPPORTED_VERSIONS, (key, v, at) => {
    if (key === KV_KEY.HEALTHCHECK) healthcheck = expectBool(v, key, at);
    else if (key === KV_KEY.ENGINE_ID) engineId = expectString(v, key, at);
  });
  const frame: HaproxyHelloFrame = {
    type: 'haproxy-hello',
    supportedVersions: splitCommaList(hello.version),
    maxFrameSize: hello.maxFrameSize,
    capabilities: splitCommaList(hello.capabilities),
    healthcheck,
  };
  if (engineId !== undefined) frame.engineId = engineId;
  return frame;
}

/** NOTIFY payload: LIST-OF-MESSAGES, each <NAME:string><NB-ARGS:1 byte> { <NAME:string><TYPED-DATA> }. */
function readMessages(r: ByteReader): SpoeMessage[] {
  const messages: SpoeMessage[] = [];
  while (!r.atEnd()) {
    const name = r.lengthPrefixedString('message name');
    const nbArgs = r.u8('message NB-ARGS');
    const args: SpoeArg[] = new Array<SpoeArg>(nbArgs);
    for (let i = 0; i < nbArgs; i++) {
      const argName = r.lengthPrefixedString('argument name');
      args[i] = { name: argName, value: readTypedData(r) };
    }
    messages.push({ name, args });
  }
  return messages;
}

/**
 * Decodes one frame body HAProxy sent. Throws SpopError on any malformation: INVALID for
 * truncation, bad types, unknown frame types (with `frameType` set) and frames only an agent sends;
 * FRAGMENTATION_NOT_SUPPORTED for UNSET frames or a missing FIN; NO_VERSION / NO_FRAME_SIZE /
 * NO_CAPABILITIES for incomplete HELLOs.
 */
export function decodeHaproxyFrame(body: Buffer): HaproxyFrame {
  return decodeFrame(body, HAPROXY_PAYLOADS, 'an agent');
}

const HAPROXY_PAYLOADS: PayloadReaders<HaproxyFrame> = {
  [FRAME_TYPE.NOTIFY]: (r, h) => ({ type: 'notify', streamId: h.streamId, frameId: h.frameId, flags: h.flags, messages: readMessages(r) }),
  [FRAME_TYPE.HAPROXY_HELLO]: readHaproxyHello,
  [FRAME_TYPE.HAPROXY_DISCONNECT]: (r) => ({ type: 'haproxy-disconnect', ...readDisconnect(r, 'HAPROXY-DISCONNECT') }),
};
