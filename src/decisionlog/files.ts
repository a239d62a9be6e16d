import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * Layout of a decision log directory: decisions-000001.jsonl, decisions-000002.jsonl, ... (the
 * highest number is the file being written), checkpoint-keys.jwks (public keys, for verifiers)
 * and LOCK (pid of the writer). Readers here are synchronous and stream in fixed-size chunks, so
 * memory stays flat however large a file is.
 */

export const LOG_FILE_RE = /^decisions-(\d{6,})\.jsonl$/;
export const PUBLIC_KEYS_FILE = 'checkpoint-keys.jwks';
export const LOCK_FILE = 'LOCK';

export function logFileName(index: number): string {
  return `decisions-${String(index).padStart(6, '0')}.jsonl`;
}

export interface LogFile {
  name: string;
  path: string;
  index: number;
}

/** Log files of a directory in chain order; [] if the directory does not exist. */
export function listLogFiles(dir: string): LogFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: LogFile[] = [];
  for (const name of names) {
    const m = LOG_FILE_RE.exec(name);
    if (m) out.push({ name, path: join(dir, name), index: Number(m[1]) });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** A FILE or DIR argument → the files to read, in order. */
export function resolveLogFiles(target: string): LogFile[] {
  const st = statSync(target);
  if (st.isDirectory()) return listLogFiles(target);
  const name = basename(target);
  const m = LOG_FILE_RE.exec(name);
  return [{ name, path: target, index: m ? Number(m[1]) : 0 }];
}

export interface RawLine {
  /** 1-based line number in its file. */
  lineNo: number;
  /** Byte offset of the line's first byte. */
  offset: number;
  text: string;
  /** False for a last line without its newline: a write that was cut off. */
  complete: boolean;
}

const CHUNK = 1 << 20;

/** Lines of a file, front to back, optionally from a line boundary (offset, with its line number - 1). */
export function* readLines(path: string, startOffset = 0, linesBefore = 0): Generator<RawLine> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer | null = null;
    let carryOffset = 0;
    let pos = startOffset;
    let lineNo = linesBefore;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      let data: Buffer = buf.subarray(0, n);
      let dataOffset = pos;
      if (carry) {
        data = Buffer.concat([carry, data]);
        dataOffset = carryOffset;
        carry = null;
      }
      pos += n;
      let start = 0;
      for (;;) {
        const nl = data.indexOf(0x0a, start);
        if (nl < 0) break;
        yield { lineNo: ++lineNo, offset: dataOffset + start, text: data.toString('utf8', start, nl), complete: true };
        start = nl + 1;
      }
      if (start < data.length) {
        carry = Buffer.from(data.subarray(start));
        carryOffset = dataOffset + start;
      }
    }
    if (carry) yield { lineNo: ++lineNo, offset: carryOffset, text: carry.toString('utf8'), complete: false };
  } finally {
    closeSync(fd);
  }
}

export interface TailLine {
  offset: number;
  text: string;
}

export interface FileTail {
  size: number;
  /** The bytes after the last newline, if the file does not end with one. */
  torn: { offset: number; bytes: number } | null;
  /** Complete lines from the last one backwards (lazily read). */
  lines: () => Generator<TailLine>;
}

/** Looks at the end of a file: whether its last line is torn, and its complete lines backwards. */
export function readTail(path: string): FileTail {
  const size = statSync(path).size;
  let end = size;
  let torn: FileTail['torn'] = null;
  if (size > 0) {
    const fd = openSync(path, 'r');
    try {
      end = completeEnd(fd, size);
    } finally {
      closeSync(fd);
    }
    if (end < size) torn = { offset: end, bytes: size - end };
  }
  return { size, torn, lines: () => linesBackward(path, end) };
}

/** Offset just past the last newline (0 if there is none). */
function completeEnd(fd: number, size: number): number {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, size));
  let pos = size;
  while (pos > 0) {
    const start = Math.max(0, pos - buf.length);
    const n = readSync(fd, buf, 0, pos - start, start);
    const i = buf.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) return start + i + 1;
    pos = start;
  }
  return 0;
}

function* linesBackward(path: string, end: number): Generator<TailLine> {
  if (end === 0) return;
  const fd = openSync(path, 'r');
  try {
    // buf holds bytes [start, stop): whole lines, each ending with "\n".
    let start = end;
    let buf = Buffer.alloc(0);
    for (;;) {
      const searchEnd = buf.length - 1; // skip the newline that ends the last line in buf
      const i = searchEnd > 0 ? buf.lastIndexOf(0x0a, searchEnd - 1) : -1;
      if (i >= 0) {
        yield { offset: start + i + 1, text: buf.toString('utf8', i + 1, searchEnd) };
        buf = buf.subarray(0, i + 1);
        continue;
      }
      if (start === 0) {
        if (buf.length > 0) yield { offset: 0, text: buf.toString('utf8', 0, searchEnd) };
        return;
      }
      const from = Math.max(0, start - CHUNK);
      const more = Buffer.allocUnsafe(start - from);
      readSync(fd, more, 0, more.length, from);
      buf = Buffer.concat([more, buf]);
      start = from;
    }
  } finally {
    closeSync(fd);
  }
}

/** Size of an open file. */
export function fdSize(fd: number): number {
  return fstatSync(fd).size;
}
