import { parseJsonRpcBody, replaceSseEventData, serializeJsonRpcBody, SseEventSplitter, sseEventMessages } from './response.js';

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
  private finished = false;
  private readonly splitter: SseEventSplitter | null;
  private readonly rawDecoder = new TextDecoder();

  constructor(private readonly opts: ResponseBodyOptions) {
    this.splitter = opts.format === 'sse' ? new SseEventSplitter() : null;
  }

  /** True once the body proved too large to hold: the rest passes through unparsed. */
  get overflowed(): boolean { return this.overflow; }

  push(chunk: Buffer, end: boolean): ChunkOutcome {
    if (this.finished) return null;
    if (end) this.finished = true;
    if (this.overflow) {
      this.raw(chunk, end);
      return null;
    }
    if (this.opts.rewrite) this.unsent = this.unsent.length ? Buffer.concat([this.unsent, chunk]) : chunk;
    return this.opts.format === 'json' ? this.pushJson(chunk, end) : this.pushSse(chunk, end);
  }

  /**
   * Gives up on the body (after an internal error, the current chunk already pushed): returns what
   * to send in place of the current chunk (every byte held back, this chunk included), or null to
   * send the chunk as it is. The rest of the body passes through.
   */
  abort(): ChunkOutcome {
    const out = this.opts.rewrite ? this.unsent : null;
    this.unsent = Buffer.alloc(0);
    this.copy = [];
    this.overflow = true;
    this.splitter?.takeRest();
    return out;
  }

  private raw(chunk: Buffer, end: boolean): void {
    const text = this.rawDecoder.decode(chunk, { stream: !end });
    if (text) this.opts.onRawText?.(text);
  }

  /**
   * Too big to hold: everything received so far is counted as raw text and, when it was held
   * back from the client, released in place of this chunk; parsing stops.
   */
  private spill(): ChunkOutcome {
    const all = this.opts.rewrite ? this.unsent : Buffer.concat(this.copy);
    this.unsent = Buffer.alloc(0);
    this.copy = [];
    this.overflow = true;
    this.raw(all, this.finished);
    return this.opts.rewrite ? all : null;
  }

  private pushJson(chunk: Buffer, end: boolean): ChunkOutcome {
    let body: Buffer;
    if (this.opts.rewrite) {
      if (this.unsent.length > this.opts.maxBufferBytes) return this.spill();
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
      // One event larger than we hold: judge the complete ones, let the rest through raw.
      const done = events.map((e) => this.event(e));
      const rest = splitter.takeRest();
      this.unsent = Buffer.alloc(0);
      this.overflow = true;
      this.raw(rest, end);
      return this.opts.rewrite ? Buffer.concat([...done, rest]) : null;
    }
    const parts = events.map((e) => this.event(e));
    if (!this.opts.rewrite) return null;
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
    const text = raw.toString('utf8');
    const body = sseEventMessages(text);
    if (!body) return raw;
    let changed = false;
    const out = body.messages.map((m) => this.deliver(m, () => { changed = true; }));
    if (!changed) return raw;
    return Buffer.from(replaceSseEventData(text, serializeJsonRpcBody({ batch: body.batch, messages: out })), 'utf8');
  }
}
