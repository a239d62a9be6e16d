import { createHash } from 'node:crypto';
import { parseYaml } from '../util/yaml-lazy.js';

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
    h.update(canonicalJsonBytes(body.toString('utf8'), path));
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Canonical form. Numbers keep their literal text because OPA decodes with json.Number, so `1.50`
// and `1.5` hash differently, and big integers stay exact.
//
// JSON is canonicalised straight into a byte buffer as it is parsed, with no tree and no string
// per value: authz verifies a bundle's data.json on its event loop at every policy swap, and the
// tree-and-strings version spent 150 ms (mostly garbage collection) on a 2 MB document.

/** The canonical serialisation OPA hashes, from JSON text. Throws with the file name on bad JSON. */
export function canonicalJson(text: string, path = 'document'): string {
  return canonicalJsonBytes(text, path).toString('utf8');
}

/** The same as UTF-8 bytes, which is what gets hashed. */
function canonicalJsonBytes(text: string, path: string): Buffer {
  return new JsonCanonicaliser(text, path).document();
}

function canonicalYaml(body: Buffer, path: string): string {
  let value: unknown;
  try {
    value = parseYaml(body.toString('utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid YAML: ${(e as Error).message}`);
  }
  return fromValue(value, path);
}

function fromValue(v: unknown, path: string): string {
  if (v === null || v === undefined) return 'null';
  if (v === true || v === false) return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${path}: ${v} cannot be represented in JSON`);
    return JSON.stringify(v);
  }
  if (typeof v === 'string') return goString(v);
  if (Array.isArray(v)) return '[' + v.map((x) => fromValue(x, path)).join(',') + ']';
  if (typeof v === 'object') {
    const entries = new Map<string, string>();
    for (const [k, x] of Object.entries(v)) entries.set(k, fromValue(x, path));
    return serialiseObject(entries);
  }
  throw new Error(`${path}: unsupported YAML value of type ${typeof v}`);
}

/** Matches UTF-16 surrogates: only keys holding one can sort differently as UTF-8 bytes. */
const SURROGATE = /[\ud800-\udfff]/;

function compareUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareUtf8(a: string, b: string): number {
  // Go sorts keys as UTF-8 byte strings; JS's default sort compares UTF-16 units, which orders
  // characters above U+FFFF differently.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Go's key order. Without surrogates UTF-16 unit order is code point order, which is UTF-8 byte
 * order: plain string comparison gives it without encoding every key on every comparison.
 */
function keyOrder(keys: readonly string[]): (a: string, b: string) => number {
  return keys.some((k) => SURROGATE.test(k)) ? compareUtf8 : compareUnits;
}

/** An object from its keys and their members' canonical text (the YAML path). */
function serialiseObject(entries: Map<string, string>): string {
  const keys = [...entries.keys()];
  keys.sort(keyOrder(keys));
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ',';
    out += goString(keys[i]!) + ':' + entries.get(keys[i]!)!;
  }
  return out + '}';
}

const SHORT_ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

/** Whether goString must rewrite any character of s; most strings are copied as they are. */
function needsEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/** A JSON string as Go's encoder writes it with SetEscapeHTML(false). */
function goString(s: string): string {
  if (!needsEscape(s)) return '"' + s + '"';
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

const LITERALS = ['true', 'false', 'null'] as const;

/** Number literals as RFC 8259 writes them; sticky, so it matches in place without slicing. */
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Of source positions sorted by key (equal keys in source order), the ones Go keeps: the last
 * value of each key, at the place of the key's first occurrence, as a Map fed in source order
 * gives. Distinct keys only compare equal when lone surrogates encode to the same bytes.
 */
function dropDuplicates(order: number[], keys: string[], compare: (a: string, b: string) => number): number[] {
  let duplicates = false;
  for (let n = 1; n < order.length && !duplicates; n++) duplicates = compare(keys[order[n - 1]!]!, keys[order[n]!]!) === 0;
  if (!duplicates) return order;
  const kept: number[] = [];
  for (let n = 0; n < order.length;) {
    let end = n + 1;
    while (end < order.length && compare(keys[order[n]!]!, keys[order[end]!]!) === 0) end++;
    const last = new Map<string, number>();
    for (let r = n; r < end; r++) last.set(keys[order[r]!]!, order[r]!);
    kept.push(...last.values());
    n = end;
  }
  return kept;
}

/** Copies from[start, end) to to[at...], returning the end position; members are mostly short. */
function copyBytes(from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  // Buffer.copy has a fixed cost that dominates below a few dozen bytes; a loop has none.
  if (end - start > 64) return at + from.copy(to, at, start, end);
  for (let k = start; k < end; k++) to[at++] = from[k]!;
  return at;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * A strict RFC 8259 parser that writes the canonical form as it goes. An object's members are
 * written in source order, each remembered as a byte span; when the object closes, out-of-order
 * or duplicate members are rewritten in place, sorted, keeping the last of each key as Go does.
 */
class JsonCanonicaliser {
  private i = 0;
  private out: Buffer;
  private pos = 0;
  /** Where an object's members wait while they are put in order (objects close one at a time). */
  private scratch = Buffer.alloc(0);

  constructor(private readonly s: string, private readonly path: string) {
    this.out = Buffer.allocUnsafe(Math.max(64, s.length + 16));
  }

  document(): Buffer {
    this.ws();
    this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected data after the JSON value');
    return this.out.subarray(0, this.pos);
  }

  private fail(what: string): never {
    const before = this.s.slice(0, this.i);
    const line = before.split('\n').length;
    const col = this.i - before.lastIndexOf('\n');
    throw new Error(`${this.path}: not valid JSON at line ${line} column ${col}: ${what}`);
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + bytes));
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.out[this.pos++] = b;
  }

  /** Appends text that is already canonical (UTF-8 needs at most 3 bytes per UTF-16 unit). */
  private text(t: string): void {
    this.ensure(t.length * 3);
    const out = this.out;
    const start = this.pos;
    // Short ASCII text, the usual token, is copied here: cheaper than a call into Buffer.write.
    if (t.length <= 32) {
      let p = start;
      for (let k = 0; k < t.length; k++) {
        const c = t.charCodeAt(k);
        if (c >= 0x80) {
          p = -1;
          break;
        }
        out[p++] = c;
      }
      if (p >= 0) {
        this.pos = p;
        return;
      }
    }
    this.pos = start + out.write(t, start, 'utf8');
  }

  private ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  private value(depth: number): void {
    if (depth > 10000) this.fail('nesting too deep');
    const c = this.s.charCodeAt(this.i);
    if (c === OPEN_BRACE) return this.object(depth);
    if (c === OPEN_BRACKET) return this.array(depth);
    if (c === QUOTE) {
      this.stringValue();
      return;
    }
    for (const lit of LITERALS) {
      if (this.s.startsWith(lit, this.i)) {
        this.i += lit.length;
        this.text(lit);
        return;
      }
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number(); // - or a digit
    this.fail(Number.isNaN(c) ? 'unexpected end of input' : `unexpected character ${JSON.stringify(this.s[this.i])}`);
  }

  private object(depth: number): void {
    this.i++;
    this.byte(OPEN_BRACE);
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      this.byte(CLOSE_BRACE);
      return;
    }
    const keys: string[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      starts.push(this.pos);
      keys.push(this.stringValue());
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.byte(COLON);
      this.ws();
      this.value(depth + 1);
      ends.push(this.pos);
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') break;
      if (c !== ',') { this.i--; this.fail('expected "," or "}"'); }
      this.byte(COMMA);
    }
    this.sortMembers(keys, starts, ends);
    this.byte(CLOSE_BRACE);
  }

  /** Puts the members just written into key order, dropping all but the last of a duplicate key. */
  private sortMembers(keys: string[], starts: number[], ends: number[]): void {
    const compare = keyOrder(keys);
    let ordered = true;
    for (let k = 1; k < keys.length && ordered; k++) ordered = compare(keys[k - 1]!, keys[k]!) < 0;
    if (ordered) return;
    // The sort is stable, so equal keys stay in source order.
    const order = keys.map((_, idx) => idx).sort((a, b) => compare(keys[a]!, keys[b]!));
    const kept = dropDuplicates(order, keys, compare);
    const base = starts[0]!;
    const length = this.pos - base;
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2));
    copyBytes(this.out, base, this.pos, this.scratch, 0);
    this.pos = base;
    for (let n = 0; n < kept.length; n++) {
      const idx = kept[n]!;
      if (n > 0) this.out[this.pos++] = COMMA;
      this.pos = copyBytes(this.scratch, starts[idx]! - base, ends[idx]! - base, this.out, this.pos);
    }
  }

  private array(depth: number): void {
    this.i++;
    this.byte(OPEN_BRACKET);
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      this.byte(CLOSE_BRACKET);
      return;
    }
    for (;;) {
      this.ws();
      this.value(depth + 1);
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') break;
      if (c !== ',') { this.i--; this.fail('expected "," or "]"'); }
      this.byte(COMMA);
    }
    this.byte(CLOSE_BRACKET);
  }

  private number(): void {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) this.fail('malformed number');
    this.i += m[0].length;
    this.text(m[0]);
  }

  /**
   * Writes a string's canonical text and returns its decoded value. Most strings hold nothing Go
   * would write differently, and then the source text between and including the quotes is the
   * canonical text already.
   */
  private stringValue(): string {
    const s = this.s;
    const open = this.i;
    for (let j = open + 1; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === QUOTE) {
        this.i = j + 1;
        this.text(s.slice(open, j + 1));
        return s.slice(open + 1, j);
      }
      if (c === 0x5c || c < 0x20 || c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff)) break;
    }
    const value = this.string();
    this.text(goString(value));
    return value;
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
