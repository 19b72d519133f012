// Logs refusals for the operator without letting a flood of hostile connections flood the log:
// at most `perSecond` lines a second, then one line saying how many were left out.

import type { Logger } from 'pino';
import type { RefuseVerdict } from '../decision/types.js';

export class RefusalLog {
  #windowStart = 0;
  #inWindow = 0;
  #suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 20,
  ) {}

  record(v: RefuseVerdict): void {
    const now = Date.now();
    if (now - this.#windowStart >= 1_000) {
      this.flush();
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow++ < this.perSecond) {
      const fields = { reason: v.reason, sqlstate: v.sqlstate, tenant: v.tenant, detail: v.logDetail };
      // A dropped cancel leaves a query running that a client asked to stop: a warning.
      if (v.reason === 'cancel-rate-limited') this.log.warn(fields, 'cancel request dropped');
      else this.log.info(fields, 'connection refused');
    } else this.#suppressed++;
  }

  flush(): void {
    if (this.#suppressed > 0) this.log.warn({ suppressed: this.#suppressed }, 'more refusals in the last second were not logged');
    this.#suppressed = 0;
  }
}
