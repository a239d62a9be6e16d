import { parseJsonRpcBody, type JsonRpcBody } from './jsonrpc.js';

/**
 * MCP Streamable HTTP response bodies: one JSON-RPC message or a batch as `application/json`, or a
 * `text/event-stream` whose events carry JSON-RPC messages in their `data` lines. The framing
 * only: the messages themselves are read by jsonrpc.ts. Rewriting an SSE event touches only its
 * data lines, so event names, ids, comments and line endings pass through byte for byte.
 */

export type BodyFormat = 'json' | 'sse' | 'other';

export function bodyFormat(contentType: string | null | undefined): BodyFormat {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === 'text/event-stream') return 'sse';
  if (ct === 'application/json' || ct.endsWith('+json')) return 'json';
  return 'other';
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts a byte stream into complete SSE events (each with the blank line that ends it), however
 * the stream was chunked: an event split across chunks, a CR LF split between two chunks, and a
 * multi-byte character split in two all come out whole. Works on bytes, so events are re-emitted
 * exactly as received.
 */
export class SseEventSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private scan = 0;
  private lineStart = 0;

  /** Bytes held: the start of an event not yet complete. */
  get pending(): number { return this.buf.length; }

  push(chunk: Uint8Array): Buffer[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const events: Buffer[] = [];
    let i = this.scan;
    const b = this.buf;
    let base = 0; // start of the current event within b
    while (i < b.length) {
      const c = b[i];
      if (c !== LF && c !== CR) { i++; continue; }
      let end: number;
      if (c === LF) end = i + 1;
      else if (i + 1 < b.length) end = b[i + 1] === LF ? i + 2 : i + 1;
      else break; // a CR last: wait to see whether LF follows
      const emptyLine = i === this.lineStart;
      this.lineStart = end;
      i = end;
      if (emptyLine) {
        events.push(b.subarray(base, end));
        base = end;
      }
    }
    this.buf = b.subarray(base);
    this.scan = i - base;
    this.lineStart -= base;
    return events;
  }

  /** At end of stream: whatever is left (an event without its blank line, which clients drop). */
  takeRest(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    this.scan = 0;
    this.lineStart = 0;
    return rest;
  }
}

const LINE = /([^\r\n]*)(\r\n|\r|\n|$)/g;

interface SseLine { text: string; eol: string; field: string | null; value: string }

function sseLines(raw: string): SseLine[] {
  const out: SseLine[] = [];
  LINE.lastIndex = 0;
  for (let m = LINE.exec(raw); m; m = LINE.exec(raw)) {
    const text = m[1]!;
    const eol = m[2]!;
    if (text === '' && eol === '') break;
    let field: string | null = null;
    let value = '';
    if (!text.startsWith(':')) {
      const idx = text.indexOf(':');
      field = idx < 0 ? text : text.slice(0, idx);
      value = idx < 0 ? '' : text.slice(idx + 1);
      if (value.startsWith(' ')) value = value.slice(1);
    }
    out.push({ text, eol, field, value });
  }
  return out;
}

/** The event's data (its data lines joined by LF, as a browser would), or null when it has none. */
export function sseEventData(raw: string): string | null {
  const data = sseLines(raw).filter((l) => l.field === 'data').map((l) => l.value);
  return data.length ? data.join('\n') : null;
}

/**
 * The event with its data replaced by `data`: one data line per line of `data`, where the first
 * data line was, with that line's ending. Everything else stays as it was.
 */
export function replaceSseEventData(raw: string, data: string): string {
  let out = '';
  let done = false;
  for (const l of sseLines(raw)) {
    if (l.field !== 'data') {
      out += l.text + l.eol;
      continue;
    }
    if (done) continue;
    done = true;
    const eol = l.eol || '\n';
    for (const part of data.split(/\r\n|\r|\n/)) out += `data: ${part}${eol}`;
  }
  return out;
}

/** The JSON-RPC message(s) an SSE event carries, or null when its data is absent or not JSON. */
export function sseEventMessages(raw: string): JsonRpcBody | null {
  const m = sseEventContent(raw);
  return m === 'none' || m === 'unreadable' ? null : m;
}

/** An event's messages; 'none' for an event without data (keep-alive, priming); 'unreadable' for data that is not JSON. */
export function sseEventContent(raw: string): JsonRpcBody | 'none' | 'unreadable' {
  // A stream may start with a byte order mark, which SSE parsers skip.
  const data = sseEventData(raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw);
  if (data === null || data.trim() === '') return 'none';
  return parseJsonRpcBody(data) ?? 'unreadable';
}
