// PEM text: splitting a file into its blocks, and joining blocks the way HAProxy reads them. Pure.

export interface PemBlock {
  /** The label, e.g. "CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY". */
  readonly label: string;
  /** The whole block, BEGIN to END line, with a trailing newline. */
  readonly text: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(BLOCK)].map((m) => ({
    label: m[1] as string,
    text: `${m[0].replace(/\r\n/g, '\n')}\n`,
  }));
}

export function certificateBlocks(text: string): string[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.text);
}

export function privateKeyBlocks(text: string): PemBlock[] {
  return pemBlocks(text).filter((b) => b.label.endsWith('PRIVATE KEY'));
}

/** Concatenates blocks with no blank line anywhere (a blank line ends a HAProxy CLI payload). */
export function joinPem(blocks: readonly string[]): string {
  return blocks
    .map((b) => b.split('\n').filter((line) => line.trim() !== '').join('\n'))
    .join('\n')
    .concat('\n');
}
