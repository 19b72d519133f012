// Docker's events stream (`GET /events`, one JSON object per line) -> "the container list may have
// changed". Pure.

import { LineSplitter } from '../../lines.js';

/** The types the source subscribes to: containers, and networks (connect/disconnect change IPs). */
export const EVENT_TYPES = ['container', 'network'] as const;

/** Container actions that can change which containers run, their names or their addresses. */
const CONTAINER_ACTIONS = new Set(['start', 'restart', 'die', 'stop', 'kill', 'destroy', 'rename', 'pause', 'unpause', 'update', 'oom']);
const NETWORK_ACTIONS = new Set(['connect', 'disconnect']);

export interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Readonly<Record<string, string>> };
}

/**
 * Whether an event calls for a new list. exec_* (every health check runs one), attach, resize, top,
 * create and the like do not; health_status does ("health_status: healthy" carries a suffix).
 */
export function isRelevantEvent(e: DockerEvent): boolean {
  const action = e.Action ?? '';
  if (e.Type === 'container') return CONTAINER_ACTIONS.has(action) || action.startsWith('health_status');
  if (e.Type === 'network') return NETWORK_ACTIONS.has(action);
  return false;
}

/** dockerd's longest event line pgroute reads whole (an event carries the container's labels). */
const MAX_EVENT_CHARS = 1 << 20;

/** Splits a byte stream into JSON lines; a line may arrive in several chunks. */
export class EventLineParser {
  readonly #lines = new LineSplitter(MAX_EVENT_CHARS);

  /** Feeds a chunk; returns the complete events in it (lines that are not JSON objects are skipped). */
  push(chunk: string): DockerEvent[] {
    const events: DockerEvent[] = [];
    for (const line of this.#lines.push(chunk)) {
      const text = line.trim();
      if (text === '') continue;
      try {
        const value: unknown = JSON.parse(text);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) events.push(value as DockerEvent);
      } catch {
        // A partial, garbled or overlong line: the next list catches up anyway.
      }
    }
    return events;
  }
}
