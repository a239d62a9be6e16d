import type { PolicyInput } from '../contract/policy.js';
import { formatPointer, maskPathTokens, parsePointer, type PointerTokens } from './pointer.js';
import { isSecretKey, looksLikeSecret } from './secrets.js';
import { CREDENTIAL_HEADERS } from '../util/credentials.js';

/**
 * Masking of what goes into a decision record. Three sources, applied in this order:
 *
 * 1. `data.system.log.mask` with OPA's semantics: a string is a JSON pointer to erase; an object
 *    `{op: "remove"|"upsert", path, value}` removes or sets a field. Erased pointers are listed in
 *    `erased`, upserted ones in `masked`. Pointers must start with /input or /result; pointers to
 *    fields that do not exist are ignored (and not listed).
 * 2. The decision's own `mask` list (pointers or dotted paths): each existing field is replaced
 *    by "***" and listed in `masked`.
 * 3. The safe default: credentials in headers are erased, and in tool arguments (and every other
 *    copy of the JSON-RPC params the input carries) values under secret-looking names or with
 *    secret-looking content are replaced by "***" and listed in `masked`.
 *
 * Nothing here mutates its argument: the request path still holds the input. Containers on the
 * way to a changed field are copied; everything else is shared with the original.
 */

export type MaskRule = string | { op: 'remove' | 'upsert'; path: string; value?: unknown };

export interface MaskOutcome<T> {
  value: T;
  erased: string[];
  masked: string[];
}

export const MASK_REPLACEMENT = '***';

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** A canonical array index ("0", "17", not "01" or "1e3") within bounds, else -1. */
function arrayIndex(token: string, arr: unknown[]): number {
  if (token.length === 0 || token.length > 15 || (token.length > 1 && token.charCodeAt(0) === 48)) return -1;
  for (let k = 0; k < token.length; k++) {
    const c = token.charCodeAt(k);
    if (c < 48 || c > 57) return -1;
  }
  const i = Number(token);
  return i < arr.length ? i : -1;
}

/** A document edited copy-on-write: only containers on the path to an edit are cloned. */
class CowDocument {
  private readonly copies = new Set<object>();
  readonly root: Record<string, unknown>;

  constructor(original: Record<string, unknown>) {
    this.root = { ...original };
    this.copies.add(this.root);
  }

  get(tokens: PointerTokens): { found: boolean; value: unknown } {
    let cur: unknown = this.root;
    for (const t of tokens) {
      if (Array.isArray(cur)) {
        const i = arrayIndex(t, cur);
        if (i < 0) return { found: false, value: undefined };
        cur = cur[i];
      } else if (isContainer(cur) && Object.prototype.hasOwnProperty.call(cur, t)) {
        cur = (cur as Record<string, unknown>)[t];
      } else {
        return { found: false, value: undefined };
      }
    }
    return { found: true, value: cur };
  }

  private own(v: Container): Container {
    if (this.copies.has(v)) return v;
    const copy = Array.isArray(v) ? v.slice() : { ...v };
    this.copies.add(copy);
    return copy;
  }

  /** The writable container holding the last token, cloning on the way; null if the path is absent. */
  private parentOf(tokens: PointerTokens, create: boolean): Container | null {
    let cur: Container = this.root;
    for (let k = 0; k < tokens.length - 1; k++) {
      const t = tokens[k]!;
      if (Array.isArray(cur)) {
        const i = arrayIndex(t, cur);
        if (i < 0) return null;
        const child: unknown = cur[i];
        if (!isContainer(child)) return null;
        cur = cur[i] = this.own(child);
      } else {
        const child: unknown = cur[t];
        if (isContainer(child)) {
          cur = cur[t] = this.own(child);
        } else if (child === undefined && create) {
          const fresh: Record<string, unknown> = {};
          this.copies.add(fresh);
          cur = cur[t] = fresh;
        } else {
          return null;
        }
      }
    }
    return cur;
  }

  erase(tokens: PointerTokens): boolean {
    if (tokens.length === 0 || !this.get(tokens).found) return false;
    const parent = this.parentOf(tokens, false);
    if (!parent) return false;
    const last = tokens[tokens.length - 1]!;
    if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent), 1);
    else delete parent[last];
    return true;
  }

  /** Sets a field; with create, missing objects on the way are made (OPA's upsert). */
  set(tokens: PointerTokens, value: unknown, create: boolean): boolean {
    if (tokens.length === 0) return false;
    if (!create && !this.get(tokens).found) return false;
    const parent = this.parentOf(tokens, create);
    if (!parent) return false;
    const last = tokens[tokens.length - 1]!;
    if (Array.isArray(parent)) {
      const i = arrayIndex(last, parent);
      if (i < 0) return false;
      parent[i] = value;
    } else {
      parent[last] = value;
    }
    return true;
  }
}

/** Normalises a `system.log.mask` result (a set arrives as an array; a single rule is accepted). */
export function parseMaskRules(raw: unknown): MaskRule[] {
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  const rules: MaskRule[] = [];
  for (const r of list) {
    if (typeof r === 'string') rules.push(r);
    else if (isContainer(r) && !Array.isArray(r)) {
      const o = r as Record<string, unknown>;
      if ((o.op === 'remove' || o.op === 'upsert') && typeof o.path === 'string') {
        rules.push({ op: o.op, path: o.path, value: o.value });
      }
    }
  }
  return rules;
}

class Recorder {
  readonly erased: string[] = [];
  readonly masked: string[] = [];
  private readonly seen = new Set<string>();
  add(list: 'erased' | 'masked', tokens: PointerTokens): void {
    const p = formatPointer(tokens);
    const key = list + p;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this[list].push(p);
  }
}

function validRoot(tokens: PointerTokens): boolean {
  return tokens.length > 1 && (tokens[0] === 'input' || tokens[0] === 'result');
}

function applyRule(doc: CowDocument, rec: Recorder, rule: MaskRule, targets: (t: PointerTokens) => PointerTokens[]): void {
  let tokens: PointerTokens;
  try {
    tokens = parsePointer(typeof rule === 'string' ? rule : rule.path);
  } catch {
    return;
  }
  if (!validRoot(tokens)) return;
  for (const t of targets(tokens)) {
    if (typeof rule === 'string' || rule.op === 'remove') {
      if (doc.erase(t)) rec.add('erased', t);
    } else if (doc.set(t, rule.value, t === tokens)) {
      rec.add('masked', t);
    }
  }
}

/**
 * OPA decision-log masking on an event document (`{input, result, ...}`): pure, copy-on-write.
 * `rules` is the raw `system.log.mask` result or a list of rules.
 */
export function applyMasks<T extends Record<string, unknown>>(event: T, rules: unknown): MaskOutcome<T> {
  const doc = new CowDocument(event);
  const rec = new Recorder();
  for (const rule of parseMaskRules(rules)) applyRule(doc, rec, rule, (t) => [t]);
  return { value: doc.root as T, erased: rec.erased, masked: rec.masked };
}

export interface InputMaskerOptions {
  /** The safe default (secret-looking names and values in arguments). Default true. */
  detectSecrets?: boolean;
  /** Header names always erased (lower-case). */
  eraseHeaders?: string[];
}

/** Redacts an input for the log without touching the original (authz's Masker is this type). */
export type InputMasker = (input: PolicyInput, decisionMask: string[], policyMask: unknown) => { input: PolicyInput; erased: string[]; masked: string[] };

export const DEFAULT_ERASED_HEADERS = [...CREDENTIAL_HEADERS, 'set-cookie'];

const HEADER_ROOTS: PointerTokens[] = [
  ['input', 'request', 'headers'],
  ['input', 'attributes', 'request', 'http', 'headers'],
];
/**
 * The raw request body duplicates parsed_body but cannot be masked field by field: as a string
 * (`body`) or, when Envoy packs it as bytes, base64 (`rawBody`), as opa-envoy-plugin writes it.
 */
const RAW_BODIES: PointerTokens[] = [
  ['input', 'attributes', 'request', 'http', 'body'],
  ['input', 'attributes', 'request', 'http', 'rawBody'],
];

/**
 * Tool arguments appear in the input three times: input.mcp.arguments, input.mcp.params.arguments
 * and inside input.parsed_body (the JSON-RPC message, or the batch array). A mask on the first
 * must hide the others too, or the secret is still in the record.
 */
function argumentMirrors(doc: CowDocument, tokens: PointerTokens): PointerTokens[] {
  if (!(tokens[0] === 'input' && tokens[1] === 'mcp' && tokens[2] === 'arguments')) return [tokens];
  const rest = tokens.slice(3);
  const out = [tokens, ['input', 'mcp', 'params', 'arguments', ...rest]];
  const body = doc.get(['input', 'parsed_body']).value;
  if (Array.isArray(body)) {
    const index = doc.get(['input', 'mcp', 'batch', 'index']).value;
    if (typeof index === 'number') out.push(['input', 'parsed_body', String(index), 'params', 'arguments', ...rest]);
  } else {
    out.push(['input', 'parsed_body', 'params', 'arguments', ...rest]);
  }
  return out;
}

/** Relative paths of secret-looking values under `value`; memoised per object within one call. */
function findSecrets(value: unknown, memo: Map<object, PointerTokens[]>): PointerTokens[] {
  if (typeof value === 'string') return looksLikeSecret(value) ? [[]] : [];
  if (!isContainer(value)) return [];
  const cached = memo.get(value);
  if (cached) return cached;
  const found: PointerTokens[] = [];
  const visit = (key: string, child: unknown): void => {
    if (!Array.isArray(value) && isSecretKey(key) && child !== null && child !== undefined && typeof child !== 'boolean' && child !== MASK_REPLACEMENT) {
      found.push([key]);
      return;
    }
    for (const sub of findSecrets(child, memo)) found.push([key, ...sub]);
  };
  if (Array.isArray(value)) value.forEach((c, i) => visit(String(i), c));
  else for (const k of Object.keys(value)) visit(k, (value as Record<string, unknown>)[k]);
  memo.set(value, found);
  return found;
}

export function createInputMasker(opts: InputMaskerOptions = {}): InputMasker {
  const detect = opts.detectSecrets ?? true;
  const eraseHeaders = new Set((opts.eraseHeaders ?? DEFAULT_ERASED_HEADERS).map((h) => h.toLowerCase()));

  return (input, decisionMask, policyMask) => {
    const doc = new CowDocument({ input });
    const rec = new Recorder();
    const mirrors = (t: PointerTokens): PointerTokens[] => argumentMirrors(doc, t);

    for (const rule of parseMaskRules(policyMask)) {
      if (typeof rule !== 'string' && !rule.path.startsWith('/input')) continue;
      if (typeof rule === 'string' && !rule.startsWith('/input')) continue;
      applyRule(doc, rec, rule, mirrors);
    }

    for (const path of decisionMask) {
      const tokens = maskPathTokens(path);
      if (tokens[0] !== 'input' || tokens.length < 2) continue;
      for (const t of mirrors(tokens)) if (doc.set(t, MASK_REPLACEMENT, false)) rec.add('masked', t);
    }

    // Authz passes one headers object as both request.headers and attributes' headers: judged once.
    const headerVerdicts = new Map<object, Array<[string, 'erase' | 'mask']>>();
    for (const root of HEADER_ROOTS) {
      const headers = doc.get(root).value;
      if (!isContainer(headers) || Array.isArray(headers)) continue;
      let verdicts = headerVerdicts.get(headers);
      if (!verdicts) {
        verdicts = [];
        for (const name of Object.keys(headers)) {
          if (eraseHeaders.has(name.toLowerCase())) verdicts.push([name, 'erase']);
          else if (detect && (isSecretKey(name) || looksLikeSecret(String(headers[name])))) verdicts.push([name, 'mask']);
        }
        headerVerdicts.set(headers, verdicts);
      }
      for (const [name, verdict] of verdicts) {
        const t = [...root, name];
        if (verdict === 'erase') {
          if (doc.erase(t)) rec.add('erased', t);
        } else if (doc.set(t, MASK_REPLACEMENT, false)) {
          rec.add('masked', t);
        }
      }
    }
    for (const raw of RAW_BODIES) if (doc.erase(raw)) rec.add('erased', raw);

    if (detect) {
      const memo = new Map<object, PointerTokens[]>();
      const scanRoots: PointerTokens[] = [['input', 'mcp', 'arguments'], ['input', 'mcp', 'params']];
      const body = doc.get(['input', 'parsed_body']).value;
      const index = doc.get(['input', 'mcp', 'batch', 'index']).value;
      if (Array.isArray(body) && typeof index === 'number') {
        // Each element of a batch has its own record, masked by its own decision: here, only
        // this record's element is kept and the others' params are hidden.
        body.forEach((_, j) => {
          if (j === index) return;
          const t = ['input', 'parsed_body', String(j), 'params'];
          if (doc.set(t, MASK_REPLACEMENT, false)) rec.add('masked', t);
        });
        scanRoots.push(['input', 'parsed_body', String(index)]);
      } else {
        scanRoots.push(['input', 'parsed_body']);
      }
      for (const root of scanRoots) {
        const { found, value } = doc.get(root);
        if (!found) continue;
        for (const rel of findSecrets(value, memo)) {
          const t = [...root, ...rel];
          if (doc.set(t, MASK_REPLACEMENT, false)) rec.add('masked', t);
        }
      }
    }

    return { input: doc.root.input as PolicyInput, erased: rec.erased, masked: rec.masked };
  };
}

/** The masker authz uses by default. */
export const maskInput: InputMasker = createInputMasker();
