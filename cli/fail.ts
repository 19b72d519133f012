// The CLI's one error path: a failed command prints one line on stderr (what happened, to which
// value, flag or file, and what to do) and exits with the code the README's table documents.

import { CommanderError } from 'commander';
import { ConfigError } from '../generator/src/index.js';
import { sanitizeText } from '../agent/src/index.js';

/** Exit codes (README, "Exit codes"). */
export const EXIT = {
  ok: 0,
  /** Something pgroute depends on failed: HAProxy, the Docker or Kubernetes API, a port in use. */
  failed: 1,
  /** A flag, variable, argument or file is wrong: the message names it. */
  usage: 2,
  /** --strict: a tenant definition was refused (the others were generated). */
  refused: 3,
} as const;

/** A command's own verdict that is not an exception: message and exit code. */
export class CommandFailure extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** The exit code and line for an error thrown by a command (or by commander while parsing). */
export function describeFailure(err: unknown, command = 'pgroute'): { code: number; line: string | undefined } {
  if (err instanceof CommanderError) {
    // --help and --version end this way too, having printed what was asked; a bare `pgroute` or
    // `pgroute tenant` has printed its help already.
    if (err.exitCode === 0) return { code: EXIT.ok, line: undefined };
    if (err.code === 'commander.help') return { code: EXIT.usage, line: undefined };
    // Commander puts its suggestion on a line of its own ("(Did you mean --port?)"): one line here.
    return { code: EXIT.usage, line: `${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see ${command} --help)` };
  }
  if (err instanceof CommandFailure) return { code: err.exitCode, line: err.message };
  if (err instanceof ConfigError) return { code: EXIT.usage, line: err.message };
  return { code: EXIT.failed, line: err instanceof Error ? err.message : String(err) };
}

/** Prints the one line (controls escaped, HAProxy's own output kept on its lines) and exits. */
export function exitWith(err: unknown, command?: string): never {
  const { code, line } = describeFailure(err, command);
  if (line !== undefined) process.stderr.write(`pgroute: ${line.split('\n').map((l) => sanitizeText(l, 2_000)).join('\n  ')}\n`);
  if (code !== EXIT.ok && process.env.PGROUTE_LOG_LEVEL === 'debug' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(code);
}
