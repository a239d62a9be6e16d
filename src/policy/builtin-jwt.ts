import { X509Certificate, constants, createHmac, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { EvalContext, HostBuiltin } from './builtin-context.js';
import { objectArg, stringArg } from './builtin-args.js';

/**
 * io.jwt.* builtins, synchronous on node:crypto, following OPA's topdown/tokens.go: the same
 * structural checks, the same key selection (kid first, then every key whose alg allows it) and
 * the same constraint rules for decode_verify.
 */

type Json = Record<string, unknown>;

interface Token {
  header: string;
  payload: string;
  signature: string;
  decodedHeader: Json;
}

interface VerificationKey {
  alg: string;
  kid: string;
  /** Public key, or raw bytes of a symmetric ("oct") JWK. */
  key: KeyObject | Buffer;
}

const KNOWN_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA']);
const HASH_OF: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Base64url as Go's URLEncoding with padding added: strict alphabet, no impossible lengths. */
function b64url(s: string, what: string): Buffer {
  const bare = s.replace(/=+$/, '');
  if (!B64URL.test(s) || bare.length % 4 === 1) throw new Error(`${what} had invalid encoding: illegal base64 data`);
  return Buffer.from(bare, 'base64url');
}

function jsonObject(text: string, what: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: decoded JSON type was not an Object`);
  return v as Json;
}

function splitToken(v: unknown): Omit<Token, 'decodedHeader'> {
  const s = stringArg(v, 1);
  if (!s.includes('.')) throw new Error('encoded JWT had no period separators');
  const parts = s.split('.');
  if (parts.length !== 3) throw new Error(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0]!, payload: parts[1]!, signature: parts[2]! };
}

function decodeToken(v: unknown): Token {
  const t = splitToken(v);
  const decodedHeader = jsonObject(b64url(t.header, 'JWT header').toString('utf8'), 'bad JWT header');
  if ('enc' in decodedHeader) throw new Error('JWT is a JWE object, which is not supported');
  return { ...t, decodedHeader };
}

interface Header {
  alg: string;
  kid: string;
  cty: string;
  crit: Set<string>;
  unknown: string[];
}

function parseHeader(h: Json): Header {
  const out: Header = { alg: '', kid: '', cty: '', crit: new Set(), unknown: [] };
  for (const [k, v] of Object.entries(h)) {
    if (k === 'alg' || k === 'kid' || k === 'typ' || k === 'cty') {
      if (typeof v !== 'string') throw new Error(`${k}: must be a string`);
      if (k !== 'typ') out[k] = v;
    } else if (k === 'crit') {
      if (!Array.isArray(v)) throw new Error('crit: must be a list');
      if (v.length === 0) throw new Error('crit: must be a nonempty list');
      for (const c of v) {
        if (typeof c !== 'string') throw new Error('crit: must be a list of strings');
        out.crit.add(c);
      }
    } else {
      out.unknown.push(k);
    }
  }
  return out;
}

/** RFC 7515: alg is required, and an unrecognised header named in crit invalidates the token. */
function headerValid(h: Header): boolean {
  return h.alg !== '' && !h.unknown.some((u) => h.crit.has(u));
}

function decode(v: unknown): unknown[] {
  const t = decodeToken(v);
  let payloadText = b64url(t.payload, 'JWT payload').toString('utf8');
  if (t.decodedHeader.cty === 'JWT') {
    // A nested token is often quoted (as jwt.io writes it).
    payloadText = payloadText.replace(/^["']+|["']+$/g, '');
    return decode(payloadText);
  }
  const payload = jsonObject(payloadText, 'JWT payload');
  const sig = b64url(t.signature, 'JWT signature').toString('hex');
  return [t.decodedHeader, payload, sig];
}

const keyCache = new Map<string, VerificationKey[]>();

function jwkKey(jwk: Json): VerificationKey | null {
  const alg = typeof jwk.alg === 'string' ? jwk.alg : '';
  if (alg !== '' && !KNOWN_ALGS.has(alg)) return null;
  const kid = typeof jwk.kid === 'string' ? jwk.kid : '';
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string') throw new Error('failed to parse a JWK key (set): oct key without "k"');
    return { alg, kid, key: b64url(jwk.k, 'JWK "k"') };
  }
  return { alg, kid, key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }) };
}

function parseKeys(material: string): VerificationKey[] {
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/.exec(material);
  if (pem) {
    if (material.slice(pem.index + pem[0].length).trim() !== '') throw new Error('extra data after a PEM certificate block');
    if (pem[1] === 'CERTIFICATE') return [{ alg: '', kid: '', key: new X509Certificate(pem[0]).publicKey }];
    if (pem[1] === 'PUBLIC KEY') return [{ alg: '', kid: '', key: createPublicKey({ key: pem[0], format: 'pem' }) }];
    throw new Error('failed to extract a Key from the PEM certificate');
  }
  const doc = jsonObject(material, 'failed to parse a JWK key (set)');
  const list = Array.isArray(doc.keys) ? doc.keys : [doc];
  const keys: VerificationKey[] = [];
  for (const k of list) {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new Error('failed to parse a JWK key (set): a key is not an object');
    const parsed = jwkKey(k as Json);
    if (parsed) keys.push(parsed);
  }
  return keys;
}

/** Parsing a JWKS or certificate is costly and policies verify against a handful, so keep some. */
function keysFor(material: string): VerificationKey[] {
  const hit = keyCache.get(material);
  if (hit) return hit;
  const keys = parseKeys(material);
  if (keyCache.size >= 32) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(material, keys);
  return keys;
}

type PssSalt = 'digest' | 'auto';

/** Verifies one JWS signature; any mismatch of algorithm and key type is a failed verification. */
function verifySignature(alg: string, key: KeyObject | Buffer, data: Buffer, sig: Buffer, pss: PssSalt = 'digest'): boolean {
  try {
    const family = alg.slice(0, 2);
    const hash = HASH_OF[alg.slice(2)];
    if (alg === 'EdDSA') return !Buffer.isBuffer(key) && key.asymmetricKeyType === 'ed25519' && verify(null, data, key, sig);
    if (!hash) return false;
    if (family === 'HS') {
      if (!Buffer.isBuffer(key)) return false;
      const mac = createHmac(hash, key).update(data).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    if (Buffer.isBuffer(key)) return false;
    const type = key.asymmetricKeyType;
    if (family === 'RS' && type === 'rsa') return verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
    if (family === 'PS' && (type === 'rsa' || type === 'rsa-pss')) {
      const saltLength = pss === 'digest' ? constants.RSA_PSS_SALTLEN_DIGEST : constants.RSA_PSS_SALTLEN_AUTO;
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
    }
    if (family === 'ES' && type === 'ec') return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    return false;
  } catch {
    return false;
  }
}

/** io.jwt.verify_<alg>(token, certificate): the algorithm comes from the builtin, not the token. */
function verifyWith(alg: string, pss: PssSalt): HostBuiltin {
  return (jwt, material) => {
    const t = decodeToken(jwt);
    const keys = keysFor(stringArg(material, 2));
    const sig = b64url(t.signature, 'JWT signature');
    const header = parseHeader(t.decodedHeader);
    const data = Buffer.from(`${t.header}.${t.payload}`);
    if (header.kid !== '') {
      const byKid = keys.find((k) => k.kid === header.kid);
      if (byKid) return verifySignature(alg, byKid.key, data, sig, pss);
    }
    for (const k of keys) {
      if (k.alg !== '' && k.alg !== header.alg) continue;
      if (verifySignature(alg, k.key, data, sig, pss)) return true;
    }
    return false;
  };
}

function verifyHmac(alg: string): HostBuiltin {
  return (jwt, secret) => {
    const t = splitToken(jwt);
    const key = Buffer.from(stringArg(secret, 2), 'utf8');
    return verifySignature(alg, key, Buffer.from(`${t.header}.${t.payload}`), b64url(t.signature, 'JWT signature'));
  };
}

interface Constraints {
  keys: VerificationKey[] | null;
  secret: string;
  alg: string;
  iss: string;
  aud: string;
  timeNs: number;
}

function constraintString(name: string, v: unknown): string {
  if (typeof v !== 'string') throw new Error(`${name} constraint: must be a string`);
  return v;
}

function parseConstraints(o: Json, ctx: EvalContext): Constraints {
  const c: Constraints = { keys: null, secret: '', alg: '', iss: '', aud: '', timeNs: -1 };
  for (const [name, v] of Object.entries(o)) {
    switch (name) {
      case 'cert': c.keys = keysFor(constraintString('cert', v)); break;
      case 'secret': c.secret = constraintString('secret', v); break;
      case 'alg': c.alg = constraintString('alg', v); break;
      case 'iss': c.iss = constraintString('iss', v); break;
      case 'aud': c.aud = constraintString('aud', v); break;
      case 'time':
        if (typeof v !== 'number') throw new Error('token time constraint: must be a number');
        if (v < 0) throw new Error('token time constraint: must not be negative');
        c.timeNs = v;
        break;
      default: throw new Error(`unknown token validation constraint: ${name}`);
    }
  }
  const keyKinds = (c.keys ? 1 : 0) + (c.secret !== '' ? 1 : 0);
  if (keyKinds > 1) throw new Error('duplicate key constraints');
  if (keyKinds < 1) throw new Error('no key constraint');
  if (c.timeNs === -1) c.timeNs = Number(ctx.nowNs());
  return c;
}

function constraintsVerify(c: Constraints, h: Header, t: Token): boolean {
  const data = Buffer.from(`${t.header}.${t.payload}`);
  const sig = b64url(t.signature, 'JWT signature');
  if (c.keys) {
    if (h.kid !== '') {
      const byKid = c.keys.find((k) => k.kid === h.kid);
      if (byKid) return verifySignature(h.alg, byKid.key, data, sig);
    }
    return c.keys.some((k) => (k.alg === '' || k.alg === h.alg) && verifySignature(h.alg, k.key, data, sig));
  }
  return verifySignature(h.alg, Buffer.from(c.secret, 'utf8'), data, sig);
}

function validAudience(aud: unknown, want: string): boolean {
  if (typeof aud === 'string') return aud === want;
  return Array.isArray(aud) && aud.some((a) => typeof a === 'string' && a === want);
}

/** io.jwt.decode_verify(token, constraints) → [valid, header, payload]. */
function decodeVerify(ctx: EvalContext): HostBuiltin {
  return (jwt, constraintsArg) => {
    const c = parseConstraints(objectArg(constraintsArg, 2), ctx);
    const unverified = [false, {}, {}];
    let current: unknown = jwt;
    let token: Token;
    let payloadText: string;
    for (;;) {
      token = decodeToken(current);
      const header = parseHeader(token.decodedHeader);
      if (!headerValid(header)) return unverified;
      if (c.alg !== '' && c.alg !== header.alg) return unverified;
      if (!constraintsVerify(c, header, token)) return unverified;
      payloadText = b64url(token.payload, 'JWT payload').toString('utf8');
      if (header.cty.toLowerCase() !== 'jwt') break;
      current = payloadText;
    }
    const payload = jsonObject(payloadText, 'JWT payload');
    if (c.iss !== '' && payload.iss !== c.iss) return unverified;
    if ('aud' in payload) {
      if (!validAudience(payload.aud, c.aud)) return unverified;
    } else if (c.aud !== '') {
      return unverified;
    }
    const nowSeconds = c.timeNs / 1e9;
    if ('exp' in payload) {
      if (typeof payload.exp !== 'number') throw new Error('exp value must be a number');
      if (nowSeconds >= payload.exp) return unverified;
    }
    if ('nbf' in payload) {
      if (typeof payload.nbf !== 'number') throw new Error('nbf value must be a number');
      if (nowSeconds < payload.nbf) return unverified;
    }
    return [true, token.decodedHeader, payload];
  };
}

export function jwtBuiltins(ctx: EvalContext): Record<string, HostBuiltin> {
  const out: Record<string, HostBuiltin> = {
    'io.jwt.decode': (jwt) => decode(jwt),
    'io.jwt.decode_verify': decodeVerify(ctx),
    'io.jwt.verify_eddsa': verifyWith('EdDSA', 'digest'),
  };
  for (const bits of ['256', '384', '512']) {
    out[`io.jwt.verify_rs${bits}`] = verifyWith(`RS${bits}`, 'digest');
    out[`io.jwt.verify_ps${bits}`] = verifyWith(`PS${bits}`, 'auto');
    out[`io.jwt.verify_es${bits}`] = verifyWith(`ES${bits}`, 'digest');
    out[`io.jwt.verify_hs${bits}`] = verifyHmac(`HS${bits}`);
  }
  return out;
}

