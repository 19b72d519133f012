// The decoder of what HAProxy sends (SPOE.txt 3.2): HAPROXY-HELLO, NOTIFY and HAPROXY-DISCONNECT,
// from a frame body WITHOUT the 4-byte length prefix (what FrameReader yields). The agent's hot
// path reads its one NOTIFY shape in place (server/startup-notify.ts) and falls back to this
// decoder for everything else; a property test proves both read the same.

import { ByteReader } from './byte-reader.js';
import { FRAME_TYPE, KV_KEY, STATUS } from './constants.js';
import { SpopError } from './errors.js';
import { readFrameHeader } from './frame-codec.js';
import { frameKindOf, type HaproxyDisconnectFrame, type HaproxyFrame, type HaproxyHelloFrame, type SpoeArg, type SpoeMessage } from './frames.js';
import { expectBool, expectString, expectUint, readDisconnect, readKvList, splitCommaList } from './kv-list.js';
import { readTypedData } from './typed-data.js';

function readHaproxyHello(r: ByteReader): HaproxyHelloFrame {
  let versions: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string | undefined;
  let healthcheck = false;
  let engineId: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case KV_KEY.SUPPORTED_VERSIONS:
        versions = expectString(v, key, at);
        break;
      case KV_KEY.MAX_FRAME_SIZE:
        maxFrameSize = expectUint(v, key, at);
        break;
      case KV_KEY.CAPABILITIES:
        capabilities = expectString(v, key, at);
        break;
      case KV_KEY.HEALTHCHECK:
        healthcheck = expectBool(v, key, at);
        break;
      case KV_KEY.ENGINE_ID:
        engineId = expectString(v, key, at);
        break;
      default:
        break; // unknown items are silently ignored
    }
  });
  if (versions === undefined) throw new SpopError(STATUS.NO_VERSION, 'HAPROXY-HELLO lacks "supported-versions"');
  if (maxFrameSize === undefined) throw new SpopError(STATUS.NO_FRAME_SIZE, 'HAPROXY-HELLO lacks "max-frame-size"');
  if (capabilities === undefined) throw new SpopError(STATUS.NO_CAPABILITIES, 'HAPROXY-HELLO lacks "capabilities"');
  const frame: HaproxyHelloFrame = {
    type: 'haproxy-hello',
    supportedVersions: splitCommaList(versions),
    maxFrameSize,
    capabilities: splitCommaList(capabilities),
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
  const r = new ByteReader(body);
  const h = readFrameHeader(r);
  switch (h.frameType) {
    case FRAME_TYPE.NOTIFY:
      return { type: 'notify', streamId: h.streamId, frameId: h.frameId, flags: h.flags, messages: readMessages(r) };
    case FRAME_TYPE.HAPROXY_HELLO:
      return readHaproxyHello(r);
    case FRAME_TYPE.HAPROXY_DISCONNECT: {
      const frame: HaproxyDisconnectFrame = { type: 'haproxy-disconnect', ...readDisconnect(r, 'HAPROXY-DISCONNECT') };
      return frame;
    }
    default:
      throw new SpopError(STATUS.INVALID, `unexpected ${String(frameKindOf(h.frameType))} frame: only an agent sends it`, { offset: 0, frameType: h.frameType });
  }
}
