/**
 * Splits a byte stream into newline-delimited frames (the MCP stdio transport), in linear time and
 * bounded memory: a frame longer than maxBytes is reported instead of buffered without end.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private overflowed = false;

  constructor(private readonly maxBytes: number, private readonly onLine: (line: string) => void, private readonly onOverflow: () => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.append(chunk.subarray(start, nl));
      this.flush();
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
  }

  private append(b: Buffer): void {
    if (this.overflowed || b.length === 0) return;
    if (this.size + b.length > this.maxBytes) {
      this.overflowed = true;
      this.parts = [];
      this.size = 0;
      this.onOverflow();
      return;
    }
    this.parts.push(b);
    this.size += b.length;
  }

  private flush(): void {
    const wasOverflowed = this.overflowed;
    const line = this.parts.length === 1 ? this.parts[0]!.toString('utf8') : Buffer.concat(this.parts).toString('utf8');
    this.parts = [];
    this.size = 0;
    this.overflowed = false;
    if (wasOverflowed) return;
    const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (trimmed.length > 0) this.onLine(trimmed);
  }
}
