// The hold frontend's timings (haproxy/partials/pause-*.hbs), from --pause-timeout: the agent
// answers a held connection within the pause timeout (57P03 then), so HAProxy's hold engine waits a
// margin longer before failing closed, the inspect-delay covers that wait (a rule still waiting when
// it expires would close the connection without a word), and the silent client and agent sides
// outlast both.

import type { Settings, StatePaths } from '../settings.js';

/** How much longer HAProxy waits than the agent holds. */
const MARGIN_MS = 2_000;

export interface PauseContext {
  readonly holdSocket: string;
  readonly holdTlsSocket: string;
  readonly processingTimeout: string;
  readonly inspectDelay: string;
  readonly clientTimeout: string;
  readonly agentTimeout: string;
}

export function pauseContext(settings: Settings, paths: StatePaths): PauseContext {
  const processing = settings.pause.timeoutMs + MARGIN_MS;
  return {
    holdSocket: paths.holdSocket,
    holdTlsSocket: paths.holdTlsSocket,
    processingTimeout: `${processing}ms`,
    inspectDelay: `${processing + 1_000}ms`,
    clientTimeout: `${processing + 5_000}ms`,
    agentTimeout: `${processing + 5_000}ms`,
  };
}
