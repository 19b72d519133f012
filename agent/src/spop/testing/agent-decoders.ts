// Test and benchmark support: decodes the frames the agent sends (AGENT-HELLO, ACK,
// AGENT-DISCONNECT), so tests and the benchmark can read the agent's answers as HAProxy would.

import type { ByteReader } from '../byte-reader.js';
import { ACTION_NB_ARGS, ACTION_TYPE, FRAME_TYPE, KV_KEY } from '../constants.js';
import { invalid } from '../errors.js';
import { decodeFrame, type PayloadReaders } from '../frame-codec.js';
import { SCOPE_BY_CODE, type Action, type AgentFrame, type AgentHelloFrame, type VarScope } from '../frames.js';
import { readDisconnect, readHello, splitCommaList } from '../kv-list.js';
import { readTypedData } from '../typed-data.js';

function readAgentHello(r: ByteReader): AgentHelloFrame {
  const hello = readHello(r, 'AGENT-HELLO', KV_KEY.VERSION);
  return { type: 'agent-hello', version: hello.version.replace(/\s+/g, ''), maxFrameSize: hello.maxFrameSize, capabilities: splitCommaList(hello.capabilities) };
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
  return decodeFrame(body, AGENT_PAYLOADS, 'HAProxy');
}

const AGENT_PAYLOADS: PayloadReaders<AgentFrame> = {
  [FRAME_TYPE.ACK]: (r, h) => ({ type: 'ack', streamId: h.streamId, frameId: h.frameId, flags: h.flags, actions: readActions(r) }),
  [FRAME_TYPE.AGENT_HELLO]: readAgentHello,
  [FRAME_TYPE.AGENT_DISCONNECT]: (r) => ({ type: 'agent-disconnect', ...readDisconnect(r, 'AGENT-DISCONNECT') }),
};
