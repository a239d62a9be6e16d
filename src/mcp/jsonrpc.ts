import { isObject } from '../util/object.js';
import { refusal, type Refusal } from '../contract/refusal.js';
/**
 * The one JSON-RPC 2.0 parser of the mesh, for both directions:
 * - requests (parseMcpBody): an MCP Streamable HTTP POST body from a client, one message or a
 *   batch, parsed without trusting it: size, nesting depth and batch length are bounded before
 *   JSON.parse runs, and anything that is not a well-formed message is refused rather than
 *   guessed at;
 * - responses (parseJsonRpcBody): what a server sent back, read so it can be filtered and
 *   re-serialised. Lenient on purpose: the server is the one we relay, and a message the filter
 *   does not understand is passed on as it came, not refused on the client's behalf.
 */

export type JsonRpcId = string | number;

const JSONRPC_VERSION = '2.0';

export interface JsonRpcMessage {
  kind: 'request' | 'notification' | 'response';
  id: JsonRpcId | null;
  method: string | null;
  params: Record<string, unknown> | null;
}

export interface BodyLimits {
  maxBytes: number;
  maxDepth: number;
  maxBatch: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = { maxBytes: 1024 * 1024, maxDepth: 64, maxBatch: 64 };

/** Why a body is refused: a parse error, an invalid request, or too large (each with its code and HTTP status). */
export type BodyError = Refusal;

export type ParsedBody =
  | { ok: true; batch: boolean; messages: JsonRpcMessage[]; value: unknown }
  | { ok: false; error: BodyError };

const fail = (kind: 'parseError' | 'invalidRequest' | 'tooLarge', message: string): ParsedBody => ({ ok: false, error: refusal(kind, message) });

/**
 * Deepest bracket nesting outside strings, stopping early past `limit`. A linear scan is far cheaper
 * than letting a hostile body reach JSON.parse and a recursive walk.
 */
export function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) { max = depth; if (max > limit) return max; }
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** Validates one element; returns the message or a description of what is wrong with it. */
export function toMessage(v: unknown): JsonRpcMessage | string {
  if (!isObject(v)) return 'a JSON-RPC message must be an object';
  if (v.jsonrpc !== JSONRPC_VERSION) return 'missing or wrong "jsonrpc" member (must be "2.0")';
  const hasId = 'id' in v;
  const id = v.id;
  if (hasId && !(typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)))) {
    return '"id" must be a string or a number (MCP forbids null ids)';
  }
  if ('method' in v) {
    if (typeof v.method !== 'string' || v.method.length === 0) return '"method" must be a non-empty string';
    if ('params' in v && v.params !== undefined && !isObject(v.params)) return '"params" must be an object';
    const params = isObject(v.params) ? v.params : null;
    return { kind: hasId ? 'request' : 'notification', id: hasId ? (id as JsonRpcId) : null, method: v.method, params };
  }
  if ('result' in v || 'error' in v) {
    if (!hasId) return 'a JSON-RPC response needs an "id"';
    return { kind: 'response', id: id as JsonRpcId, method: null, params: null };
  }
  return 'neither a request ("method") nor a response ("result"/"error")';
}

export function parseMcpBody(body: Buffer | string, limits: BodyLimits = DEFAULT_BODY_LIMITS): ParsedBody {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (size === 0) return fail('invalidRequest', 'empty request body: expected a JSON-RPC message');
  if (size > limits.maxBytes) return fail('tooLarge', `request body is ${size} bytes, over the ${limits.maxBytes}-byte limit`);
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      return fail('parseError', 'request body is not valid UTF-8');
    }
  }
  const depth = nestingDepth(text, limits.maxDepth);
  if (depth > limits.maxDepth) return fail('invalidRequest', `request body nests deeper than ${limits.maxDepth} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return fail('parseError', `parse error: ${(e as Error).message}`);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return fail('invalidRequest', 'empty JSON-RPC batch');
    if (value.length > limits.maxBatch) return fail('invalidRequest', `batch of ${value.length} messages, over the limit of ${limits.maxBatch}`);
    const messages: JsonRpcMessage[] = [];
    for (let i = 0; i < value.length; i++) {
      const m = toMessage(value[i]);
      if (typeof m === 'string') return fail('invalidRequest', `invalid request at batch index ${i}: ${m}`);
      messages.push(m);
    }
    return { ok: true, batch: true, messages, value };
  }
  const m = toMessage(value);
  if (typeof m === 'string') return fail('invalidRequest', `invalid request: ${m}`);
  return { ok: true, batch: false, messages: [m], value };
}

/** Best effort: the id of the (first) request in a body we refused, so the error can carry it. */
export function idOf(value: unknown): JsonRpcId | null {
  const first = Array.isArray(value) ? value[0] : value;
  if (isObject(first) && (typeof first.id === 'string' || typeof first.id === 'number')) return first.id;
  return null;
}

/** An object claiming to be JSON-RPC 2.0; the shape of the rest is the receiver's business. */
export function isJsonRpcMessage(v: unknown): v is Record<string, unknown> & { jsonrpc: '2.0' } {
  return isObject(v) && v.jsonrpc === JSONRPC_VERSION;
}

/** Whether a parsed POST body opens a session: an initialize request, alone or as a batch of one. */
export function isInitializeBody(body: unknown): boolean {
  const one = Array.isArray(body) && body.length === 1 ? body[0] as unknown : body;
  return isObject(one) && one.method === 'initialize';
}

/** A response body as read for filtering: its messages unvalidated, and whether they came as a batch. */
export interface JsonRpcBody {
  batch: boolean;
  messages: unknown[];
}

/**
 * null when the text is not JSON. A leading byte order mark is skipped, as clients' UTF-8
 * decoders (fetch's `.json()`) skip it: what a client can read, the filter must read too.
 */
export function parseJsonRpcBody(text: string): JsonRpcBody | null {
  let v: unknown;
  try {
    v = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return null;
  }
  return Array.isArray(v) ? { batch: true, messages: v } : { batch: false, messages: [v] };
}

export function serializeJsonRpcBody(b: JsonRpcBody): string {
  return JSON.stringify(b.batch ? b.messages : b.messages[0]);
}
