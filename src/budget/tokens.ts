import { createRequire } from 'node:module';
import type { TokenCount } from './types.js';
import { TokenCountWorker } from './count-worker.js';

/**
 * Token counting with gpt-tokenizer's BPE encodings: what flows into and out of the model through
 * MCP (tool arguments, results, tool manifests) is counted the way the model's tokenizer counts it.
 *
 * Encodings are loaded on first use (o200k_base takes ~0.2 s and tens of MB), synchronously, so
 * the Check path can count without an await; call preloadEncodings() at start-up to pay that cost
 * before the first request instead of during it.
 */

export const ENCODING_NAMES = ['o200k_base', 'cl100k_base', 'p50k_base', 'p50k_edit', 'r50k_base', 'gpt2', 'o200k_harmony'] as const;
export type EncodingName = (typeof ENCODING_NAMES)[number];
export const DEFAULT_ENCODING: EncodingName = 'o200k_base';

export function isEncodingName(s: string): s is EncodingName {
  return (ENCODING_NAMES as readonly string[]).includes(s);
}

interface Encoder {
  countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
}

const require = createRequire(import.meta.url);
const encoders = new Map<EncodingName, Encoder>();

// Text from tools is data, not control: "<|endoftext|>" inside a result is counted as ordinary
// characters instead of making the tokenizer throw (its default).
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

function encoder(name: EncodingName): Encoder {
  let e = encoders.get(name);
  if (!e) {
    e = require(`gpt-tokenizer/encoding/${name}`) as Encoder;
    encoders.set(name, e);
  }
  return e;
}

export function preloadEncodings(names: Iterable<string> = [DEFAULT_ENCODING]): void {
  for (const n of names) if (isEncodingName(n)) encoder(n);
}

/** Repeated small strings (tool names, common arguments) skip the tokenizer. */
const SMALL_MAX_CHARS = 256;
const SMALL_CACHE_MAX = 4096;
const smallCache = new Map<string, number>();

function countSmall(text: string, name: EncodingName): number {
  const key = name === DEFAULT_ENCODING ? text : `${name}\u0000${text}`;
  const hit = smallCache.get(key);
  if (hit !== undefined) return hit;
  const n = encoder(name).countTokens(text, PLAIN_TEXT);
  // Cheap bound: when full, start over rather than track recency on every hit.
  if (smallCache.size >= SMALL_CACHE_MAX) smallCache.clear();
  smallCache.set(key, n);
  return n;
}

export interface CountOptions {
  /**
   * Above this many characters a synchronous count tokenizes only the first `maxExactChars` and
   * scales the result by length, so one huge argument cannot stall the event loop for everyone.
   * countTextAsync() never estimates: it counts everything, yielding between slices.
   */
  maxExactChars?: number;
}

export const DEFAULT_MAX_EXACT_CHARS = 256 * 1024;

/** Tokens of a text. Exact up to maxExactChars (default 256 KiB), proportionally estimated above. */
export function countText(text: string, name: EncodingName = DEFAULT_ENCODING, opts: CountOptions = {}): number {
  if (text.length === 0) return 0;
  if (text.length <= SMALL_MAX_CHARS) return countSmall(text, name);
  const max = opts.maxExactChars ?? DEFAULT_MAX_EXACT_CHARS;
  if (text.length <= max) return encoder(name).countTokens(text, PLAIN_TEXT);
  const cut = sliceEnd(text, 0, max);
  const head = encoder(name).countTokens(text.slice(0, cut), PLAIN_TEXT);
  return Math.ceil((head * text.length) / cut);
}

/** The text a value puts in front of the model: strings as they are, anything else as JSON. */
export function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}

export function countValue(value: unknown, name: EncodingName = DEFAULT_ENCODING, opts: CountOptions = {}): number {
  return countText(textOf(value), name, opts);
}

/** Counts a value in the default encoding and in each of `names`. */
export function measureValue(value: unknown, names: Iterable<string> = [], opts: CountOptions = {}): TokenCount {
  const text = textOf(value);
  const tokens = countText(text, DEFAULT_ENCODING, opts);
  let byEncoding: Record<string, number> | undefined;
  for (const n of names) {
    if (n === DEFAULT_ENCODING || !isEncodingName(n)) continue;
    byEncoding ??= {};
    byEncoding[n] ??= countText(text, n, opts);
  }
  return byEncoding ? { tokens, byEncoding } : { tokens };
}

export const ASYNC_SLICE_CHARS = 64 * 1024;

const WORDISH = /[\p{L}\p{N}]/u;
const LETTER = /\p{L}/u;

/**
 * Where to cut a slice of text near `start + size`, so that the sum of the slices' counts equals
 * the whole text's count: just before a space that sits between a letter or digit and a letter.
 * The tokenizer's pre-splitting always starts a new piece there (" word"), so no token can span
 * the cut. Falls back to any whitespace, then to a hard cut (base64, minified data), never inside
 * a UTF-16 surrogate pair.
 */
function sliceEnd(text: string, start: number, size: number): number {
  const hard = start + size;
  if (hard >= text.length) return text.length;
  const floor = start + Math.floor(size / 2);
  let anySpace = -1;
  for (let i = hard; i > floor; i--) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 9 && c !== 13) continue;
    if (c === 32 && WORDISH.test(text[i - 1]!) && LETTER.test(text[i + 1] ?? '')) return i;
    if (anySpace < 0) anySpace = i;
  }
  if (anySpace > 0) return anySpace;
  const c = text.charCodeAt(hard - 1);
  return c >= 0xd800 && c <= 0xdbff ? hard + 1 : hard;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Exact count of a text of any size without holding the event loop: small texts are counted at
 * once (the fast path), large ones slice by slice with a yield between slices, so Check calls
 * keep being answered while a multi-megabyte result is counted.
 */
export async function countTextAsync(text: string, name: EncodingName = DEFAULT_ENCODING, sliceChars = ASYNC_SLICE_CHARS): Promise<number> {
  if (text.length <= sliceChars) return countText(text, name, { maxExactChars: Infinity });
  const enc = encoder(name);
  let total = 0;
  for (let start = 0; start < text.length;) {
    const end = sliceEnd(text, start, sliceChars);
    total += enc.countTokens(text.slice(start, end), PLAIN_TEXT);
    start = end;
    if (start < text.length) await yieldToLoop();
  }
  return total;
}

let worker: TokenCountWorker | null = null;

/**
 * Counts of `text` from the worker thread, or null when it cannot give them. Used while an
 * encoding is not loaded on this thread: loading it here would hold the event loop, and every
 * Check with it (see count-worker.ts).
 */
async function countOffThread(text: string, names: EncodingName[]): Promise<TokenCount | null> {
  try {
    worker ??= new TokenCountWorker(ENCODING_NAMES);
    const counts = await worker.count(text, names);
    const tokens = counts[DEFAULT_ENCODING] ?? 0;
    const extra = names.filter((n) => n !== DEFAULT_ENCODING);
    return extra.length ? { tokens, byEncoding: Object.fromEntries(extra.map((n) => [n, counts[n] ?? 0])) } : { tokens };
  } catch {
    // A crashed or unavailable worker must not lose the count: it is taken on this thread instead.
    return null;
  }
}

/**
 * Exact counts that nobody waits on (response accounting). Encodings already loaded on this thread
 * (preloaded because budgets use them) count here, slice by slice; otherwise the worker counts.
 */
export async function measureValueAsync(value: unknown, names: Iterable<string> = [], sliceChars = ASYNC_SLICE_CHARS): Promise<TokenCount> {
  const text = textOf(value);
  const wanted = [...new Set([DEFAULT_ENCODING, ...[...names].filter(isEncodingName)])];
  if (wanted.some((n) => !encoders.has(n))) {
    const counted = await countOffThread(text, wanted);
    if (counted) return counted;
  }
  const tokens = await countTextAsync(text, DEFAULT_ENCODING, sliceChars);
  let byEncoding: Record<string, number> | undefined;
  for (const n of names) {
    if (n === DEFAULT_ENCODING || !isEncodingName(n) || byEncoding?.[n] !== undefined) continue;
    byEncoding ??= {};
    byEncoding[n] = await countTextAsync(text, n, sliceChars);
  }
  return byEncoding ? { tokens, byEncoding } : { tokens };
}

/** Adds token counts (per encoding too). */
export function addCounts(a: TokenCount, b: TokenCount): TokenCount {
  if (!a.byEncoding && !b.byEncoding) return { tokens: a.tokens + b.tokens };
  const byEncoding: Record<string, number> = {};
  const names = new Set([...Object.keys(a.byEncoding ?? {}), ...Object.keys(b.byEncoding ?? {})]);
  for (const n of names) byEncoding[n] = (a.byEncoding?.[n] ?? a.tokens) + (b.byEncoding?.[n] ?? b.tokens);
  return { tokens: a.tokens + b.tokens, byEncoding };
}
