// Test and benchmark support: decodes the frames the agent sends (AGENT-HELLO, ACK,
// AGENT-DISCONNECT), so tests and the benchmark can read the agent's answers as HAProxy would.

import { ByteReader } from '../byte-reader.js';
import { ACTION_NB_ARGS, ACTION_TYPE, FRAME_TYPE, KV_KEY, STATUS } from '../constants.js';
import { SpopError, invalid } from '../errors.js';
import { readFrameHeader } from '../frame-codec.js';
import { SCOPE_BY_CODE, frameKindOf, type Action, type AgentFrame, type AgentHelloFrame, type VarScope } from '../frames.js';
import { expectString, expectUint, readDisconnect, readKvList, splitCommaList } from '../kv-list.js';
import { readTypedData } from '../typed-data.js';

function readAgentHello(r: ByteReader): AgentHelloFrame {
  let version: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case KV_KEY.VERSION:
        version = expectString(v, key, at).replace(/\s+/g, '');
        break;
      case KV_KEY.MAX_FRAME_SIZE:
        maxFrameSize = expectUint(v, key, at);
        break;
      case KV_KEY.CAPABILITIES:
        capabilities = expectString(v, key, at);
        break;
      default:
        break;
    }
  });
  if (version === undefined) throw new SpopError(STATUS.NO_VERSION, 'AGENT-HELLO lacks "version"');
  if (maxFrameSize === undefined) throw new SpopError(STATUS.NO_FRAME_SIZE, 'AGENT-HELLO lacks "max-frame-size"');
  if (capabilities === undefined) throw new SpopError(STATUS.NO_CAPABILITIES, 'AGENT-HELLO lacks "capabilities"');
  return { type: 'agent-hello', version, maxFrameSize, capabilities: splitCommaList(capabilities) };
}

function readScope(r: ByteReader): VarScope {
  const at = r.pos;
  const code = r.u8('VAR-SCOPE');
  const scope = SCOPE_BY_CODE[code];
  if (scope === undefined) throw invalid(`unknown VAR-SCOPE ${code} at offset ${at}`, at);
  return scope;
}

/** ACK payload: LIST-OF-ACTIONS (SPOE.txt 3.4), set-var and unset-var in any scope. */
export function readActions(r: ByteReader): Action[] {
  const actions: Action[] = [];
  while (!r.atEnd()) {
    const at = r.pos;
    const actionType = r.u8('ACTION-TYPE');
    const nbArgs = r.u8('action NB-ARGS');
    if (actionType === ACTION_TYPE.SET_VAR) {
      if (nbArgs !== ACTION_NB_ARGS.SET_VAR) throw invalid(`set-var at offset ${at} has ${nbArgs} args, expected ${ACTION_NB_ARGS.SET_VAR}`, at);
      const scope = readScope(r);
      const name = r.lengthPrefixedString('variable name');
      actions.push({ type: 'set-var', scope, name, value: readTypedData(r) });
    } else if (actionType === ACTION_TYPE.UNSET_VAR) {
      if (nbArgs !== ACTION_NB_ARGS.UNSET_VAR) throw invalid(`unset-var at offset ${at} has ${nbArgs} args, expected ${ACTION_NB_ARGS.UNSET_VAR}`, at);
      const scope = readScope(r);
      actions.push({ type: 'unset-var', scope, name: r.lengthPrefixedString('variable name') });
    } else {
      throw invalid(`unknown ACTION-TYPE ${actionType} at offset ${at}`, at);
    }
  }
  return actions;
}

/** Decodes one frame body (no length prefix) the agent sent; the same errors as decodeHaproxyFrame(). */
export function decodeAgentFrame(body: Buffer): AgentFrame {
  const r = new ByteReader(body);
  const h = readFrameHeader(r);
  switch (h.frameType) {
    case FRAME_TYPE.ACK:
      return { type: 'ack', streamId: h.streamId, frameId: h.frameId, flags: h.flags, actions: readActions(r) };
    case FRAME_TYPE.AGENT_HELLO:
      return readAgentHello(r);
    case FRAME_TYPE.AGENT_DISCONNECT:
      return { type: 'agent-disconnect', ...readDisconnect(r, 'AGENT-DISCONNECT') };
    default:
      throw new SpopError(STATUS.INVALID, `unexpected ${String(frameKindOf(h.frameType))} frame: only HAProxy sends it`, { offset: 0, frameType: h.frameType });
  }
}
