// The single error type of the SPOP codec. Every malformed input (and every value that cannot be
// encoded) surfaces as a SpopError carrying the spec status code to put in an AGENT-DISCONNECT.

import { STATUS, statusMessage, type SpopStatus } from './constants.js';

export interface SpopErrorDetails {
  /** Byte offset in the frame body (or typed-data buffer) where the problem was found. */
  readonly offset?: number;
  /** The FRAME-TYPE byte, for unknown/unexpected frame types (a caller may choose to skip those). */
  readonly frameType?: number;
}

export class SpopError extends Error {
  override readonly name = 'SpopError';
  /** Status code to report (SPOE.txt 3.5). */
  readonly status: SpopStatus;
  readonly offset: number | undefined;
  readonly frameType: number | undefined;

  constructor(status: SpopStatus, message: string, details: SpopErrorDetails = {}) {
    super(message);
    this.status = status;
    this.offset = details.offset;
    this.frameType = details.frameType;
  }

  /** The spec's wording for this error's status, suitable as a DISCONNECT "message". */
  get statusText(): string {
    return statusMessage(this.status);
  }
}

/** Shorthand for the most common case: an invalid frame. */
export function invalid(message: string, offset?: number): SpopError {
  return new SpopError(STATUS.INVALID, message, offset === undefined ? {} : { offset });
}

export function isSpopError(err: unknown): err is SpopError {
  return err instanceof SpopError;
}
