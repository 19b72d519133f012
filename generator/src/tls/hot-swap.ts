// Replacing the certificate HAProxy serves without a reload, through the runtime API
// (`set ssl cert` + `commit ssl cert`): new connections get the new certificate, open ones keep
// theirs. And the timer that renews the auto-mode certificate and swaps it in.

import type { Logger } from 'pino';
import { cliArg, cliExchange } from './cli-socket.js';
import { joinPem, pemBlocks } from './pem.js';

export class CertificateSwapError extends Error {
  override readonly name = 'CertificateSwapError';
}

/**
 * Loads `pem` (certificate chain and key) into HAProxy as the new content of `crtPath` — the
 * path exactly as the configuration's `crt` names it — and commits it. Throws a
 * CertificateSwapError quoting HAProxy's answer when either step fails; the transaction is then
 * aborted, and HAProxy keeps serving the old certificate.
 */
export async function swapCertificate(adminSocket: string, crtPath: string, pem: string, timeoutMs = 5_000): Promise<void> {
  const payload = payloadOf(pem);
  const arg = cliArg(crtPath);
  try {
    const setAnswer = await cliExchange(adminSocket, `set ssl cert ${arg} <<\n${payload}\n`, timeoutMs);
    checkSetAnswer(crtPath, setAnswer);
    const commitAnswer = await cliExchange(adminSocket, `commit ssl cert ${arg}\n`, timeoutMs);
    checkCommitAnswer(crtPath, commitAnswer);
  } catch (err) {
    await cliExchange(adminSocket, `abort ssl cert ${arg}\n`, timeoutMs).catch(() => undefined);
    if (err instanceof CertificateSwapError) throw err;
    throw new CertificateSwapError(`could not swap the TLS certificate ${crtPath}: ${(err as Error).message}`, { cause: err });
  }
}

/** The PEM blocks with no blank line (a blank line ends the payload); refuses what HAProxy could not load. */
export function payloadOf(pem: string): string {
  const blocks = pemBlocks(pem);
  if (!blocks.some((b) => b.label === 'CERTIFICATE')) throw new CertificateSwapError('the new TLS material holds no certificate');
  if (!blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) throw new CertificateSwapError('the new TLS material holds no private key');
  return joinPem(blocks.map((b) => b.text));
}

/** `set ssl cert` answers "Transaction created for certificate …!" (or "updated"). */
export function checkSetAnswer(crtPath: string, answer: string): void {
  if (/Transaction (created|updated) for certificate/.test(answer)) return;
  throw new CertificateSwapError(`HAProxy refused the new TLS certificate for ${crtPath} (set ssl cert): ${summarize(answer)}`);
}

/** `commit ssl cert` answers "Committing …" then "Success!". */
export function checkCommitAnswer(crtPath: string, answer: string): void {
  if (/Committing /.test(answer) && /\bSuccess!/.test(answer) && !/\b(error|failed)\b/i.test(answer)) return;
  throw new CertificateSwapError(`HAProxy could not commit the new TLS certificate for ${crtPath} (commit ssl cert): ${summarize(answer)}`);
}

function summarize(answer: string): string {
  const text = answer.trim().replace(/\s*\n\s*/g, ' | ');
  return text === '' ? '(no answer)' : text;
}

export interface RenewalWatchOptions<R extends { readonly renewed: boolean }> {
  readonly intervalMs: number;
  /** Typically `() => ensureAutoTls({ stateDir, sans, log })`. */
  readonly ensure: () => Promise<R>;
  /** Typically reads r.serverPemPath and calls swapCertificate(adminSocket, r.serverPemPath, pem). */
  readonly swap: (result: R) => Promise<void>;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export interface RenewalWatch {
  /** Stops the timer and waits for a check in progress. */
  stop(): Promise<void>;
}

/**
 * Every `intervalMs`, runs `ensure`; when it renewed the certificate, runs `swap`. A failed swap is
 * retried at every following tick until it succeeds (ensure will not report the renewal twice).
 * Ticks never overlap. The timer does not keep the process alive.
 */
export function watchRenewal<R extends { readonly renewed: boolean }>(opts: RenewalWatchOptions<R>): RenewalWatch {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let pending: R | undefined;

  const tick = async (): Promise<void> => {
    try {
      const result = await opts.ensure();
      if (result.renewed) pending = result;
    } catch (err) {
      opts.log.error({ err: (err as Error).message }, 'TLS certificate renewal check failed; retrying at the next check');
    }
    if (pending === undefined || stopped) return;
    try {
      await opts.swap(pending);
      pending = undefined;
      opts.log.info('swapped the renewed TLS certificate into HAProxy');
    } catch (err) {
      opts.log.error({ err: (err as Error).message }, 'could not swap the renewed TLS certificate into HAProxy; retrying at the next check');
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined;
        schedule();
      });
    }, opts.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
