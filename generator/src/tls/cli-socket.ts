// Sends exact bytes to a HAProxy CLI socket and reads the answer until HAProxy closes the
// connection (non-interactive mode: one command, or one command with its payload, per connection).
// Unlike haproxyCli it appends nothing, which the payload form (`<<` … blank line) needs.

import { createConnection } from 'node:net';

export function cliExchange(socketPath: string, bytes: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let out = '';
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      sock.destroy();
      finish(() => reject(new Error(`HAProxy CLI ${socketPath} did not answer "${firstLine(bytes)}" within ${timeoutMs} ms`)));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err) => finish(() => reject(new Error(`HAProxy CLI ${socketPath}: ${err.message}`))));
    sock.on('close', () => finish(() => resolve(out)));
  });
}

/** Escapes a CLI argument: HAProxy splits on spaces and ';', and '\' escapes the next character. */
export function cliArg(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`a HAProxy CLI argument cannot contain a line break: ${JSON.stringify(value)}`);
  return value.replace(/([\\ ;\t])/g, '\\$1');
}

function firstLine(bytes: string): string {
  return bytes.split('\n', 1)[0] ?? '';
}
