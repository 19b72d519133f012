// `haproxy -c`: the candidate configuration must pass HAProxy's own parser before it is used.

import { execFile } from 'node:child_process';

export interface CheckResult {
  readonly ok: boolean;
  /** HAProxy's own words (alerts and warnings), for the operator. */
  readonly output: string;
  /** HAProxy's [WARNING] lines: a check can pass with them, and the operator should still see them. */
  readonly warnings: readonly string[];
  /** HAProxy could not be run at all: the configuration was not judged. */
  readonly missing?: true;
}

export function haproxyWarnings(output: string): string[] {
  return output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('[WARNING]'));
}

export function haproxyBinary(): string {
  return process.env.PGROUTE_HAPROXY ?? 'haproxy';
}

export function checkHaproxyConfig(configPath: string): Promise<CheckResult> {
  return new Promise((resolve) => {
    execFile(haproxyBinary(), ['-c', '-f', configPath], { timeout: 30_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (err?.killed === true) {
        resolve({ ok: false, missing: true, output: `${haproxyBinary()} -c did not finish within 30 s (stopped): the configuration was not judged; try again, or check what slows it (host names HAProxy resolves)`, warnings: [] });
        return;
      }
      if (code === 'ENOENT') {
        resolve({ ok: false, missing: true, output: `cannot run ${haproxyBinary()} to check the rendered configuration: not installed or not on PATH; install HAProxy 2.6 or later, or set PGROUTE_HAPROXY to its path`, warnings: [] });
        return;
      }
      // Not a program (a directory, a text file, no execute permission): nothing judged the configuration.
      if (code === 'EACCES' || code === 'ENOEXEC' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EPERM') {
        resolve({ ok: false, missing: true, output: `cannot run ${haproxyBinary()} to check the rendered configuration (${code}): is it HAProxy's executable? Set PGROUTE_HAPROXY to the path of HAProxy 2.6 or later`, warnings: [] });
        return;
      }
      // A program that failed without a word is not HAProxy refusing the configuration: it names each fault.
      if (err && output === '') {
        resolve({ ok: false, missing: true, output: `${haproxyBinary()} -c exited ${typeof err.code === 'number' ? err.code : err.signal ?? 'abnormally'} without a word: is it HAProxy? Set PGROUTE_HAPROXY to the path of HAProxy 2.6 or later`, warnings: [] });
        return;
      }
      resolve({ ok: !err, output, warnings: haproxyWarnings(output) });
    });
  });
}
