// The log format: chosen by the terminal unless the flag says, refused in one line when unknown, and
// a pretty line that carries the message and fields of the JSON entry.

import { describe, expect, it } from 'vitest';
import { defaultLogFormat, parseLogFormat, prettyLine } from '../logger.js';

describe('log format', () => {
  it('pretty on a terminal, JSON otherwise', () => {
    expect(defaultLogFormat(true)).toBe('pretty');
    expect(defaultLogFormat(false)).toBe('json');
  });

  it('accepts json and pretty; refuses anything else naming the flag and its variable', () => {
    expect(parseLogFormat('json')).toBe('json');
    expect(parseLogFormat('pretty')).toBe('pretty');
    for (const bad of ['', 'JSON', 'text', 'pretty ']) expect(() => parseLogFormat(bad)).toThrow(`--log-format (PGROUTE_LOG_FORMAT) must be json or pretty, got "${bad}"`);
  });

  it('a pretty line: time, level, message and the fields on one line, without pid, host or svc', () => {
    const line = prettyLine(false)(`${JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', svc: 'pgroute', tenant: 'acme', msg: 'tenant refused' })}\n`);
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.006\] WARN: tenant refused \{"tenant":"acme"\}\n$/);
    expect(prettyLine(true)(`${JSON.stringify({ level: 30, time: 0, msg: 'x' })}\n`)).toContain('\u001b[');
  });
});
