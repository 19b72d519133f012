import pino, { type Logger } from 'pino';
import { quoteValue } from '../agent/src/index.js';
import { ConfigError } from '../generator/src/index.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** JSON logs on stderr (stdout is left to HAProxy's own log lines under `pgroute up`). */
export function createLogger(level = process.env.PGROUTE_LOG_LEVEL ?? 'info'): Logger {
  if (!LEVELS.includes(level)) throw new ConfigError(`PGROUTE_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${quoteValue(level, 80)}`);
  return pino({ level, base: { svc: 'pgroute' } }, pino.destination(2));
}
