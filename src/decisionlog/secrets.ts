/**
 * The safe default of masking: recognise what is probably a credential, by the name of the field
 * that holds it or by the look of the value. False positives cost a reviewer one "***"; a false
 * negative puts a live credential into a log that is replicated and kept for years, so the
 * heuristics lean towards masking.
 */

/** Field names are compared lower-cased with separators removed: "API-Key", "api_key", "apiKey" → "apikey". */
function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
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
    // Field names repeat from call to call; the cache is bounded so hostile names cannot grow it.
    if (keyVerdicts.size >= 4096) keyVerdicts.clear();
    keyVerdicts.set(key, v);
  }
  return v;
}

const keyVerdicts = new Map<string, boolean>();

function judgeKey(key: string): boolean {
  const k = normaliseKey(key);
  if (k.length === 0) return false;
  if (SECRET_KEY_EXACT.has(k)) return true;
  if (k.endsWith('token') || k.endsWith('tokenvalue')) return true;
  for (const part of SECRET_KEY_PARTS) if (k.includes(part)) return true;
  return false;
}

/** Credential formats with a recognisable shape (searched anywhere in the string). */
const SECRET_VALUE_PATTERNS: RegExp[] = [
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/, // JWT / JWS compact
  /\bsk-[A-Za-z0-9_-]{16,}/, // OpenAI / Anthropic style API keys
  /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\bglpat-[A-Za-z0-9_-]{20,}/, // GitLab
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b/, // AWS access key ids
  /\bAIza[0-9A-Za-z_-]{35}/, // Google API keys
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/, // Slack
  /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/, // Stripe
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----/, // PEM / PGP private keys
  /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/i, // URL with user:password@
  /\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*/i, // a pasted Authorization value
];

/** Base64/base64url-ish tokens: no spaces or dots (file names, hosts), at least 32 characters. */
const TOKEN_LIKE = /^[A-Za-z0-9+/=_-]{32,}$/;

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
  for (const re of SECRET_VALUE_PATTERNS) if (re.test(value)) return true;
  if (value.length < 32) return false;
  if (!/\s/.test(value)) return randomToken(value);
  for (const word of value.split(/\s+/)) if (word.length >= 32 && randomToken(word)) return true;
  return false;
}

function randomToken(word: string): boolean {
  if (word.length > 4096 || word.startsWith('/') || !TOKEN_LIKE.test(word) || !/[0-9]/.test(word) || !/[A-Za-z]/.test(word)) return false;
  if (/^[0-9a-f-]+$/i.test(word)) return false; // hex digests, UUIDs
  return entropy(word) >= 4.2;
}
