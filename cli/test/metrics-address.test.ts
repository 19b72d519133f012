// --metrics-address (PGROUTE_METRICS_ADDRESS): host:port checked before anything listens, and the
// older --agent-http-port kept meaning what it meant (that port on --agent-host).

import { describe, expect, it } from 'vitest';
import { parseListenAddress } from '../flag-values.js';
import { metricsAddressFromFlags } from '../settings-options.js';

const A = '--metrics-address (PGROUTE_METRICS_ADDRESS)';
const P = '--agent-http-port (PGROUTE_AGENT_HTTP_PORT)';

describe('--metrics-address', () => {
  it.each([
    ['127.0.0.1:6711', { host: '127.0.0.1', port: 6711 }],
    ['0.0.0.0:9100', { host: '0.0.0.0', port: 9100 }],
    ['[::]:6711', { host: '::', port: 6711 }],
    ['[::1]:1', { host: '::1', port: 1 }],
    ['metrics.internal:6711', { host: 'metrics.internal', port: 6711 }],
  ])('%s is accepted', (value, want) => {
    expect(parseListenAddress(A, value)).toEqual(want);
  });

  it.each(['6711', ':6711', '0.0.0.0', '0.0.0.0:', '::1:6711', '[127.0.0.1]:6711', 'a b:6711', '0.0.0.0:6711 # x', '[::]:x'])('%j is refused with the rule and an example', (value) => {
    expect(() => parseListenAddress(A, value)).toThrow(/^--metrics-address \(PGROUTE_METRICS_ADDRESS\) must be host:port, such as 127\.0\.0\.1:6711 .*got "/);
  });

  it.each(['0.0.0.0:0', '0.0.0.0:65536'])('%j: the port is refused', (value) => {
    expect(() => parseListenAddress(A, value)).toThrow(/^--metrics-address \(PGROUTE_METRICS_ADDRESS\) must be a port number from 1 to 65535, got "/);
  });

  it('without it: the older --agent-http-port (default 6711) on the agent host, as before', () => {
    expect(metricsAddressFromFlags({ host: '127.0.0.1' }, A, P)).toEqual({ host: '127.0.0.1', port: 6711 });
    expect(metricsAddressFromFlags({ host: '10.0.0.5', httpPort: '7000' }, A, P)).toEqual({ host: '10.0.0.5', port: 7000 });
    expect(metricsAddressFromFlags({ host: '127.0.0.1', metricsAddress: '0.0.0.0:9000' }, A, P)).toEqual({ host: '0.0.0.0', port: 9000 });
  });

  it('both at once is refused: one of them would be ignored', () => {
    expect(() => metricsAddressFromFlags({ host: '127.0.0.1', httpPort: '7000', metricsAddress: '0.0.0.0:9000' }, A, P)).toThrow(
      '--metrics-address (PGROUTE_METRICS_ADDRESS) and --agent-http-port (PGROUTE_AGENT_HTTP_PORT) both name the metrics address; give --metrics-address (PGROUTE_METRICS_ADDRESS) alone (host:port)',
    );
  });
});
