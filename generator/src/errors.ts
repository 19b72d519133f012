/** A problem an operator must fix in a file or flag; the CLI prints its message and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const READ_FAILURES: Readonly<Record<string, string>> = { ENOENT: 'no such file', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'it is a directory', ENOTDIR: 'a part of the path is not a directory' };

/** Why a file could not be read, in words an operator acts on (the code kept for a search). */
export function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined) return (err as Error).message;
  const words = READ_FAILURES[code];
  return words === undefined ? code : `${words} (${code})`;
}
