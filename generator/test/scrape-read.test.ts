// perScrape: the series of one scrape share one read; the next scrape reads again.

import { describe, expect, it } from 'vitest';
import { perScrape } from '../src/scrape-read.js';

describe('perScrape', () => {
  it('shares a read while it is in flight, reads again once it settled, and turns a failure into undefined', async () => {
    let reads = 0;
    let fail = false;
    const read = perScrape(async () => {
      reads += 1;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new Error('no answer');
      return reads;
    });
    // One scrape: every series asks in the same pass.
    expect(await Promise.all([read(), read(), read()])).toEqual([1, 1, 1]);
    // The next scrape, right after: a fresh read.
    expect(await read()).toBe(2);
    fail = true;
    expect(await read()).toBeUndefined();
    fail = false;
    expect(await read()).toBe(4);
  });
});
