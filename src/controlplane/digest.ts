import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

/**
 * File digests as OPA computes them for bundle signatures, so that `opa` itself can verify what we
 * sign and we can verify what an OPA bundle server signs.
 *
 * OPA hashes most files as raw bytes, but the structured ones (data.json, data.yaml, .manifest) are
 * parsed and re-serialised first — objects with keys in byte order, no whitespace, strings escaped
 * as Go's encoding/json does without HTML escaping, numbers exactly as written — so the signature
 * does not depend on formatting.
 */

export type DigestAlgorithm = 'SHA-256' | 'SHA-384' | 'SHA-512';

/** Digest algorithms we accept in a signature. OPA also knows MD5 and SHA-1; we refuse those as too weak. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'SHA-384', 'SHA-512'];

const NODE_HASH: Record<DigestAlgorithm, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

export function isDigestAlgorithm(s: unknown): s is DigestAlgorithm {
  return typeof s === 'string' && (DIGEST_ALGORITHMS as readonly string[]).includes(s);
}

function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** Whether OPA hashes this bundle path in canonical-JSON form rather than as bytes. */
export function isStructuredFile(path: string): boolean {
  const b = baseName(path);
  return b === 'data.json' || b === 'data.yaml' || b === '.manifest';
}

/** Hex digest of one bundle file, as it appears in `.signatures.json`. */
export function fileDigest(path: string, body: Buffer, algorithm: DigestAlgorithm = 'SHA-256'): string {
  const h = createHash(NODE_HASH[algorithm]);
  if (!isStructuredFile(path)) {
    h.update(body);
  } else if (baseName(path) === 'data.yaml') {
    h.update(canonicalYaml(body, path), 'utf8');
  } else {
    h.update(canonicalJson(body.toString('utf8'), path), 'utf8');
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Canonical form. A JSON value is parsed into this tree; numbers keep their literal text because
// OPA decodes with json.Number, so `1.50` and `1.5` hash differently, and big integers stay exact.

type Canon =
  | { t: 'num'; text: string }
  | { t: 'str'; value: string }
  | { t: 'lit'; text: 'true' | 'false' | 'null' }
  | { t: 'arr'; items: Canon[] }
  | { t: 'obj'; entries: Map<string, Canon> };

/** The canonical serialisation OPA hashes, from JSON text. Throws with the file name on bad JSON. */
export function canonicalJson(text: string, path = 'document'): string {
  const p = new JsonParser(text, path);
  return serialise(p.document());
}

function canonicalYaml(body: Buffer, path: string): string {
  let value: unknown;
  try {
    value = parseYaml(body.toString('utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid YAML: ${(e as Error).message}`);
  }
  return serialise(fromValue(value, path));
}

function fromValue(v: unknown, path: string): Canon {
  if (v === null || v === undefined) return { t: 'lit', text: 'null' };
  if (v === true || v === false) return { t: 'lit', text: v ? 'true' : 'false' };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${path}: ${v} cannot be represented in JSON`);
    return { t: 'num', text: JSON.stringify(v) };
  }
  if (typeof v === 'string') return { t: 'str', value: v };
  if (Array.isArray(v)) return { t: 'arr', items: v.map((x) => fromValue(x, path)) };
  if (typeof v === 'object') {
    const entries = new Map<string, Canon>();
    for (const [k, x] of Object.entries(v)) entries.set(k, fromValue(x, path));
    return { t: 'obj', entries };
  }
  throw new Error(`${path}: unsupported YAML value of type ${typeof v}`);
}

function compareUtf8(a: string, b: string): number {
  // Go sorts keys as UTF-8 byte strings; JS's default sort compares UTF-16 units, which orders
  // characters above U+FFFF differently.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function serialise(c: Canon): string {
  switch (c.t) {
    case 'num':
    case 'lit':
      return c.text;
    case 'str':
      return goString(c.value);
    case 'arr':
      return '[' + c.items.map(serialise).join(',') + ']';
    case 'obj': {
      const keys = [...c.entries.keys()].sort(compareUtf8);
      return '{' + keys.map((k) => goString(k) + ':' + serialise(c.entries.get(k)!)).join(',') + '}';
    }
  }
}

const SHORT_ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

/** A JSON string as Go's encoder writes it with SetEscapeHTML(false). */
function goString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (c < 0x20) out += '\\u00' + c.toString(16).padStart(2, '0');
    // Go escapes these two because JavaScript source cannot hold them raw inside string literals.
    else if (c === 0x2028 || c === 0x2029) out += '\\u' + c.toString(16);
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) {
      out += s[i]! + s[i + 1]!;
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\ufffd'; // Go decodes a lone surrogate as U+FFFD
    else out += s[i]!;
  }
  return out + '"';
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** A strict RFC 8259 parser that keeps number literals verbatim. */
class JsonParser {
  private i = 0;
  constructor(private readonly s: string, private readonly path: string) {}

  document(): Canon {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected data after the JSON value');
    return v;
  }

  private fail(what: string): never {
    const before = this.s.slice(0, this.i);
    const line = before.split('\n').length;
    const col = this.i - before.lastIndexOf('\n');
    throw new Error(`${this.path}: not valid JSON at line ${line} column ${col}: ${what}`);
  }

  private ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  private value(depth: number): Canon {
    if (depth > 10000) this.fail('nesting too deep');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { t: 'str', value: this.string() };
    for (const lit of ['true', 'false', 'null'] as const) {
      if (this.s.startsWith(lit, this.i)) {
        this.i += lit.length;
        return { t: 'lit', text: lit };
      }
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  }

  private object(depth: number): Canon {
    this.i++;
    const entries = new Map<string, Canon>();
    this.ws();
    if (this.s[this.i] === '}') { this.i++; return { t: 'obj', entries }; }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const k = this.string();
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.ws();
      // Go keeps the last of duplicate keys; Map.set does the same.
      entries.set(k, this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return { t: 'obj', entries };
      if (c !== ',') { this.i--; this.fail('expected "," or "}"'); }
    }
  }

  private array(depth: number): Canon {
    this.i++;
    const items: Canon[] = [];
    this.ws();
    if (this.s[this.i] === ']') { this.i++; return { t: 'arr', items }; }
    for (;;) {
      this.ws();
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return { t: 'arr', items };
      if (c !== ',') { this.i--; this.fail('expected "," or "]"'); }
    }
  }

  private number(): Canon {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 1024));
    if (!m) this.fail('malformed number');
    this.i += m[0].length;
    return { t: 'num', text: m[0] };
  }

  private string(): string {
    this.i++;
    let out = '';
    for (;;) {
      const start = this.i;
      while (this.i < this.s.length) {
        const c = this.s.charCodeAt(this.i);
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        this.i++;
      }
      out += this.s.slice(start, this.i);
      const c = this.s[this.i];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') { this.i++; return out; }
      if (c !== '\\') this.fail('control character in string');
      const e = this.s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = this.s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default:
          this.i -= 1;
          this.fail('bad escape');
      }
    }
  }
}
