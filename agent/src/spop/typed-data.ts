// TYPED-DATA (SPOE.txt 3.1): <TYPE:4 bits><FLAGS:4 bits><DATA>, the type id in the low nibble.
//
// Integers travel as varints of their unsigned 64-bit representation: HAProxy decodes every integer
// type into a uint64_t, so a negative INT32/INT64 is sent as its 64-bit two's complement (10 bytes).
// Decoding is strict about ranges: an INT32 must be a sign-extended 32-bit value, a UINT32 must fit
// 32 bits. STRING is decoded as UTF-8; BINARY comes back as a zero-copy view of the frame body.

import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { DATA_FLAG_TRUE, DATA_TYPE, DATA_TYPE_MASK, IPV4_SIZE, IPV6_SIZE, UINT32_MAX } from './constants.js';
import { invalid } from './errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip.js';
import { varintSize, varintSizeBigInt } from './varint.js';

export type TypedValue =
  | { type: 'null' }
  | { type: 'bool'; value: boolean }
  | { type: 'int32' | 'uint32'; value: number }
  | { type: 'int64' | 'uint64'; value: bigint }
  | { type: 'ipv4' | 'ipv6'; value: string /* text form */ }
  | { type: 'string'; value: string }
  | { type: 'binary'; value: Buffer };

export type TypedValueType = TypedValue['type'];

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const TWO_POW_64 = 1n << 64n;
/** Smallest uint64 that is a sign-extended negative int32 (2^64 - 2^31). */
const NEG_INT32_MIN_AS_UINT64 = TWO_POW_64 + BigInt(INT32_MIN);

const NULL_VALUE: TypedValue = Object.freeze({ type: 'null' }) as TypedValue;
const TRUE_VALUE: TypedValue = Object.freeze({ type: 'bool', value: true }) as TypedValue;
const FALSE_VALUE: TypedValue = Object.freeze({ type: 'bool', value: false }) as TypedValue;

/** Decodes one TYPED-DATA item at the reader's cursor. */
export function readTypedData(r: ByteReader): TypedValue {
  const at = r.pos;
  const typeByte = r.u8('typed data type');
  switch (typeByte & DATA_TYPE_MASK) {
    case DATA_TYPE.NULL:
      return NULL_VALUE;
    case DATA_TYPE.BOOL:
      return (typeByte & DATA_FLAG_TRUE) !== 0 ? TRUE_VALUE : FALSE_VALUE;
    case DATA_TYPE.INT32: {
      const v = r.varintOrOverflow('int32 value');
      if (v >= 0) {
        if (v > INT32_MAX) throw invalid(`int32 value ${v} at offset ${at} is out of range`, at);
        return { type: 'int32', value: v };
      }
      const u = r.varintBigInt('int32 value');
      if (u < NEG_INT32_MIN_AS_UINT64) throw invalid(`int32 value ${u.toString()} at offset ${at} is out of range`, at);
      return { type: 'int32', value: Number(u - TWO_POW_64) };
    }
    case DATA_TYPE.UINT32: {
      const v = r.varintOrOverflow('uint32 value');
      if (v < 0 || v > UINT32_MAX) {
        throw invalid(`uint32 value at offset ${at} is out of range`, at);
      }
      return { type: 'uint32', value: v };
    }
    case DATA_TYPE.INT64:
      return { type: 'int64', value: BigInt.asIntN(64, r.varintBigInt('int64 value')) };
    case DATA_TYPE.UINT64:
      return { type: 'uint64', value: r.varintBigInt('uint64 value') };
    case DATA_TYPE.IPV4: {
      const start = r.pos;
      r.view(IPV4_SIZE, 'ipv4 value');
      return { type: 'ipv4', value: formatIPv4(r.buf, start) };
    }
    case DATA_TYPE.IPV6: {
      const start = r.pos;
      r.view(IPV6_SIZE, 'ipv6 value');
      return { type: 'ipv6', value: formatIPv6(r.buf, start) };
    }
    case DATA_TYPE.STRING:
      return { type: 'string', value: r.lengthPrefixedString('string value') };
    case DATA_TYPE.BINARY:
      return { type: 'binary', value: r.lengthPrefixedView('binary value') };
    default:
      throw invalid(`unknown typed data type ${typeByte & DATA_TYPE_MASK} (type byte 0x${typeByte.toString(16).padStart(2, '0')}) at offset ${at}`, at);
  }
}

/**
 * A TypedValue validated and prepared for writing: sizes computed once, text encoded once.
 * Internal to the encoders (keeps "compute size, allocate once, write" cheap).
 */
export interface PreparedValue {
  readonly value: TypedValue;
  readonly size: number;
  /** Raw bytes for string (UTF-8), binary, ipv4, ipv6; varint payload for integers is computed on write. */
  readonly bytes: Buffer | undefined;
  /** The uint64 wire value of an integer type. */
  readonly wire: bigint | number;
}

function checkInt(v: number, min: number, max: number, type: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${type} value must be an integer within ${min}..${max}, got ${String(v)}`);
  }
}

function checkBigInt(v: bigint, min: bigint, max: bigint, type: string): void {
  if (typeof v !== 'bigint' || v < min || v > max) {
    throw invalid(`${type} value must be a bigint within ${min.toString()}..${max.toString()}, got ${String(v)}`);
  }
}

/** Validates a TypedValue and computes its encoded size. Throws SpopError(INVALID) on bad values. */
export function prepareTypedData(v: TypedValue): PreparedValue {
  switch (v.type) {
    case 'null':
    case 'bool':
      return { value: v, size: 1, bytes: undefined, wire: 0 };
    case 'int32': {
      checkInt(v.value, INT32_MIN, INT32_MAX, 'int32');
      if (v.value >= 0) return { value: v, size: 1 + varintSize(v.value), bytes: undefined, wire: v.value };
      const wire = BigInt.asUintN(64, BigInt(v.value));
      return { value: v, size: 1 + varintSizeBigInt(wire), bytes: undefined, wire };
    }
    case 'uint32':
      checkInt(v.value, 0, UINT32_MAX, 'uint32');
      return { value: v, size: 1 + varintSize(v.value), bytes: undefined, wire: v.value };
    case 'int64': {
      checkBigInt(v.value, INT64_MIN, INT64_MAX, 'int64');
      const wire = BigInt.asUintN(64, v.value);
      return { value: v, size: 1 + varintSizeBigInt(wire), bytes: undefined, wire };
    }
    case 'uint64':
      checkBigInt(v.value, 0n, UINT64_MAX, 'uint64');
      return { value: v, size: 1 + varintSizeBigInt(v.value), bytes: undefined, wire: v.value };
    case 'ipv4':
      return { value: v, size: 1 + IPV4_SIZE, bytes: parseIPv4(String(v.value)), wire: 0 };
    case 'ipv6':
      return { value: v, size: 1 + IPV6_SIZE, bytes: parseIPv6(String(v.value)), wire: 0 };
    case 'string': {
      const text: unknown = v.value;
      if (typeof text !== 'string') throw invalid(`string value must be a string, got ${typeof text}`);
      const bytes = Buffer.from(text, 'utf8');
      return { value: v, size: 1 + varintSize(bytes.length) + bytes.length, bytes, wire: 0 };
    }
    case 'binary': {
      const bytes: unknown = v.value;
      if (!Buffer.isBuffer(bytes)) throw invalid(`binary value must be a Buffer, got ${typeof bytes}`);
      return { value: v, size: 1 + varintSize(bytes.length) + bytes.length, bytes, wire: 0 };
    }
    default: {
      const unknown: { type?: unknown } = v;
      throw invalid(`unknown typed value type ${JSON.stringify(unknown.type)}`);
    }
  }
}

const TYPE_CODE: Readonly<Record<TypedValueType, number>> = {
  null: DATA_TYPE.NULL,
  bool: DATA_TYPE.BOOL,
  int32: DATA_TYPE.INT32,
  uint32: DATA_TYPE.UINT32,
  int64: DATA_TYPE.INT64,
  uint64: DATA_TYPE.UINT64,
  ipv4: DATA_TYPE.IPV4,
  ipv6: DATA_TYPE.IPV6,
  string: DATA_TYPE.STRING,
  binary: DATA_TYPE.BINARY,
};

/** Writes a prepared value (exactly `p.size` bytes). */
export function writeTypedData(w: ByteWriter, p: PreparedValue): void {
  const v = p.value;
  const code = TYPE_CODE[v.type];
  if (v.type === 'bool') {
    w.u8(code | (v.value ? DATA_FLAG_TRUE : 0));
    return;
  }
  w.u8(code);
  switch (v.type) {
    case 'null':
      return;
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'uint64':
      if (typeof p.wire === 'number') w.varint(p.wire);
      else w.varintBigInt(p.wire);
      return;
    case 'ipv4':
    case 'ipv6':
      w.bytes(p.bytes!);
      return;
    case 'string':
    case 'binary':
      w.lengthPrefixedBytes(p.bytes!);
      return;
  }
}

/** Standalone encoder for one TYPED-DATA item. */
export function encodeTypedData(v: TypedValue): Buffer {
  const p = prepareTypedData(v);
  const w = new ByteWriter(p.size);
  writeTypedData(w, p);
  return w.finish();
}

/** Standalone decoder: the buffer must hold exactly one TYPED-DATA item. */
export function decodeTypedData(buf: Buffer): TypedValue {
  const r = new ByteReader(buf);
  const v = readTypedData(r);
  if (!r.atEnd()) throw invalid(`${r.remaining} trailing byte(s) after typed data at offset ${r.pos}`, r.pos);
  return v;
}
