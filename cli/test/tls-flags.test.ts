// The TLS flags checked before any file is touched (checkTlsFlags): every value whichever mode is on,
// and one line naming the flag and its variable.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../generator/src/index.js';
import { checkTlsFlags, type TlsFlags } from '../tls.js';

const off: TlsFlags = { tls: 'off', tlsMinVersion: 'TLSv1.2' };

describe('checkTlsFlags', () => {
  it('a mistyped --tls-watch-interval is refused with TLS off too (it was accepted until --tls-cert was given)', () => {
    expect(() => checkTlsFlags({ ...off, tlsWatchInterval: 'banana' })).toThrow(
      new ConfigError('--tls-watch-interval (PGROUTE_TLS_WATCH_INTERVAL) must be a duration of at least 100ms like 500ms, 5s or 1m, got "banana"'),
    );
    expect(() => checkTlsFlags({ ...off, tlsWatchInterval: '1m' })).not.toThrow();
  });

  it('a --tls-san no certificate can hold names the flag, with the value cut short', () => {
    const long = `${'x'.repeat(300)}_`;
    expect(() => checkTlsFlags({ ...off, tls: 'auto', tlsSan: ['db.example.com', long] })).toThrow(
      new ConfigError(`--tls-san (PGROUTE_TLS_SANS): TLS name "${'x'.repeat(80)}..." is neither an IP address nor a valid DNS name`),
    );
    expect(() => checkTlsFlags({ ...off, tls: 'auto', tlsSan: 'db.example.com,10.0.0.1' })).not.toThrow();
  });

  it('the two modes\' flags together are refused', () => {
    expect(() => checkTlsFlags({ ...off, tls: 'auto', tlsCert: 'c.pem' })).toThrow(/cannot go with --tls-cert/);
    expect(() => checkTlsFlags({ ...off, tlsSan: 'a.example.com' })).toThrow(/needs --tls auto$/);
    expect(() => checkTlsFlags({ ...off, tlsKey: 'k.pem' })).toThrow('--tls-key needs --tls-cert');
  });
});
