import { LineCounter, parseDocument } from 'yaml';
import type { ToolAnnotations } from '../contract/policy.js';
import {
  ScenarioFormatError, type BudgetEntrySpec, type BudgetSpec, type EntrypointMode, type Expectation, type IdentitySpec,
  type RequestSpec, type Scenario, type ScenarioFile, type ScenarioProblem,
} from './scenario-types.js';

/**
 * Scenario YAML → validated cases. Pure: text in, cases or a ScenarioFormatError out. Every problem
 * names the file, the line, the case and the field, because a scenario file is only useful if a
 * typo in it is as easy to fix as a failing case.
 */

type Path = Array<string | number>;
type Json = Record<string, unknown>;

const TOP_KEYS = ['description', 'entrypoint', 'defaults', 'cases'];
const DEFAULT_KEYS = ['server', 'namespace', 'identity', 'time'];
const CASE_KEYS = ['name', 'description', 'server', 'namespace', 'identity', 'request', 'budget', 'annotations', 'time', 'expect'];
const IDENTITY_KEYS = ['authenticated', 'sub', 'iss', 'team', 'groups', 'agent', 'scopes', 'claims', 'delegation'];
const REQUEST_KEYS = ['method', 'tool', 'arguments', 'resource', 'prompt', 'params', 'id', 'transport', 'headers', 'path', 'session_id', 'protocol_version', 'listed'];
const BUDGET_KEYS = ['name', 'scope', 'limit', 'used', 'remaining', 'window', 'resets_at', 'action'];
const EXPECT_KEYS = ['allow', 'reasons_contain', 'reasons', 'status', 'headers', 'mask', 'cost'];
const ANNOTATION_BOOLS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'];

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (isObject(v)) return 'a mapping';
  if (v instanceof Date) return 'a date';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Collects problems with their location; each check returns undefined when the value is unusable. */
class Checker {
  readonly problems: ScenarioProblem[] = [];
  constructor(private readonly file: string, private readonly lineOf: (path: Path) => number | null) {}

  fail(path: Path, message: string): undefined {
    const caseIndex = path[0] === 'cases' && typeof path[1] === 'number' ? path[1] : null;
    const rel = caseIndex !== null ? path.slice(2) : path;
    const field = rel.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');
    this.problems.push({ file: this.file, line: this.lineOf(path), caseIndex, field: field || null, message });
    return undefined;
  }

  object(v: unknown, path: Path, keys: readonly string[] | null): Json | undefined {
    if (!isObject(v)) return this.fail(path, `must be a mapping, not ${typeOf(v)}`);
    if (keys) {
      for (const k of Object.keys(v)) {
        if (!keys.includes(k)) this.fail([...path, k], `unknown field (known: ${keys.join(', ')})`);
      }
    }
    return v;
  }

  string(v: unknown, path: Path, nonEmpty = false): string | undefined {
    if (typeof v !== 'string') return this.fail(path, `must be a string, not ${typeOf(v)}`);
    if (nonEmpty && v.trim() === '') return this.fail(path, 'must not be empty');
    return v;
  }

  nullableString(v: unknown, path: Path): string | null | undefined {
    return v === null ? null : this.string(v, path);
  }

  boolean(v: unknown, path: Path): boolean | undefined {
    return typeof v === 'boolean' ? v : this.fail(path, `must be true or false, not ${typeOf(v)}`);
  }

  number(v: unknown, path: Path, min = -Infinity): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(path, `must be a number, not ${typeOf(v)}`);
    if (v < min) return this.fail(path, `must be at least ${min}`);
    return v;
  }

  strings(v: unknown, path: Path): string[] | undefined {
    if (!Array.isArray(v)) return this.fail(path, `must be a list of strings, not ${typeOf(v)}`);
    const bad = v.findIndex((x) => typeof x !== 'string');
    if (bad >= 0) return this.fail([...path, bad], `must be a string, not ${typeOf(v[bad])}`);
    return v as string[];
  }

  /** A list of strings; a single string is taken as a one-element list. */
  stringOrStrings(v: unknown, path: Path): string[] | undefined {
    return typeof v === 'string' ? [v] : this.strings(v, path);
  }

  stringMap(v: unknown, path: Path, allowNull: boolean): Record<string, string | null> | undefined {
    const o = this.object(v, path, null);
    if (!o) return undefined;
    const out: Record<string, string | null> = {};
    for (const [k, x] of Object.entries(o)) {
      if (typeof x === 'string' || (allowNull && x === null)) out[k] = x;
      else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
      else this.fail([...path, k], `must be a string${allowNull ? ' or null' : ''}, not ${typeOf(x)}`);
    }
    return out;
  }
}

/** ISO 8601 time, or nanoseconds since the epoch → ns. */
function parseTime(c: Checker, v: unknown, path: Path): bigint | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;
  if (!d || Number.isNaN(d.getTime())) return c.fail(path, `must be an ISO 8601 time such as 2026-11-23T10:00:00Z (or ns since the epoch), not ${typeOf(v)}`);
  return BigInt(d.getTime()) * 1_000_000n;
}

function parseIdentity(c: Checker, v: unknown, path: Path): IdentitySpec | undefined {
  const o = c.object(v, path, IDENTITY_KEYS);
  if (!o) return undefined;
  const out: IdentitySpec = {};
  const at = (k: string): Path => [...path, k];
  if ('authenticated' in o) out.authenticated = c.boolean(o.authenticated, at('authenticated'));
  if ('sub' in o) out.sub = c.string(o.sub, at('sub'), true);
  if ('iss' in o) out.iss = c.string(o.iss, at('iss'), true);
  if ('team' in o) out.team = c.nullableString(o.team, at('team'));
  if ('agent' in o) out.agent = c.nullableString(o.agent, at('agent'));
  if ('groups' in o) out.groups = c.stringOrStrings(o.groups, at('groups'));
  if ('scopes' in o) {
    // Tokens carry scopes as one space-separated string; both spellings are accepted.
    out.scopes = typeof o.scopes === 'string' ? o.scopes.split(/\s+/).filter(Boolean) : c.strings(o.scopes, at('scopes'));
  }
  if ('claims' in o) out.claims = c.object(o.claims, at('claims'), null);
  if ('delegation' in o) {
    if (!Array.isArray(o.delegation)) c.fail(at('delegation'), `must be a list of mappings such as {sub: orchestrator}, not ${typeOf(o.delegation)}`);
    else out.delegation = o.delegation.map((d, i) => c.object(d, [...path, 'delegation', i], null) ?? {});
  }
  return out;
}

function parseRequest(c: Checker, v: unknown, path: Path): RequestSpec | undefined {
  const o = c.object(v, path, REQUEST_KEYS);
  if (!o) return undefined;
  const at = (k: string): Path => [...path, k];
  const out: RequestSpec = {};
  if ('transport' in o) {
    if (o.transport !== 'GET' && o.transport !== 'DELETE') c.fail(at('transport'), `must be GET (open the SSE stream) or DELETE (end the session), not ${typeOf(o.transport)}`);
    else out.transport = o.transport;
    for (const k of ['method', 'tool', 'arguments', 'resource', 'prompt', 'params', 'id']) {
      if (k in o) c.fail(at(k), `a transport request (${String(o.transport)}) has no JSON-RPC message, so it takes no ${k}`);
    }
  }
  if ('listed' in o) {
    out.listed = c.string(o.listed, at('listed'), true);
    for (const k of ['method', 'tool', 'arguments', 'resource', 'prompt', 'params', 'transport']) {
      if (k in o) c.fail(at(k), `listed asks whether a tool is shown in tools/list, so it takes no ${k}`);
    }
    return out;
  }
  if ('method' in o) out.method = c.string(o.method, at('method'), true);
  if ('tool' in o) out.tool = c.string(o.tool, at('tool'), true);
  if ('resource' in o) out.resource = c.string(o.resource, at('resource'), true);
  if ('prompt' in o) out.prompt = c.string(o.prompt, at('prompt'), true);
  if ('arguments' in o) out.arguments = c.object(o.arguments, at('arguments'), null);
  if ('params' in o) {
    out.params = c.object(o.params, at('params'), null);
    for (const k of ['tool', 'arguments', 'resource', 'prompt']) {
      if (k in o) c.fail(at(k), `give either params (sent as they are) or ${k}, not both`);
    }
  }
  if ('id' in o) {
    const id = o.id;
    if (id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) out.id = id;
    else c.fail(at('id'), `must be a string, a number, or null for a notification; not ${typeOf(id)}`);
  }
  if ('headers' in o) {
    const h = c.stringMap(o.headers, at('headers'), false);
    if (h) out.headers = Object.fromEntries(Object.entries(h).map(([k, x]) => [k.toLowerCase(), x ?? '']));
  }
  if ('path' in o) {
    const p = c.string(o.path, at('path'), true);
    if (p !== undefined && !p.startsWith('/')) c.fail(at('path'), `must start with "/", e.g. /mcp`);
    else out.path = p;
  }
  if ('session_id' in o) out.session_id = c.nullableString(o.session_id, at('session_id'));
  if ('protocol_version' in o) out.protocol_version = c.nullableString(o.protocol_version, at('protocol_version'));

  if (!out.transport && !out.method && !out.tool && !out.resource && !out.prompt && !('transport' in o)) {
    c.fail(path, 'give the call: tool (a tools/call), method (any JSON-RPC method), resource, prompt, transport: GET|DELETE, or listed: TOOL (is it shown in tools/list)');
  }
  const method = out.method ?? (out.tool ? 'tools/call' : out.resource ? 'resources/read' : out.prompt ? 'prompts/get' : null);
  if (out.tool && method !== 'tools/call') c.fail(at('tool'), `tool is the name for a tools/call, but method is ${method}`);
  if (out.prompt && method !== 'prompts/get') c.fail(at('prompt'), `prompt is the name for a prompts/get, but method is ${method}`);
  if (out.arguments && method !== 'tools/call' && method !== 'prompts/get') c.fail(at('arguments'), `arguments go with tools/call or prompts/get, but method is ${method}`);
  return out;
}

function parseBudgetEntry(c: Checker, v: unknown, path: Path): BudgetEntrySpec | undefined {
  const o = c.object(v, path, BUDGET_KEYS);
  if (!o) return undefined;
  const at = (k: string): Path => [...path, k];
  const name = 'name' in o ? c.string(o.name, at('name'), true) : c.fail(path, 'needs a name');
  const limit = 'limit' in o ? c.number(o.limit, at('limit'), 0) : c.fail(path, 'needs a limit (tokens per window)');
  const used = 'used' in o ? c.number(o.used, at('used'), 0) : 0;
  const remaining = 'remaining' in o ? c.number(o.remaining, at('remaining')) : limit !== undefined && used !== undefined ? Math.max(0, limit - used) : 0;
  const scope = 'scope' in o ? c.stringMap(o.scope, at('scope'), false) : {};
  const window = 'window' in o ? c.string(o.window, at('window'), true) : 'day';
  const resetsAt = 'resets_at' in o ? c.string(o.resets_at, at('resets_at'), true) : null;
  let action: 'deny' | 'warn' | undefined = 'deny';
  if ('action' in o) action = o.action === 'deny' || o.action === 'warn' ? o.action : c.fail(at('action'), `must be deny or warn, not ${typeOf(o.action)}`);
  if (name === undefined || limit === undefined || used === undefined || remaining === undefined || scope === undefined || window === undefined || resetsAt === undefined || action === undefined) return undefined;
  return { name, scope: scope as Record<string, string>, limit, used, remaining, window, resets_at: resetsAt, action };
}

function parseBudget(c: Checker, v: unknown, path: Path): BudgetSpec | undefined {
  let list: unknown = v;
  let estimated: number | null = null;
  if (isObject(v)) {
    const o = c.object(v, path, ['budgets', 'estimated_tokens']);
    if (!o) return undefined;
    list = o.budgets ?? [];
    if ('estimated_tokens' in o) estimated = c.number(o.estimated_tokens, [...path, 'estimated_tokens'], 0) ?? null;
    path = [...path, 'budgets'];
  }
  if (!Array.isArray(list)) return c.fail(path, `must be a list of budget entries ({name, limit, used, ...}), not ${typeOf(list)}`);
  const budgets = list.map((e, i) => parseBudgetEntry(c, e, [...path, i]));
  if (budgets.some((b) => b === undefined)) return undefined;
  return { budgets: budgets as BudgetEntrySpec[], estimatedTokens: estimated };
}

function parseAnnotations(c: Checker, v: unknown, path: Path): ToolAnnotations | null | undefined {
  if (v === null) return null;
  const o = c.object(v, path, null);
  if (!o) return undefined;
  for (const k of ANNOTATION_BOOLS) if (k in o) c.boolean(o[k], [...path, k]);
  if ('title' in o) c.string(o.title, [...path, 'title']);
  return o as ToolAnnotations;
}

function parseExpect(c: Checker, v: unknown, path: Path): Expectation | undefined {
  const o = c.object(v, path, EXPECT_KEYS);
  if (!o) return undefined;
  const at = (k: string): Path => [...path, k];
  if (Object.keys(o).length === 0) return c.fail(path, `say what to expect: ${EXPECT_KEYS.join(', ')}`);
  const out: Expectation = {};
  if ('allow' in o) out.allow = c.boolean(o.allow, at('allow'));
  if ('reasons_contain' in o) out.reasonsContain = c.stringOrStrings(o.reasons_contain, at('reasons_contain'));
  if ('reasons' in o) out.reasons = c.strings(o.reasons, at('reasons'));
  if ('status' in o) {
    const s = o.status;
    if (s === null) out.status = null;
    else if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) out.status = s;
    else c.fail(at('status'), `must be an HTTP status (100-599) or null, not ${typeOf(s)}`);
  }
  if ('headers' in o) out.headers = c.stringMap(o.headers, at('headers'), true);
  if ('mask' in o) out.mask = c.strings(o.mask, at('mask'));
  if ('cost' in o) out.cost = o.cost === null ? null : c.number(o.cost, at('cost'), 0);
  return out;
}

interface Defaults {
  server: string;
  namespace: string;
  identity: IdentitySpec;
  timeNs: bigint | null;
}

function parseDefaults(c: Checker, v: unknown): Defaults {
  const d: Defaults = { server: 'demo', namespace: 'default', identity: {}, timeNs: null };
  if (v === undefined || v === null) return d;
  const o = c.object(v, ['defaults'], DEFAULT_KEYS);
  if (!o) return d;
  if ('server' in o) d.server = c.string(o.server, ['defaults', 'server'], true) ?? d.server;
  if ('namespace' in o) d.namespace = c.string(o.namespace, ['defaults', 'namespace'], true) ?? d.namespace;
  if ('identity' in o) d.identity = parseIdentity(c, o.identity, ['defaults', 'identity']) ?? {};
  if ('time' in o) d.timeNs = parseTime(c, o.time, ['defaults', 'time']) ?? null;
  return d;
}

/** A case's identity over the file's: field by field, except that authenticated: false stands alone. */
function mergeIdentity(base: IdentitySpec, over: IdentitySpec | undefined): IdentitySpec {
  if (!over) return base;
  if (over.authenticated === false) return { authenticated: false };
  return { ...base, ...over };
}

function parseCase(c: Checker, v: unknown, index: number, d: Defaults, line: number): Scenario | undefined {
  const path: Path = ['cases', index];
  const o = c.object(v, path, CASE_KEYS);
  if (!o) return undefined;
  const at = (k: string): Path => [...path, k];
  const name = 'name' in o ? c.string(o.name, at('name'), true) : c.fail(path, 'needs a name (shown when the case fails)');
  const request = 'request' in o ? parseRequest(c, o.request, at('request')) : c.fail(path, 'needs a request (e.g. {tool: search_docs, arguments: {query: x}})');
  const expect = 'expect' in o ? parseExpect(c, o.expect, at('expect')) : c.fail(path, 'needs an expect (e.g. {allow: true})');
  const identity = 'identity' in o ? parseIdentity(c, o.identity, at('identity')) : {};
  const server = 'server' in o ? c.string(o.server, at('server'), true) : d.server;
  const namespace = 'namespace' in o ? c.string(o.namespace, at('namespace'), true) : d.namespace;
  const budget = 'budget' in o && o.budget !== null ? parseBudget(c, o.budget, at('budget')) : null;
  const annotations = 'annotations' in o ? parseAnnotations(c, o.annotations, at('annotations')) : null;
  const timeNs = 'time' in o ? parseTime(c, o.time, at('time')) : d.timeNs;
  if (name === undefined || request === undefined || expect === undefined || identity === undefined || server === undefined ||
    namespace === undefined || budget === undefined || annotations === undefined || timeNs === undefined) return undefined;
  return { name, index, line, server, namespace, identity: mergeIdentity(d.identity, identity), request, budget, annotations, timeNs, expect };
}

/** Parses and validates one scenario file; throws ScenarioFormatError listing every problem. */
export function parseScenarioText(text: string, file: string): ScenarioFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new ScenarioFormatError(doc.errors.map((e) => ({
      file, line: lines.linePos(e.pos[0]).line, caseIndex: null, field: null, message: `not valid YAML: ${e.message.split('\n')[0]}`,
    })));
  }
  const lineOf = (path: Path): number | null => {
    for (let p = path; p.length > 0; p = p.slice(0, -1)) {
      const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
      if (node && Array.isArray(node.range)) return lines.linePos(node.range[0]).line;
      // A field that is missing or null has no node of its own: point at the mapping's key instead.
      const parent = doc.getIn(p.slice(0, -1), true) as { items?: Array<{ key?: { value?: unknown; range?: [number, number, number] } }> } | undefined;
      const pair = parent?.items?.find((it) => it.key?.value === p[p.length - 1]);
      if (pair?.key?.range) return lines.linePos(pair.key.range[0]).line;
    }
    return null;
  };
  const c = new Checker(file, lineOf);
  const root: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (root === null || root === undefined) {
    throw new ScenarioFormatError([{ file, line: null, caseIndex: null, field: null, message: 'empty scenario file: expected a mapping with cases: (see docs/policy-authoring.md)' }]);
  }
  const top = c.object(root, [], TOP_KEYS);
  if (!top) throw new ScenarioFormatError(c.problems);

  let entrypoint: EntrypointMode = 'tollgate';
  if ('entrypoint' in top) {
    if (top.entrypoint === 'tollgate' || top.entrypoint === 'envoy') entrypoint = top.entrypoint;
    else c.fail(['entrypoint'], `must be tollgate (data.tollgate.authz.decision) or envoy (data.envoy.authz.allow), not ${typeOf(top.entrypoint)}`);
  }
  if ('description' in top) c.string(top.description, ['description']);
  const defaults = parseDefaults(c, top.defaults);
  const cases: Scenario[] = [];
  if (!('cases' in top)) c.fail([], 'needs cases: a list of {name, request, expect}');
  else if (!Array.isArray(top.cases) || top.cases.length === 0) c.fail(['cases'], `must be a non-empty list of cases, not ${typeOf(top.cases)}`);
  else {
    const seen = new Map<string, number>();
    top.cases.forEach((raw: unknown, i: number) => {
      const s = parseCase(c, raw, i, defaults, lineOf(['cases', i]) ?? 0);
      if (!s) return;
      const first = seen.get(s.name);
      if (first !== undefined) c.fail(['cases', i, 'name'], `"${s.name}" is also the name of case ${first + 1}; names must be unique within a file`);
      else seen.set(s.name, i);
      cases.push(s);
    });
  }
  if (c.problems.length) {
    // In file order, so the list reads top to bottom like the file (sort is stable).
    throw new ScenarioFormatError([...c.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  return { file, entrypoint, cases };
}
