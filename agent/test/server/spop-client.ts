// A small synthetic HAProxy for tests: speaks SPOP to a real agent over TCP, built on the codec
// (encodeFrame / FrameReader / decodeFrame). Frames the agent sends are queued; tests await them.

import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import {
  FrameReader,
  type AckFrame,
  type AgentDisconnectFrame,
  type AgentHelloFrame,
  type Frame,
  type HaproxyHelloFrame,
  type NotifyFrame,
  type SpoeMessage,
  type TypedValue,
} from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { CANCEL_MESSAGE, ROUTE_FIELDS, ROUTE_SEPARATOR, STARTUP_MESSAGE, VERDICT_VAR, cancelTableArgNames } from '../../src/server/spoe-contract.js';

/** What HAProxy 2.6 announces (SPOE.txt 3.2.4): pipelining and async, our frame size. */
export function haproxyHello(overrides: Partial<HaproxyHelloFrame> = {}): HaproxyHelloFrame {
  return {
    type: 'haproxy-hello',
    supportedVersions: ['2.0'],
    maxFrameSize: 16380,
    capabilities: ['pipelining', 'async'],
    healthcheck: false,
    engineId: 'test-engine',
    ...overrides,
  };
}

/** The `pgroute-startup` message of haproxy/spoe.conf.hbs: pkt=binary, src=ip, dport=int. */
/**
 * The cancel message as HAProxy sends it with one cancel table (one replica): the packet, the
 * client address and the address's record (`ids` as contract.ts cancelId() gives them, in slot
 * order; `written` defaults to their count). `ids` undefined: no record (HAProxy sends NULL samples).
 */
export function cancelMessageOf(pkt: Buffer, src: string, ids?: readonly (readonly [number, number])[], written = ids?.length ?? 0): SpoeMessage {
  return cancelMessageOfTables(pkt, src, [ids === undefined ? undefined : { ids, written }]);
}

/** The cancel message with the address's record in each replica's table (undefined: none there). */
export function cancelMessageOfTables(
  pkt: Buffer,
  src: string,
  tables: readonly ({ readonly ids: readonly (readonly [number, number])[]; readonly written: number } | undefined)[],
): SpoeMessage {
  const srcValue: TypedValue = src.includes(':') ? { type: 'ipv6', value: src } : { type: 'ipv4', value: src };
  return {
    name: CANCEL_MESSAGE,
    args: [
      { name: 'pkt', value: { type: 'binary', value: pkt } },
      { name: 'src', value: srcValue },
      ...tables.flatMap((t, j) => {
        const int = (v: number | undefined): TypedValue => (t === undefined ? { type: 'null' } : { type: 'int64', value: BigInt(v ?? 0) });
        const names = cancelTableArgNames(j);
        return [
          { name: names.written, value: int(t?.written) },
          ...names.words.map((name, i) => ({ name, value: int(t?.ids[i >> 1]?.[i & 1]) })),
        ];
      }),
    ],
  };
}

export function startupMessage(pkt: Buffer, src = '127.0.0.1', dport = 5432): SpoeMessage {
  const srcValue: TypedValue = src.includes(':') ? { type: 'ipv6', value: src } : { type: 'ipv4', value: src };
  return {
    name: STARTUP_MESSAGE,
    args: [
      { name: 'pkt', value: { type: 'binary', value: pkt } },
      { name: 'src', value: srcValue },
      // HAProxy encodes every integer sample (dst_port is a SINT) as an INT64.
      { name: 'dport', value: { type: 'int64', value: BigInt(dport) } },
    ],
  };
}

export function notify(streamId: number, frameId: number, messages: SpoeMessage[]): NotifyFrame {
  return { type: 'notify', streamId, frameId, flags: 1, messages };
}

/** An ACK's set-var actions as name -> value; throws on anything but transaction-scope set-var. */
export function ackVars(ack: AckFrame): Map<string, TypedValue> {
  const vars = new Map<string, TypedValue>();
  for (const a of ack.actions) {
    if (a.type !== 'set-var' || a.scope !== 'transaction') throw new Error(`unexpected action ${JSON.stringify(a)}`);
    if (vars.has(a.name)) throw new Error(`variable ${a.name} set twice`);
    vars.set(a.name, a.value);
  }
  return vars;
}

/** The string value of a variable, or throws. */
export function stringVar(vars: Map<string, TypedValue>, name: string): string {
  const v = vars.get(name);
  if (v?.type !== 'string') throw new Error(`${name} is ${JSON.stringify(v)}, expected a STRING`);
  return v.value;
}

/**
 * A variable of a startup's route as HAProxy has it after its split rules (haproxy/partials/route-split.hbs):
 * the field of `r` (ROUTE_FIELDS order), or the variable itself when the ACK set it (a cancel, a hold,
 * a refusal); throws when neither holds it.
 */
export function routeVar(vars: Map<string, TypedValue>, name: string): string {
  const i = (ROUTE_FIELDS as readonly string[]).indexOf(name);
  const route = vars.get(VERDICT_VAR.route);
  if (i >= 0 && route !== undefined) {
    if (route.type !== 'string') throw new Error(`r is ${JSON.stringify(route)}, expected a STRING`);
    const field = route.value.split(ROUTE_SEPARATOR)[i];
    if (field === undefined) throw new Error(`r (${route.value}) has no field ${name}`);
    return field;
  }
  return stringVar(vars, name);
}

/** The binary value of a variable, or throws. */
export function binaryVar(vars: Map<string, TypedValue>, name: string): Buffer {
  const v = vars.get(name);
  if (v?.type !== 'binary') throw new Error(`${name} is ${JSON.stringify(v)}, expected a BINARY`);
  return v.value;
}

type Waiter = { resolve: (f: Frame) => void; reject: (e: Error) => void };

export class SpopClient {
  readonly socket: Socket;
  /** Every byte the agent sent, in order. */
  readonly received: Buffer[] = [];
  readonly #reader = new FrameReader(16 * 1024 * 1024);
  readonly #queue: Frame[] = [];
  readonly #waiters: Waiter[] = [];
  #error: Error | undefined;
  #closed = false;
  /** Resolves when the socket is fully closed (either side). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      try {
        for (const body of this.#reader.feed(chunk)) this.#push(decodeFrame(body));
      } catch (err) {
        this.#failAll(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('error', () => {
      /* ECONNRESET and friends: 'close' follows */
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#failAll(new Error('connection closed'));
    });
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<SpopClient> {
    const socket = connect({ port, host });
    socket.setNoDelay(true);
    await once(socket, 'connect');
    return new SpopClient(socket);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  #push(f: Frame): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(f);
    else this.#queue.push(f);
  }

  #failAll(err: Error): void {
    this.#error ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** Writes a frame (encoded) or raw bytes. */
  send(data: Frame | Buffer): void {
    this.socket.write(Buffer.isBuffer(data) ? data : encodeFrame(data));
  }

  /** The next frame from the agent; rejects if the connection closes first or nothing comes in time. */
  next(timeoutMs = 2_000): Promise<Frame> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  async nextOf<K extends Frame['type']>(type: K, timeoutMs?: number): Promise<Extract<Frame, { type: K }>> {
    const f = await this.next(timeoutMs);
    if (f.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(f)}`);
    return f as Extract<Frame, { type: K }>;
  }

  /** Sends HAPROXY-HELLO and returns the AGENT-HELLO. */
  async hello(overrides: Partial<HaproxyHelloFrame> = {}): Promise<AgentHelloFrame> {
    this.send(haproxyHello(overrides));
    return this.nextOf('agent-hello');
  }

  /** Sends one NOTIFY and returns its ACK (the next frame, so do not pipeline with this). */
  async request(streamId: number, frameId: number, messages: SpoeMessage[]): Promise<AckFrame> {
    this.send(notify(streamId, frameId, messages));
    const ack = await this.nextOf('ack');
    if (ack.streamId !== streamId || ack.frameId !== frameId) throw new Error(`ACK ${ack.streamId}/${ack.frameId} for NOTIFY ${streamId}/${frameId}`);
    return ack;
  }

  /** Expects an AGENT-DISCONNECT and then the agent closing the socket. */
  async expectDisconnect(timeoutMs = 2_000): Promise<AgentDisconnectFrame> {
    const f = await this.nextOf('agent-disconnect', timeoutMs);
    await this.waitClosed(timeoutMs);
    return f;
  }

  /** Waits for the socket to close (the agent closed it), failing after timeoutMs. */
  async waitClosed(timeoutMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Frames received and not yet taken. */
  pending(): Frame[] {
    return this.#queue.splice(0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
