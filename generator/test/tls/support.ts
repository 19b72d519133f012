// Shared fixtures for the TLS tests (not a test file itself).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createCa, type IssuedCertificate } from '../../src/tls/certificates.js';

export const silentLog = pino({ level: 'silent' });

let sharedCa: Promise<IssuedCertificate> | undefined;
/** One CA for the tests that only need some CA. */
export function testCa(): Promise<IssuedCertificate> {
  sharedCa ??= createCa({ commonName: 'pgroute test CA', validityDays: 365 });
  return sharedCa;
}

/** A fresh temporary directory and its cleanup. */
export async function tempDir(prefix = 'pgroute-tls-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
