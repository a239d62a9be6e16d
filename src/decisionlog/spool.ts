import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The disk queue of a replica while its destination is unreachable: an append-only file of lines
 * plus the offset of the first line not yet delivered. Bounded by `maxBytes` (the file's size);
 * push() refuses what does not fit, and the caller decides what that means.
 *
 * Delivery is at-least-once across crashes: the read offset is saved every few commits, so a
 * restart may hand out a few lines again (the replica de-duplicates by message id).
 */

export interface SpoolItem {
  line: string;
  /** Offset just past this line: commit(end) marks it delivered. */
  end: number;
}

const SAVE_EVERY = 64;

export class Spool {
  private fd: number;
  private size: number;
  private readPos: number;
  private sinceSave = 0;
  private readonly dataPath: string;
  private readonly posPath: string;

  private constructor(dir: string, private readonly maxBytes: number, private readonly warn: (m: string) => void) {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.dataPath = join(dir, 'spool.jsonl');
    this.posPath = join(dir, 'spool.pos');
    this.fd = openSync(this.dataPath, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o640);
    this.size = statSync(this.dataPath).size;
    this.dropTornTail();
    this.readPos = Math.min(this.loadPos(), this.size);
    if (this.readPos === this.size && this.size > 0) this.reset();
  }

  static open(dir: string, maxBytes: number, warn: (m: string) => void = () => undefined): Spool {
    return new Spool(dir, maxBytes, warn);
  }

  get empty(): boolean {
    return this.readPos >= this.size;
  }

  /** Bytes queued and not yet delivered. */
  get pendingBytes(): number {
    return this.size - this.readPos;
  }

  /** Appends a line; false (and nothing written) if it would take the file past maxBytes. */
  push(line: string): boolean {
    const buf = Buffer.from(line + '\n', 'utf8');
    if (this.size + buf.length > this.maxBytes && this.readPos > 0) this.compact();
    if (this.size + buf.length > this.maxBytes) return false;
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
    return true;
  }

  /** Up to `max` undelivered lines from the front, without consuming them. */
  peek(max: number): SpoolItem[] {
    const out: SpoolItem[] = [];
    let pos = this.readPos;
    let window = 1 << 20;
    while (out.length < max && pos < this.size) {
      const len = Math.min(window, this.size - pos);
      const buf = Buffer.allocUnsafe(len);
      const n = readSync(this.fd, buf, 0, len, pos);
      const data = buf.subarray(0, n);
      let start = 0;
      while (out.length < max) {
        const nl = data.indexOf(0x0a, start);
        if (nl < 0) break;
        out.push({ line: data.toString('utf8', start, nl), end: pos + nl + 1 });
        start = nl + 1;
      }
      if (start === 0) {
        if (len >= this.size - pos) break; // no complete line left (cannot happen after dropTornTail)
        window *= 2; // a line longer than the read window
        continue;
      }
      pos += start;
    }
    return out;
  }

  /** Marks everything before `end` delivered. The file is emptied once all of it is. */
  commit(end: number): void {
    this.readPos = Math.max(this.readPos, end);
    if (this.readPos >= this.size) {
      this.reset();
      return;
    }
    if (++this.sinceSave >= SAVE_EVERY) this.savePos();
  }

  close(): void {
    if (this.fd < 0) return;
    this.savePos();
    closeSync(this.fd);
    this.fd = -1;
  }

  private reset(): void {
    // Position first: a crash between the two re-delivers (de-duplicated), never skips.
    this.readPos = 0;
    this.savePos();
    ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  /**
   * Puts lines in front of everything queued (records older than the queue's, recovered after a
   * crash or held in memory at shutdown). Not bounded by maxBytes: they must not be lost.
   */
  prepend(lines: string[]): void {
    if (lines.length === 0) return;
    this.compact(Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8'));
  }

  /** First and last queued lines, for the caller to see which records they hold. */
  ends(): { first: string; last: string } | null {
    if (this.empty) return null;
    const first = this.peek(1)[0]!.line;
    let last = first;
    const tail = Buffer.allocUnsafe(Math.min(this.size - this.readPos, 1 << 20));
    readSync(this.fd, tail, 0, tail.length, this.size - tail.length);
    const text = tail.toString('utf8').replace(/\n$/, '');
    const i = text.lastIndexOf('\n');
    if (i >= 0 || tail.length === this.size - this.readPos) last = text.slice(i + 1);
    return { first, last };
  }

  /** Moves the undelivered lines to the front of a fresh file, so the cap counts only them. */
  private compact(front: Buffer = Buffer.alloc(0)): void {
    const pending = Buffer.allocUnsafe(this.size - this.readPos);
    readSync(this.fd, pending, 0, pending.length, this.readPos);
    const tmp = this.dataPath + '.tmp';
    writeFileSync(tmp, Buffer.concat([front, pending]), { mode: 0o640 });
    this.readPos = 0;
    this.savePos();
    renameSync(tmp, this.dataPath);
    closeSync(this.fd);
    this.fd = openSync(this.dataPath, constants.O_RDWR | constants.O_APPEND, 0o640);
    this.size = front.length + pending.length;
  }

  private savePos(): void {
    this.sinceSave = 0;
    writeFileSync(this.posPath, String(this.readPos));
  }

  private loadPos(): number {
    try {
      const n = Number(readFileSync(this.posPath, 'utf8').trim());
      return Number.isSafeInteger(n) && n >= 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  /** A crash while pushing can leave half a line: drop it (the local log still has the record). */
  private dropTornTail(): void {
    if (this.size === 0) return;
    const probe = Buffer.allocUnsafe(Math.min(this.size, 1 << 20));
    let end = this.size;
    while (end > 0) {
      const start = Math.max(0, end - probe.length);
      readSync(this.fd, probe, 0, end - start, start);
      const i = probe.subarray(0, end - start).lastIndexOf(0x0a);
      if (i >= 0) {
        end = start + i + 1;
        break;
      }
      end = start;
    }
    if (end < this.size) {
      this.warn(`dropping ${this.size - end} bytes of an incomplete line at the end of ${this.dataPath} (a crash while queueing); the record is still in the local decision log`);
      ftruncateSync(this.fd, end);
      this.size = end;
    }
  }
}
