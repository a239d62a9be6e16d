import { isIPv4, isIPv6 } from 'node:net';
import type { HostBuiltin } from './builtin-context.js';
import { stringArg, stringsArg } from './builtin-args.js';

/** String, encoding and network helpers OPA implements in Go and the WASM module does not. */

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function hexDecode(s: unknown): string {
  const v = stringArg(s, 1);
  if (!HEX.test(v)) throw new Error(`invalid hex string "${v}"`);
  return Buffer.from(v, 'hex').toString('utf8');
}

/** Go's url.QueryEscape: unreserved characters stay, space becomes "+", the rest %XX. */
function queryEscape(s: unknown): string {
  let out = '';
  for (const byte of Buffer.from(stringArg(s, 1), 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Go's url.QueryUnescape: "+" is a space and a malformed escape is an error. */
function queryUnescape(s: unknown): string {
  const v = stringArg(s, 1);
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '%') {
      const h = v.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new Error(`invalid URL escape "${v.slice(i, i + 3)}"`);
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (c === '+') {
      bytes.push(0x20);
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function anyAffix(suffix: boolean): HostBuiltin {
  return (search, base) => {
    const strs = stringsArg(search, 1);
    const bases = stringsArg(base, 2);
    return strs.some((s) => bases.some((b) => (suffix ? s.endsWith(b) : s.startsWith(b))));
  };
}

/** Go's strings.Count: non-overlapping matches; an empty substring matches between code points. */
function stringCount(s: unknown, sub: unknown): number {
  const str = stringArg(s, 1);
  const needle = stringArg(sub, 2);
  if (needle === '') return [...str].length + 1;
  let n = 0;
  for (let i = str.indexOf(needle); i >= 0; i = str.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** indexof_n: every (overlapping) match, as code point offsets. */
function indexOfN(s: unknown, sub: unknown): number[] {
  const base = [...stringArg(s, 1)];
  const needle = [...stringArg(sub, 2)];
  if (needle.length === 0) throw new Error('empty search character');
  const out: number[] = [];
  for (let i = 0; i + needle.length <= base.length; i++) {
    let hit = true;
    for (let j = 0; j < needle.length && hit; j++) hit = base[i + j] === needle[j];
    if (hit) out.push(i);
  }
  return out;
}

/** net.cidr_is_valid: an IPv4 or IPv6 address with a prefix length in range. */
function cidrIsValid(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const bits = Number(m[2]);
  if (isIPv4(m[1]!)) return bits <= 32;
  if (isIPv6(m[1]!)) return bits <= 128;
  return false;
}

export function textBuiltins(): Record<string, HostBuiltin> {
  return {
    'hex.encode': (s) => Buffer.from(stringArg(s, 1), 'utf8').toString('hex'),
    'hex.decode': hexDecode,
    'base64url.encode_no_pad': (s) => Buffer.from(stringArg(s, 1), 'utf8').toString('base64url'),
    'urlquery.encode': queryEscape,
    'urlquery.decode': queryUnescape,
    'strings.any_prefix_match': anyAffix(false),
    'strings.any_suffix_match': anyAffix(true),
    'strings.count': stringCount,
    indexof_n: indexOfN,
    'net.cidr_is_valid': cidrIsValid,
    // trace only feeds OPA's tracer, which a WASM evaluation does not have.
    trace: (note) => { stringArg(note, 1); return true; },
  };
}
