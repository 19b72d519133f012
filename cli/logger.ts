import pino, { type Logger } from 'pino';

/** JSON logs on stderr (stdout is left to HAProxy's own log lines under `pgroute up`). */
export function createLogger(level = process.env.PGROUTE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'pgroute' } }, pino.destination(2));
}
