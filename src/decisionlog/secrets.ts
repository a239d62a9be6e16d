/**
 * The safe default of masking: recognise what is probably a credential, by the name of the field
 * that holds it or by the look of the value. False positives cost a reviewer one "***"; a false
 * negative puts a live credential into a log that is replicated and kept for years, so the
 * heuristics lean towards masking.
 *
 * Everything here runs in time linear in its input (see secret-scan.ts for why that matters).
 */

import { hasCredentialShape, isDigit, isHexOrDash, isLetter, isSpace, isTokenChar } from './secret-scan.js';

/**
 * Field names are compared lower-cased with separators removed: "API-Key", "api_key", "apiKey" →
 * "apikey". A loop, not a regular expression: names are chosen by callers.
 */
function normaliseKey(key: string): string {
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 45 || c === 95 || c === 46 || isSpace(c)) continue; // - _ . whitespace
    out += key[i];
  }
  return out.toLowerCase();
}

const SECRET_KEY_EXACT = new Set([
  'pwd', 'pass', 'pin', 'otp', 'cookie', 'setcookie', 'auth', 'dsn', 'connectionstring', 'sessionid', 'sessiontoken',
  'signature', 'sig', 'mfacode', 'totp',
]);

/** Substrings that make a field name secret wherever they occur. */
const SECRET_KEY_PARTS = ['password', 'passwd', 'passphrase', 'secret', 'credential', 'authorization', 'privatekey', 'apikey', 'accesskey', 'signingkey', 'encryptionkey', 'masterkey', 'clientkey'];

/**
 * True for names such as password, db_passwd, client_secret, access_token, refresh-token,
 * apiKey, AWS_ACCESS_KEY_ID, private_key, Authorization, credentials. Names that merely mention
 * tokens as a quantity (max_tokens, token_count) are not secrets.
 */
export function isSecretKey(key: string): boolean {
  let v = keyVerdicts.get(key);
  if (v === undefined) {
    v = judgeKey(key);
    // Field names repeat from call to call; the cache is bounded in entries and in name length
    // so hostile names cannot grow it.
    if (key.length <= MAX_CACHED_KEY) {
      if (keyVerdicts.size >= 4096) keyVerdicts.clear();
      keyVerdicts.set(key, v);
    }
  }
  return v;
}

const keyVerdicts = new Map<string, boolean>();
const MAX_CACHED_KEY = 256;

/**
 * Names the MCP protocol itself gives to correlation handles, which end like secrets but are not:
 * `_meta.progressToken` ties progress notifications to their request, and a reviewer needs it to
 * follow them. Their values are still judged by looksLikeSecret like any other.
 */
const PROTOCOL_HANDLES = new Set(['progresstoken']);

function judgeKey(key: string): boolean {
  const k = normaliseKey(key);
  if (k.length === 0 || PROTOCOL_HANDLES.has(k)) return false;
  if (SECRET_KEY_EXACT.has(k)) return true;
  if (k.endsWith('token') || k.endsWith('tokenvalue')) return true;
  for (const part of SECRET_KEY_PARTS) if (k.includes(part)) return true;
  return false;
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * True when a string looks like a credential: a known token format, a PEM private key, a URL
 * with a password, or a long random-looking token (≥ 32 characters from a base64/hex alphabet,
 * mixing letters and digits, entropy ≥ 4.2 bits/char — random base64 scores ~4.7-5.5, English
 * identifiers and file paths stay below). UUIDs and hex digests (≤ 4 bits/char) are not masked
 * by value; name the field (e.g. `api_key`) or mask it in policy if such a value is secret.
 */
export function looksLikeSecret(value: string): boolean {
  if (value.length < 16) return false;
  if (hasCredentialShape(value)) return true;
  if (value.length < 32) return false;
  // Each whitespace-separated word of 32+ characters is judged on its own (one pass, no split).
  let i = 0;
  while (i < value.length) {
    while (i < value.length && isSpace(value.charCodeAt(i))) i++;
    const start = i;
    while (i < value.length && !isSpace(value.charCodeAt(i))) i++;
    if (i - start >= 32 && randomToken(value, start, i)) return true;
  }
  return false;
}

/** Whether value[start, end) is a long random-looking token; at most 4096 characters are examined. */
function randomToken(value: string, start: number, end: number): boolean {
  if (end - start > 4096 || value.charCodeAt(start) === 47 /* '/' */) return false;
  let digit = false;
  let letter = false;
  let hexOnly = true;
  for (let k = start; k < end; k++) {
    const c = value.charCodeAt(k);
    if (!isTokenChar(c)) return false;
    digit ||= isDigit(c);
    letter ||= isLetter(c);
    hexOnly &&= isHexOrDash(c);
  }
  if (!digit || !letter || hexOnly) return false; // hex digests, UUIDs
  return entropy(value.slice(start, end)) >= 4.2;
}
