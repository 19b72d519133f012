// A stop signal that comes the moment a long-running command's start-up finishes is not lost
// (cli/signals.ts): `up`/`watch` hand the signal from start-up (exit at once) to running (drain and
// stop). With a listener removed and another added in the same turn of the event loop, Node dropped
// a signal that had arrived in that turn, and the process ran on until the next signal.
// Runs the built module (dist/, built by the e2e project's global setup) in a child process, which
// signals itself during the last turn of its start-up. No port.

import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const SIGNALS = pathToFileURL(resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'signals.js')).href;

/** Runs the script in a child node; its exit code and output, or 'hung' if it had not exited after `ms`. */
function run(script: string, ms: number): Promise<{ code: number | null; out: string } | 'hung'> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done('hung');
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, out });
    });
  });
}

const script = (signal: string) => `
import { runUntilSignal, startOrExit } from ${JSON.stringify(SIGNALS)};
const log = { info() {}, warn() {}, debug() {} };
// What a server's sockets do: keep the event loop alive (signal listeners alone do not).
const alive = setInterval(() => {}, 1000);
await startOrExit(log, async () => {
  process.kill(process.pid, ${JSON.stringify(signal)});
  // The signal is in; the event loop has not looked yet: start-up finishes in this same turn.
  const until = Date.now() + 100;
  while (Date.now() < until);
  return undefined;
});
console.log('running');
const code = await runUntilSignal(log, async () => {
  console.log('stopped');
  clearInterval(alive);
});
console.log('exit ' + code);
process.exit(code);
`;

describe('a stop signal as start-up finishes', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`${signal} is the running command's stop (drain), not lost`, async () => {
      const r = await run(script(signal), 20_000);
      expect(r).not.toBe('hung');
      expect(r).toEqual({ code: 0, out: 'running\nstopped\nexit 0\n' });
    });
  }

  it('a signal during start-up still exits at once, with the signal\'s code', async () => {
    const r = await run(
      `import { startOrExit } from ${JSON.stringify(SIGNALS)};
       const log = { info() {}, warn() {}, debug() {} };
       setInterval(() => {}, 1000);
       setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50);
       await startOrExit(log, () => new Promise(() => {}));`,
      20_000,
    );
    expect(r).toEqual({ code: 143, out: '' });
  });
});
