// Lines out of a stream's chunks, for the streams pgroute reads line by line (HAProxy's stderr,
// dockerd's events). A line may arrive in several chunks and a chunk may hold several lines; a line
// longer than the bound is given out in pieces of at most that length, so that a stream that never
// sends a newline cannot grow memory without end. Pure.

export class LineSplitter {
  #pending = '';

  constructor(private readonly maxChars: number) {}

  /** The lines this chunk completes, without their '\n' (a longer one in pieces of the bound). */
  push(chunk: string): string[] {
    const parts = (this.#pending + chunk).split('\n');
    this.#pending = parts.pop() ?? '';
    const lines = parts.flatMap((l) => this.#pieces(l));
    while (this.#pending.length > this.maxChars) {
      lines.push(this.#pending.slice(0, this.maxChars));
      this.#pending = this.#pending.slice(this.maxChars);
    }
    return lines;
  }

  #pieces(line: string): string[] {
    if (line.length <= this.maxChars) return [line];
    const out: string[] = [];
    for (let i = 0; i < line.length; i += this.maxChars) out.push(line.slice(i, i + this.maxChars));
    return out;
  }

  /** At the end of the stream: its last line when no newline followed it. */
  end(): string[] {
    const rest = this.#pending;
    this.#pending = '';
    return rest === '' ? [] : [rest];
  }
}
