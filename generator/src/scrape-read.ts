// A read from HAProxy shared by the series of one Prometheus scrape.

/**
 * Wraps `read` so the collect() calls of one scrape share one read: prom-client starts them all in
 * one synchronous pass, so they find it in flight. It is dropped once it settles, so a scrape that
 * starts after a connection was counted always shows it. A failed read gives undefined. A collect()
 * resets its series after awaiting the read, never before: two scrapes at once share the read, and
 * a reset before it would let both add to the same series.
 */
export function perScrape<T>(read: () => Promise<T>): () => Promise<T | undefined> {
  let pending: Promise<T | undefined> | undefined;
  return () =>
    (pending ??= read()
      .catch(() => undefined)
      .finally(() => (pending = undefined)));
}
