// The tenant's password on the pgroute side: <state-dir>/tenants/<id>.password (directory 0700,
// file 0600). Generated here, never logged or printed; commands name the file.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { passwordDir, passwordPath } from './plan.js';

/** A fresh password: 24 random bytes, base64url (32 characters). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

export async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes the password file: directory 0700, file 0600 (also when they existed with looser modes). */
export async function writePasswordFile(stateDir: string, id: string, password: string): Promise<string> {
  const dir = passwordDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = passwordPath(stateDir, id);
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${password}\n`);
  } finally {
    await fh.close();
  }
  return path;
}
