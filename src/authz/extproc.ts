import type * as grpc from '@grpc/grpc-js';
import type { ExtProcStats } from '../metrics/extproc-metrics.js';
import type { BudgetGate, TokenCount } from '../budget/types.js';
import { ResponseBodyProcessor } from '../mcp/response-body.js';
import { bodyFormat } from '../mcp/response.js';
import { addCounts, measureValueAsync } from '../budget/tokens.js';
import type { ToolAnnotationStore } from '../mcp/annotations.js';
import { filterListResponse, isJsonObject, LIST_KINDS, listKindOfMethod, listKindOfResult, type JsonObject, type ListKind } from '../mcp/listfilter.js';
import type { ToolAnnotations } from '../contract/policy.js';
import { DECISION_ID_HEADER, type PendingCall, type PendingCalls } from './pending.js';
import type { SessionOwners } from './sessions.js';
import { refusal, type Refusal } from '../contract/refusal.js';

/**
 * Envoy ext_proc `Process` handler: the response half of the request path. For a call Check
 * allowed (found by `x-tollgate-decision-id` in the request headers Envoy forwards), it counts the
 * tokens of the results flowing back and charges the caller's budgets, filters list results
 * (tools/list, prompts/list, resources/list, resources/templates/list) by policy, and remembers
 * the tool annotations the server declared.
 *
 * Fails closed wherever a response could otherwise escape filtering or accounting:
 * - a request whose decision id this instance does not hold (no Check here allowed it: expired,
 *   or Check and ext_proc reached different authz replicas) is refused before it reaches the
 *   server, with a JSON-RPC error saying why;
 * - a response that may carry a list but cannot be read (content-encoding, not JSON or SSE, not
 *   valid JSON, larger than maxBufferBytes) is replaced by a JSON-RPC error, never passed on;
 * - a listed item the filter cannot judge is hidden.
 * Otherwise the call was already allowed, and an internal error while counting passes the rest of
 * the body through (counted as an error).
 *
 * Envoy filter settings this expects: request_header_mode SEND (to see the decision id),
 * response_header_mode SEND, response_body_mode STREAMED (or BUFFERED), request_body_mode NONE.
 * Messages are the plain objects @grpc/proto-loader produces with keepCase: false, oneofs: true
 * (src/envoy/protos.ts).
 */

type Bytes = Buffer | Uint8Array | string;

export interface HeaderValueMsg { key: string; value?: string; rawValue?: Bytes | null }
export interface HttpHeadersMsg { headers?: { headers?: HeaderValueMsg[] | null } | null; endOfStream?: boolean }
export interface HttpBodyMsg { body?: Bytes | null; endOfStream?: boolean }

export interface ProcessingRequestMsg {
  request?: string;
  requestHeaders?: HttpHeadersMsg | null;
  responseHeaders?: HttpHeadersMsg | null;
  requestBody?: HttpBodyMsg | null;
  responseBody?: HttpBodyMsg | null;
  requestTrailers?: object | null;
  responseTrailers?: object | null;
  observabilityMode?: boolean;
}

export interface CommonResponseMsg {
  status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE';
  headerMutation?: { setHeaders?: Array<{ header: { key: string; rawValue: Buffer } }>; removeHeaders?: string[] };
  bodyMutation?: { body: Buffer } | { clearBody: true };
}

/** A reply Envoy sends in place of the upstream's (or instead of forwarding the request). */
export interface ImmediateResponseMsg {
  status: { code: number };
  headers?: { setHeaders?: Array<{ header: { key: string; rawValue: Buffer } }> };
  body: Buffer;
  details?: string;
}

export type ProcessingResponseMsg =
  | { immediateResponse: ImmediateResponseMsg }
  | { requestHeaders: { response?: CommonResponseMsg } }
  | { responseHeaders: { response?: CommonResponseMsg } }
  | { requestBody: { response?: CommonResponseMsg } }
  | { responseBody: { response?: CommonResponseMsg } }
  | { requestTrailers: Record<string, never> }
  | { responseTrailers: Record<string, never> };

/** An item of a list result, as the filter predicate sees it. */
export interface ListedItem {
  name: string;
  annotations?: ToolAnnotations;
  kind: 'tool' | 'prompt' | 'resource' | 'resourceTemplate';
  /** resources: `uri`; resource templates: `uriTemplate`. */
  uri?: string;
  /** The item as the server sent it. */
  raw: JsonObject;
}

export interface ExtProcLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface ExtProcDeps {
  pending: PendingCalls;
  /** Session owners: an `initialize` answer binds its Mcp-Session-Id to the caller. */
  sessions?: SessionOwners | null;
  /** null: no budgets configured; responses are not counted, annotations and filtering still run. */
  gate: BudgetGate | null;
  annotations: ToolAnnotationStore;
  /** The `instructions` of a server's initialize result (tool pinning scans them). */
  onInstructions?: (server: string, instructions: string) => void;
  /** Every tools/list page a server answers, before filtering (tool pinning observes it). */
  onToolsListed?: (server: string, tools: readonly unknown[]) => void;
  /** Whether the caller of `call` may see a listed tool, prompt or resource; unset: no filtering. */
  filterTool?: (call: PendingCall, tool: ListedItem) => boolean;
  /**
   * Once per response, when all its tokens are counted and charged. When set, responses are
   * counted even without budgets (the decision log's accounting record needs the count).
   */
  onCharged?: (decisionId: string, tokens: number, call: PendingCall) => void;
  logger?: ExtProcLogger;
  /**
   * Largest body held for parsing (default 8 MiB). A larger list response is refused; any other
   * larger body passes through, counted as raw text.
   */
  maxBufferBytes?: number;
}

export type { ExtProcStats };

export type ExtProcHandler = grpc.handleBidiStreamingCall<ProcessingRequestMsg, ProcessingResponseMsg> & { readonly stats: ExtProcStats };

const ITEM_KIND: Record<ListKind, ListedItem['kind']> = { tools: 'tool', prompts: 'prompt', resources: 'resource', resourceTemplates: 'resourceTemplate' };

function toBuffer(b: Bytes | null | undefined): Buffer {
  if (!b) return Buffer.alloc(0);
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Envoy sends header values in `raw_value` (newer) or `value` (older); keys are lower-case. */
export function headerOf(h: HttpHeadersMsg | null | undefined, name: string): string | null {
  for (const hv of h?.headers?.headers ?? []) {
    if (hv.key.toLowerCase() !== name) continue;
    const raw = toBuffer(hv.rawValue);
    return raw.length > 0 ? raw.toString('utf8') : hv.value ?? '';
  }
  return null;
}

function listedItem(kind: ListKind, raw: JsonObject): ListedItem {
  const item: ListedItem = { kind: ITEM_KIND[kind], name: typeof raw.name === 'string' ? raw.name : '', raw };
  if (kind === 'tools' && isJsonObject(raw.annotations)) item.annotations = raw.annotations as ToolAnnotations;
  if (kind === 'resources' && typeof raw.uri === 'string') item.uri = raw.uri;
  if (kind === 'resourceTemplates' && typeof raw.uriTemplate === 'string') item.uri = raw.uriTemplate;
  return item;
}

const noop = (): void => undefined;

/** JSON text of the JSON-RPC error(s) answering `ids` (one with a null id when none is known). */
export function rpcErrorText(ids: ReadonlyArray<string | number | null>, r: Refusal, decisionId: string | null): string {
  const error = { code: r.code, message: `Tollgate: ${r.message}${decisionId ? ` (decision ${decisionId})` : ''}`, data: { decision_id: decisionId, reasons: [r.message] } };
  const one = (id: string | number | null): unknown => ({ jsonrpc: '2.0', id, error });
  return JSON.stringify(ids.length > 1 ? ids.map(one) : one(ids[0] ?? null));
}

/** Envoy answers the client with `r` itself (in place of the upstream, or before reaching it). */
function immediate(r: Refusal, ids: ReadonlyArray<string | number | null>, decisionId: string | null): { immediateResponse: ImmediateResponseMsg } {
  const setHeaders = [{ header: { key: 'content-type', rawValue: Buffer.from('application/json') } }];
  if (decisionId) setHeaders.push({ header: { key: DECISION_ID_HEADER, rawValue: Buffer.from(decisionId) } });
  return { immediateResponse: { status: { code: r.httpStatus }, headers: { setHeaders }, body: Buffer.from(rpcErrorText(ids, r, decisionId), 'utf8'), details: `tollgate: ${r.kind}` } };
}

/** The ids of the messages whose answers may be lists (a GET stream's: none known). */
function listIds(call: PendingCall): Array<string | number | null> {
  const methods = call.methods ?? [call.method];
  return (call.ids ?? []).filter((_, i) => methods[i] === null || listKindOfMethod(methods[i]) !== null);
}

/** Whether the answer to `call` may carry a list result: list methods, batches, and GET streams (resumption replays answers). */
function mayCarryList(call: PendingCall): boolean {
  const methods = call.methods ?? [call.method];
  return methods.some((m) => m === null || listKindOfMethod(m) !== null);
}

export function createExtProcHandler(deps: ExtProcDeps): ExtProcHandler {
  const stats: ExtProcStats = { streams: 0, responses: 0, unknownDecision: 0, unfilterable: 0, errors: 0, chargedTokens: 0, filteredItems: 0, oversizeBodies: 0 };
  const log: ExtProcLogger = deps.logger ?? { warn: noop, error: noop };
  const maxBufferBytes = deps.maxBufferBytes ?? 8 * 1024 * 1024;

  const handler = (stream: grpc.ServerDuplexStream<ProcessingRequestMsg, ProcessingResponseMsg>): void => {
    stats.streams++;
    let call: PendingCall | null = null;
    let decisionId: string | null = null;
    let processor: ResponseBodyProcessor | null = null;
    let broken = false;
    let total: TokenCount = { tokens: 0 };
    let counting: Promise<void> = Promise.resolve();
    let finished = false;
    let ended = false;
    let aborted = false;

    /** An allowed `initialize` answered with a session id: that session is the caller's. */
    const bindSession = (c: PendingCall, h: HttpHeadersMsg): void => {
      const sid = headerOf(h, 'mcp-session-id');
      if (!sid || !deps.sessions || !c.owner || !(c.methods ?? [c.method]).includes('initialize')) return;
      const entry = deps.sessions.bind(sid, c.owner, 'initialize', Date.now());
      if (entry.owner !== c.owner) log.error({ decisionId: c.decisionId }, 'ext_proc: the server issued a session id another identity already holds; it stays bound to its first owner');
    };

    /** Counts an internal error; `passThrough`: stop touching this response's body. */
    const fail = (e: unknown, where: string, passThrough = true): void => {
      stats.errors++;
      if (passThrough) broken = true;
      log.error({ err: (e as Error)?.message ?? String(e), decisionId, where }, passThrough ? 'ext_proc: internal error; passing the response through' : 'ext_proc: internal error');
    };

    /** Counts one value and charges it; serialised so charges land in order. */
    const charge = (value: unknown): void => {
      const c = call;
      const gate = deps.gate;
      if (!c || (!gate && !deps.onCharged)) return;
      counting = counting.then(async () => {
        const count = await measureValueAsync(value, gate?.encodingsFor?.(c.subject) ?? []);
        if (count.tokens <= 0) return;
        gate?.charge(c.subject, count);
        total = addCounts(total, count);
        stats.chargedTokens += count.tokens;
      }).catch((e: unknown) => fail(e, 'charge', false));
    };

    const finish = (): void => {
      if (finished || !call) return;
      finished = true;
      const done = call;
      void counting.then(() => deps.onCharged?.(done.decisionId, total.tokens, done));
    };

    const transform = (message: unknown): unknown => {
      const c = call;
      if (!c || !isJsonObject(message) || !isJsonObject(message.result)) return message;
      // By the request's method when there was one message; by the result's shape otherwise (a
      // batch), and as a backstop: a list hidden in a batch must not escape the filter.
      const methods = c.methods ?? [c.method];
      const kind = (methods.length === 1 ? listKindOfMethod(methods[0]) : null) ?? listKindOfResult(message.result);
      if (!kind) {
        // Judged by shape, a result holding a list next to other members (`content`, or two lists)
        // is still filtered, member by member: a list must not escape by bringing company.
        const present = LIST_KINDS.filter((k) => Array.isArray((message.result as JsonObject)[k]));
        return present.reduce<unknown>((m, k) => filterKind(c, m, k), message);
      }
      return filterKind(c, message, kind);
    };

    const filterKind = (c: PendingCall, message: unknown, kind: ListKind): unknown => {
      if (!isJsonObject(message) || !isJsonObject(message.result)) return message;
      if (kind === 'tools' && Array.isArray(message.result.tools)) {
        deps.annotations.record(c.server, message.result.tools);
        deps.onToolsListed?.(c.server, message.result.tools);
      }
      const filter = deps.filterTool;
      if (!filter) return message;
      // An item the filter cannot judge is hidden (fail closed, as Check is), and the error counted;
      // the response itself still goes out.
      const keep = (item: JsonObject): boolean => {
        try {
          return filter(c, listedItem(kind, item));
        } catch (e) {
          fail(e, 'filter', false);
          return false;
        }
      };
      const f = filterListResponse(message, kind, keep);
      stats.filteredItems += f.removed;
      return f.result;
    };

    /** The refusal of a may-list response that cannot be read (counted and logged). */
    const unfilterable = (c: PendingCall, why: string): Refusal => {
      stats.unfilterable++;
      log.error({ decisionId: c.decisionId, why }, 'ext_proc: a response that may carry a list cannot be filtered; refused');
      return refusal('unfilterable', `the MCP server's answer could not be filtered by policy (${why}), so it was withheld`);
    };

    const onResponseHeaders = (h: HttpHeadersMsg): CommonResponseMsg | { immediateResponse: ImmediateResponseMsg } => {
      if (!call) return {};
      const c = call;
      stats.responses++;
      bindSession(c, h);
      const mayList = deps.filterTool !== undefined && mayCarryList(c);
      const format = bodyFormat(headerOf(h, 'content-type'));
      const encoding = (headerOf(h, 'content-encoding') ?? '').trim().toLowerCase();
      const empty = h.endOfStream === true || headerOf(h, 'content-length') === '0';
      // JSON-RPC results travel in 2xx answers only; an error status (a GET refused with 405, say)
      // carries no list, whatever its body.
      const success = /^2\d\d$/.test(headerOf(h, ':status') ?? '200');
      if (mayList && success && !empty && (format === 'other' || (encoding !== '' && encoding !== 'identity'))) {
        // Check asked the server for no compression; one that compresses anyway, or answers in a
        // format that is neither JSON nor SSE, cannot have its list filtered: refused whole.
        const why = format === 'other' ? `content-type "${headerOf(h, 'content-type') ?? ''}" is neither JSON nor SSE` : `content-encoding "${encoding}"`;
        finish();
        return immediate(unfilterable(c, why), listIds(c), c.decisionId);
      }
      if (format === 'other' || h.endOfStream) {
        finish();
        return {};
      }
      processor = new ResponseBodyProcessor({
        format, rewrite: mayList, transform, maxBufferBytes,
        unreadable: (why) => rpcErrorText(listIds(c), unfilterable(c, why), c.decisionId),
        onMessage: (m) => {
          if (isJsonObject(m) && ('result' in m || 'error' in m)) charge(m.result ?? m.error);
          const c = call;
          if (c && deps.onInstructions && c.method === 'initialize' && isJsonObject(m) && isJsonObject(m.result) && typeof m.result.instructions === 'string') {
            deps.onInstructions(c.server, m.result.instructions);
          }
        },
        onRawText: (text) => charge(text),
      });
      // A rewritten body has a new length; in BUFFERED mode Envoy leaves Content-Length to us.
      return mayList && format === 'json' ? { headerMutation: { removeHeaders: ['content-length'] } } : {};
    };

    const onResponseBody = (b: HttpBodyMsg): CommonResponseMsg => {
      const chunk = toBuffer(b.body);
      const end = b.endOfStream === true;
      if (!processor) {
        if (end) finish();
        return {};
      }
      const p = processor;
      if (broken && !aborted) {
        // An error elsewhere stopped processing: a list is refused (its held bytes replaced by the
        // error, the rest dropped); any other body has what was held released, then passes through.
        aborted = true;
        if (end) finish();
        const held = p.abort();
        if (p.refused) return { bodyMutation: { body: held ?? Buffer.alloc(0) } };
        return held && held.length > 0 ? { bodyMutation: { body: Buffer.concat([held, chunk]) } } : {};
      }
      let out: Buffer | null;
      try {
        const wasOver = p.overflowed;
        out = p.push(chunk, end);
        if (!wasOver && p.overflowed) {
          stats.oversizeBodies++;
          log.warn({ decisionId, maxBufferBytes }, 'ext_proc: response body too large to parse; passed through (not a list), counted as raw text');
        }
      } catch (e) {
        fail(e, 'body');
        aborted = true;
        out = p.abort();
      }
      // After the last chunk's messages are queued for counting, so the total includes them.
      if (end) finish();
      if (out === null) return {};
      return out.length === 0 ? { bodyMutation: { clearBody: true } } : { bodyMutation: { body: out } };
    };

    /**
     * The answer to one message. Envoy waits for an answer to every message it sends, so each
     * branch has a pass-through answer to fall back to if computing the real one fails.
     */
    const answer = (req: ProcessingRequestMsg): ProcessingResponseMsg | null => {
      const guarded = <T>(where: string, f: () => T, fallback: T): T => {
        try {
          return f();
        } catch (e) {
          fail(e, where);
          return fallback;
        }
      };
      if (req.requestHeaders) {
        const h = req.requestHeaders;
        guarded('request headers', () => {
          decisionId = headerOf(h, DECISION_ID_HEADER);
          call = decisionId ? deps.pending.take(decisionId) ?? null : null;
        }, undefined);
        if (!call) {
          // No Check of this instance allowed this request: its answer could be neither filtered
          // nor charged. Refused before it reaches the server (fail closed).
          stats.unknownDecision++;
          const why = decisionId
            ? `decision ${decisionId} is not known to this authz instance (it expired, or Check and ext_proc reached different authz replicas: route both to the same instance)`
            : 'the request carries no x-tollgate-decision-id (ext_authz did not allow it)';
          log.error({ decisionId }, `ext_proc: ${why}; refused`);
          return immediate(refusal('unknownDecision', `this request cannot be accounted for: ${why}`), [], decisionId);
        }
        return { requestHeaders: { response: {} } };
      }
      if (req.responseHeaders) {
        const h = req.responseHeaders;
        let r: ReturnType<typeof onResponseHeaders>;
        try {
          r = onResponseHeaders(h);
        } catch (e) {
          fail(e, 'response headers');
          // A response that may carry a list and could not be set up for filtering is refused.
          const c = call as PendingCall | null;
          r = c && deps.filterTool && mayCarryList(c) ? immediate(unfilterable(c, 'an internal error'), listIds(c), c.decisionId) : {};
        }
        return 'immediateResponse' in r ? r : { responseHeaders: { response: r } };
      }
      if (req.responseBody) {
        const b = req.responseBody;
        const fallback: CommonResponseMsg = processor?.rewriting ? { bodyMutation: { clearBody: true } } : {};
        return { responseBody: { response: guarded('response body', () => onResponseBody(b), fallback) } };
      }
      if (req.requestBody) return { requestBody: { response: {} } };
      if (req.requestTrailers) return { requestTrailers: {} };
      if (req.responseTrailers) {
        guarded('response trailers', finish, undefined);
        return { responseTrailers: {} };
      }
      return null;
    };

    stream.on('data', (req: ProcessingRequestMsg) => {
      const reply = answer(req);
      if (reply && req.observabilityMode !== true && !ended) stream.write(reply);
    });
    const close = (): void => {
      finish();
      if (!ended) {
        ended = true;
        stream.end();
      }
    };
    stream.on('end', close);
    stream.on('error', (e: Error) => {
      log.warn({ err: e.message, decisionId }, 'ext_proc stream error');
      close();
    });
    stream.on('cancelled', close);
  };

  return Object.assign(handler, { stats });
}
