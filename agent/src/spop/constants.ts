// SPOP 2.0 wire constants, as named in HAProxy's doc/SPOE.txt (section 3). Each value is the byte or
// number that goes on the wire; the comment repeats the spec's name for it.

/** The only protocol version this codec speaks (SPOE.txt 3.2.5: "version" <STRING>). */
export const SPOP_VERSION = '2.0';

/** Major version we implement; a HAProxy announcing "2.x" also supports 2.0 (SPOE.txt 3.2.4). */
export const SPOP_MAJOR_VERSION = 2;

/** Size of the big-endian frame length prefix: <FRAME-LENGTH:4 bytes>. */
export const FRAME_LENGTH_PREFIX_SIZE = 4;

/** Smallest possible frame body: TYPE (1) + FLAGS (4) + STREAM-ID (>=1) + FRAME-ID (>=1). */
export const MIN_FRAME_BODY_SIZE = 7;

/** "The maximum size supported by peers for a frame must be greater than or equal to 256 bytes." */
export const MIN_FRAME_SIZE = 256;

/** HAProxy's default max-frame-size: tune.bufsize (16384) minus the 4-byte length prefix. */
export const DEFAULT_MAX_FRAME_SIZE = 16380;

/** Largest value a UINT32 "max-frame-size" / "status-code" can carry. */
export const UINT32_MAX = 0xffff_ffff;

/** HAProxy refuses DISCONNECT "message" values longer than this many bytes. */
export const MAX_DISCONNECT_MESSAGE_BYTES = 255;

/** NB-ARGS is a single byte, so a message or action carries at most 255 arguments. */
export const MAX_NB_ARGS = 0xff;

/** FRAME-TYPE byte (SPOE.txt 3.2.2). */
export const FRAME_TYPE = {
  /** UNSET: continuation fragment of a fragmented payload. */
  UNSET: 0,
  /** HAPROXY-HELLO */
  HAPROXY_HELLO: 1,
  /** HAPROXY-DISCONNECT */
  HAPROXY_DISCONNECT: 2,
  /** NOTIFY */
  NOTIFY: 3,
  /** AGENT-HELLO */
  AGENT_HELLO: 101,
  /** AGENT-DISCONNECT */
  AGENT_DISCONNECT: 102,
  /** ACK */
  ACK: 103,
} as const;
export type FrameTypeCode = (typeof FRAME_TYPE)[keyof typeof FRAME_TYPE];

/** METADATA FLAGS bits (SPOE.txt 3.2, bit 0 is the LSB). */
export const FRAME_FLAG = {
  /** FIN: final payload fragment (bit 0). */
  FIN: 0x0000_0001,
  /** ABORT: cancel processing of the current (fragmented) frame (bit 1). */
  ABORT: 0x0000_0002,
} as const;

/** TYPED-DATA type ids, stored in the low 4 bits of the type byte (SPOE.txt 3.1). */
export const DATA_TYPE = {
  /** NULL   : <0> */
  NULL: 0,
  /** BOOL   : <1+FLAG> */
  BOOL: 1,
  /** INT32  : <2><VALUE:varint> */
  INT32: 2,
  /** UINT32 : <3><VALUE:varint> */
  UINT32: 3,
  /** INT64  : <4><VALUE:varint> */
  INT64: 4,
  /** UINT64 : <5><VALUE:varint> */
  UINT64: 5,
  /** IPV4   : <6><STRUCT IN_ADDR:4 bytes> */
  IPV4: 6,
  /** IPV6   : <7><STRUCT IN_ADDR6:16 bytes> */
  IPV6: 7,
  /** STRING : <8><LENGTH:varint><BYTES> */
  STRING: 8,
  /** BINARY : <9><LENGTH:varint><BYTES> */
  BINARY: 9,
} as const;

/** Low nibble of the type byte: the type id. */
export const DATA_TYPE_MASK = 0x0f;
/** High nibble of the type byte: the flags. Bit 0 of FLAGS is the boolean's value. */
export const DATA_FLAG_TRUE = 0x10;

/** Byte sizes of fixed-width typed data. */
export const IPV4_SIZE = 4;
export const IPV6_SIZE = 16;

/** ACTION-TYPE byte (SPOE.txt 3.4). */
export const ACTION_TYPE = {
  /** SET-VAR : <1> */
  SET_VAR: 1,
  /** UNSET-VAR : <2> */
  UNSET_VAR: 2,
} as const;

/** NB-ARGS each action requires (SPOE.txt 3.4). */
export const ACTION_NB_ARGS = {
  /** set-var: scope, name, value */
  SET_VAR: 3,
  /** unset-var: scope, name */
  UNSET_VAR: 2,
} as const;

/** VAR-SCOPE byte (SPOE.txt 3.4). */
export const VAR_SCOPE = {
  /** PROCESS : <0> (proc.) */
  PROCESS: 0,
  /** SESSION : <1> (sess.) */
  SESSION: 1,
  /** TRANSACTION : <2> (txn.) */
  TRANSACTION: 2,
  /** REQUEST : <3> (req.) */
  REQUEST: 3,
  /** RESPONSE : <4> (res.) */
  RESPONSE: 4,
} as const;

/**
 * Status codes (SPOE.txt 3.5 "Errors & timeouts"). Names follow HAProxy's SPOE_FRM_ERR_* enum.
 * Note: there is no "unsupported frame" status in the spec; unknown frame types map to INVALID.
 */
export const STATUS = {
  /** 0: normal (no error occurred) */
  NONE: 0,
  /** 1: I/O error */
  IO: 1,
  /** 2: A timeout occurred */
  TIMEOUT: 2,
  /** 3: frame is too big */
  TOO_BIG: 3,
  /** 4: invalid frame received */
  INVALID: 4,
  /** 5: version value not found */
  NO_VERSION: 5,
  /** 6: max-frame-size value not found */
  NO_FRAME_SIZE: 6,
  /** 7: capabilities value not found */
  NO_CAPABILITIES: 7,
  /** 8: unsupported version */
  BAD_VERSION: 8,
  /** 9: max-frame-size too big or too small */
  BAD_FRAME_SIZE: 9,
  /** 10: payload fragmentation is not supported */
  FRAGMENTATION_NOT_SUPPORTED: 10,
  /** 11: invalid interlaced frames */
  INTERLACED_FRAMES: 11,
  /** 12: frame-id not found (it does not match any referenced frame) */
  FRAME_ID_NOT_FOUND: 12,
  /** 13: resource allocation error */
  RESOURCE_ALLOCATION: 13,
  /** 99: an unknown error occurred */
  UNKNOWN: 99,
} as const;
export type SpopStatus = (typeof STATUS)[keyof typeof STATUS];

/** Default DISCONNECT "message" per status, worded as HAProxy's spoe_frm_err_reasons (all < 256 bytes). */
export const STATUS_MESSAGE: Readonly<Record<SpopStatus, string>> = {
  [STATUS.NONE]: 'normal',
  [STATUS.IO]: 'I/O error',
  [STATUS.TIMEOUT]: 'a timeout occurred',
  [STATUS.TOO_BIG]: 'frame is too big',
  [STATUS.INVALID]: 'invalid frame received',
  [STATUS.NO_VERSION]: 'version value not found',
  [STATUS.NO_FRAME_SIZE]: 'max-frame-size value not found',
  [STATUS.NO_CAPABILITIES]: 'capabilities value not found',
  [STATUS.BAD_VERSION]: 'unsupported version',
  [STATUS.BAD_FRAME_SIZE]: 'max-frame-size too big or too small',
  [STATUS.FRAGMENTATION_NOT_SUPPORTED]: 'fragmentation not supported',
  [STATUS.INTERLACED_FRAMES]: 'invalid interlaced frames',
  [STATUS.FRAME_ID_NOT_FOUND]: 'frame-id not found',
  [STATUS.RESOURCE_ALLOCATION]: 'resource allocation error',
  [STATUS.UNKNOWN]: 'an unknown error occurred',
};

/** Default message for any status code; codes outside the spec's table get the UNKNOWN text. */
export function statusMessage(status: number): string {
  return (STATUS_MESSAGE as Readonly<Record<number, string | undefined>>)[status] ?? STATUS_MESSAGE[STATUS.UNKNOWN];
}

/** KV-LIST keys of HELLO and DISCONNECT frames (SPOE.txt 3.2.4 - 3.2.9). */
export const KV_KEY = {
  SUPPORTED_VERSIONS: 'supported-versions',
  VERSION: 'version',
  MAX_FRAME_SIZE: 'max-frame-size',
  CAPABILITIES: 'capabilities',
  HEALTHCHECK: 'healthcheck',
  ENGINE_ID: 'engine-id',
  STATUS_CODE: 'status-code',
  MESSAGE: 'message',
} as const;

/** Official capabilities (SPOE.txt 3.2.1). */
export const CAPABILITY = {
  FRAGMENTATION: 'fragmentation',
  PIPELINING: 'pipelining',
  ASYNC: 'async',
} as const;
