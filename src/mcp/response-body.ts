import { parseJsonRpcBody, serializeJsonRpcBody } from './jsonrpc.js';
import { replaceSseEventData, SseEventSplitter, sseEventContent } from './response.js';

/**
 * One response body on its way to the client, chunk by chunk, as Envoy's ext_proc hands it over
 * (one chunk in BUFFERED mode, many in STREAMED mode). Finds the JSON-RPC messages in it, lets the
 * caller replace them (list filtering) and see them (token counting), and says what to send on
 * in place of each chunk. No I/O and no tokenizer here.
 */

export interface ResponseBodyOptions {
  format: 'json' | 'sse';
  /**
   * The body may have to be rewritten (a list call): complete units are held back until they can
   * be judged. Otherwise every chunk passes at once and a copy is parsed on the side.
   */
  rewrite: boolean;
  /**
   * Returns the message to deliver in place of `message` (the same object: unchanged). Called for
   * every message; its answer is used only when `rewrite` is set.
   */
  transform: (message: unknown) => unknown;
  /** Every message as delivered (after transform). */
  onMessage: (message: unknown) => void;
  /**
   * Text of a body too large to parse (over maxBufferBytes), chunk by chunk as it passes, so it
   * can still be counted.
   */
  onRawText?: (text: string) => void;
  maxBufferBytes: number;
  /**
   * Rewrite mode only: what to deliver in place of a body (or SSE event) that cannot be judged,
   * because it is not JSON or larger than maxBufferBytes: the JSON text of JSON-RPC error(s). A
   * list that cannot be filtered is never passed on (fail closed); after an oversized body or
   * event, nothing more of that body is.
   */
  unreadable?: (why: string) => string;
}

/** What to do with a chunk: null sends it on as it is, a Buffer replaces it (possibly empty). */
export type ChunkOutcome = Buffer | null;

export class ResponseBodyProcessor {
  /**
   * Rewrite mode: bytes received but not yet sent on (held back until judged). On an internal
   * error they are all released at once, so nothing is lost.
   */
  private unsent: Buffer = Buffer.alloc(0);
  /** Count mode: a copy of the body so far, parsed at the end. */
  private copy: Buffer[] = [];
  private copyBytes = 0;
  private overflow = false;
  /** Rewrite mode: the body could not be judged and was replaced; the rest of it is dropped. */
  private dropping = false;
  private finished = false;
  private readonly splitter: SseEventSplitter | null;
  private readonly rawDecoder = new TextDecoder();

  constructor(private readonly opts: ResponseBodyOptions) {
    this.splitter = opts.format === 'sse' ? new SseEventSplitter() : null;
  }

  /** True once the body proved too large to hold: the rest passes through unparsed (or, when rewriting, is dropped). */
  get overflowed(): boolean { return this.overflow; }

  /** Whether this body is held back to be rewritten (a list), rather than passed on as it comes. */
  get rewriting(): boolean { return this.opts.rewrite; }

  /** True once a body being rewritten could not be judged and was replaced by an error. */
  get refused(): boolean { return this.dropping; }

  push(chunk: Buffer, end: boolean): ChunkOutcome {
    if (this.finished) return null;
    if (end) this.finished = true;
    if (this.dropping) return Buffer.alloc(0);
    if (this.overflow) {
      this.raw(chunk, end);
      return null;
    }
    if (this.opts.rewrite) this.unsent = this.unsent.length ? Buffer.concat([this.unsent, chunk]) : chunk;
    return this.opts.format === 'json' ? this.pushJson(chunk, end) : this.pushSse(chunk, end);
  }

  /**
   * Gives up on the body (after an internal error, the current chunk already pushed): returns what
   * to send in place of the current chunk, or null to send the chunk as it is. The rest of the
   * body passes through, except a body being rewritten (a list), which is refused instead: its
   * held-back bytes are replaced by the error and the rest is dropped.
   */
  abort(why = 'an internal error stopped its processing'): ChunkOutcome {
    this.unsent = Buffer.alloc(0);
    this.copy = [];
    this.splitter?.takeRest();
    if (this.opts.rewrite && !this.dropping) return this.refuse(why);
    this.overflow = true;
    return this.opts.rewrite ? Buffer.alloc(0) : null;
  }

  private raw(chunk: Buffer, end: boolean): void {
    const text = this.rawDecoder.decode(chunk, { stream: !end });
    if (text) this.opts.onRawText?.(text);
  }

  /** The error framed for this body's format, in place of what could not be judged; `dropRest`: and the rest of the body. */
  private refuse(why: string, dropRest = true): Buffer {
    if (dropRest) {
      this.dropping = true;
      this.unsent = Buffer.alloc(0);
    }
    const text = this.opts.unreadable ? this.opts.unreadable(why) : '';
    return Buffer.from(this.opts.format === 'sse' && text ? `event: message\ndata: ${text}\n\n` : text, 'utf8');
  }

  /** Count mode, too big to hold: what was copied is counted as raw text and parsing stops. */
  private spill(): ChunkOutcome {
    const all = Buffer.concat(this.copy);
    this.copy = [];
    this.overflow = true;
    this.raw(all, this.finished);
    return null;
  }

  private pushJson(chunk: Buffer, end: boolean): ChunkOutcome {
    let body: Buffer;
    if (this.opts.rewrite) {
      if (this.unsent.length > this.opts.maxBufferBytes) return this.refuse(`it is larger than ${this.opts.maxBufferBytes} bytes`);
      if (!end) return Buffer.alloc(0);
      body = this.unsent;
    } else {
      this.copy.push(chunk);
      this.copyBytes += chunk.length;
      if (this.copyBytes > this.opts.maxBufferBytes) return this.spill();
      if (!end) return null;
      body = Buffer.concat(this.copy);
    }
    const single = body === chunk;
    const parsed = parseJsonRpcBody(body.toString('utf8'));
    if (!parsed && this.opts.rewrite) return this.refuse('it is not JSON');
    let out: ChunkOutcome = null;
    if (parsed) {
      let changed = false;
      const messages = parsed.messages.map((m) => this.deliver(m, () => { changed = true; }));
      if (changed) out = Buffer.from(serializeJsonRpcBody({ batch: parsed.batch, messages }), 'utf8');
    }
    // Unchanged: in BUFFERED mode (one chunk) nothing to do; in STREAMED mode the earlier chunks
    // were held back and go out now, with this one.
    if (out === null && this.opts.rewrite && !single) out = body;
    this.unsent = Buffer.alloc(0);
    this.copy = [];
    return out;
  }

  private pushSse(chunk: Buffer, end: boolean): ChunkOutcome {
    const splitter = this.splitter!;
    const events = splitter.push(chunk);
    if (splitter.pending > this.opts.maxBufferBytes) {
      // One event larger than we hold: judge the complete ones; the rest is counted raw or, when
      // rewriting, refused.
      const done = events.map((e) => this.event(e));
      const rest = splitter.takeRest();
      this.unsent = Buffer.alloc(0);
      if (this.opts.rewrite) return Buffer.concat([...done, this.refuse(`an event is larger than ${this.opts.maxBufferBytes} bytes`)]);
      this.overflow = true;
      this.raw(rest, end);
      return null;
    }
    const parts = events.map((e) => this.event(e));
    if (!this.opts.rewrite) return null;
    if (this.dropping) return Buffer.concat(parts);
    if (end) parts.push(splitter.takeRest());
    this.unsent = this.unsent.subarray(this.unsent.length - splitter.pending);
    const out = Buffer.concat(parts);
    return out.equals(chunk) ? null : out;
  }

  /**
   * A message on its way out: transform always sees it (it may learn from it, e.g. annotations),
   * but its replacement is used only when the body is being rewritten.
   */
  private deliver(m: unknown, changed: () => void): unknown {
    const t = this.opts.transform(m);
    const out = this.opts.rewrite ? t : m;
    if (out !== m) changed();
    this.opts.onMessage(out);
    return out;
  }

  /** One complete event: its messages seen and perhaps replaced. */
  private event(raw: Buffer): Buffer {
    if (this.dropping) return Buffer.alloc(0);
    // A stream may open with a byte order mark, which SSE parsers skip; so does the rewrite.
    const decoded = raw.toString('utf8');
    const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
    const body = sseEventContent(text);
    if (body === 'none') return raw;
    // Only this event is replaced: the stream's later events can still be judged one by one.
    if (body === 'unreadable') return this.opts.rewrite ? this.refuse('an event\'s data is not JSON', false) : raw;
    let changed = false;
    const out = body.messages.map((m) => this.deliver(m, () => { changed = true; }));
    if (!changed) return raw;
    return Buffer.from(replaceSseEventData(text, serializeJsonRpcBody({ batch: body.batch, messages: out })), 'utf8');
  }
}
