// Whether this replica may take new connections: what /readyz answers and a balancer follows.
// Ready once nothing holds it back; each part of start-up (and the drain) holds it back under its
// own key, so parts that finish in any order never declare the replica ready early.

export class Readiness {
  readonly #holds = new Map<string, string>();

  /** Not ready because of `reason` until `release(key)`. */
  hold(key: string, reason: string): void {
    this.#holds.set(key, reason);
  }

  release(key: string): void {
    this.#holds.delete(key);
  }

  /** undefined when ready, else every reason why not, joined. */
  notReady(): string | undefined {
    return this.#holds.size === 0 ? undefined : [...this.#holds.values()].join('; ');
  }
}
