// pgroute's own logs, on stderr (stdout is left to HAProxy's own log lines under `pgroute up`): JSON
// lines for a collector, or one human-readable line per entry (pino-pretty) for a person at a
// terminal. Every command gets the logger when it is registered, before the command line is parsed,
// so the format is chosen after the logger exists: `setFormat` switches what the one stderr stream
// receives.

import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import { quoteValue } from '../agent/src/index.js';
import { ConfigError } from '../generator/src/index.js';
import { flagLabel, refuse } from './flag-values.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_FORMAT_FLAG = '--log-format';
export const LOG_FORMAT_ENV = 'PGROUTE_LOG_FORMAT';

/** Without a choice: pretty for a person at a terminal, JSON for anything that reads a pipe or a file. */
export function defaultLogFormat(stderrIsTTY: boolean): LogFormat {
  return stderrIsTTY ? 'pretty' : 'json';
}

/** `--log-format` / PGROUTE_LOG_FORMAT, checked. */
export function parseLogFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) refuse(flagLabel(LOG_FORMAT_FLAG, LOG_FORMAT_ENV), LOG_FORMATS.join(' or '), value);
  return value as LogFormat;
}

/**
 * One line per entry: time, level, message, then the fields; colours only on a terminal.
 * pino-pretty is loaded on first use: JSON-only runs (containers, pipes) skip its start-up cost.
 */
export function prettyLine(colorize: boolean): (jsonLine: string) => string {
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return prettyFactory({ colorize, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,svc' });
}

export interface Logging {
  readonly log: Logger;
  readonly format: () => LogFormat;
  setFormat(format: LogFormat): void;
}

/**
 * The logger, at PGROUTE_LOG_LEVEL, in the format that suits stderr (defaultLogFormat) until
 * `--log-format` (PGROUTE_LOG_FORMAT), once parsed, calls setFormat.
 */
export function createLogging(level = process.env.PGROUTE_LOG_LEVEL ?? 'info', stderrIsTTY = process.stderr.isTTY === true): Logging {
  if (!LEVELS.includes(level)) throw new ConfigError(`PGROUTE_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${quoteValue(level, 80)}`);
  let current: LogFormat = defaultLogFormat(stderrIsTTY);
  // Synchronous: a warning logged just before a command fails must come before the one line that
  // ends it (exitWith writes that line synchronously, then exits).
  const stderr = pino.destination({ dest: 2, sync: true });
  let pretty: ((line: string) => string) | undefined;
  const stream: DestinationStream & { flushSync(): void } = {
    write: (line: string) => {
      if (current === 'json') stderr.write(line);
      else stderr.write((pretty ??= prettyLine(stderrIsTTY))(line));
    },
    flushSync: () => stderr.flushSync(),
  };
  return {
    log: pino({ level, base: { svc: 'pgroute' } }, stream),
    format: () => current,
    setFormat: (f) => {
      current = f;
    },
  };
}
