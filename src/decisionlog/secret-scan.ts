/**
 * Credential shapes searched for in caller strings (tool arguments, header values) while a
 * decision record is masked. Hand-written scanners instead of regular expressions: the strings
 * come from callers, and a backtracking engine lets one crafted argument (`"a.a.a…"`, 120k
 * characters) hold the event loop for seconds. Each scanner here looks at every character a
 * bounded number of times, so the cost is linear in the string's length whatever it contains.
 *
 * Each function decides exactly what the regular expression in its comment decides (JavaScript
 * semantics, `\b` = boundary between [A-Za-z0-9_] and anything else); the unit tests check that
 * against the expressions themselves on random short strings.
 */

const enum C {
  Tab = 9, Lf = 10, Vt = 11, Ff = 12, Cr = 13, Space = 32, Plus = 43, Dash = 45, Dot = 46, Slash = 47,
  D0 = 48, D9 = 57, Colon = 58, Eq = 61, At = 64, A = 65, Z = 90, Under = 95, a = 97, z = 122, Tilde = 126,
}

const isUpper = (c: number): boolean => c >= C.A && c <= C.Z;
const isLower = (c: number): boolean => c >= C.a && c <= C.z;
const isDigit = (c: number): boolean => c >= C.D0 && c <= C.D9;
const isLetter = (c: number): boolean => isUpper(c) || isLower(c);
const isAlnum = (c: number): boolean => isLetter(c) || isDigit(c);
/** \w */
const isWord = (c: number): boolean => isAlnum(c) || c === C.Under;
/** [A-Za-z0-9_-]: base64url */
const isB64u = (c: number): boolean => isWord(c) || c === C.Dash;

/** JavaScript's \s (WhiteSpace and LineTerminator). */
export function isSpace(c: number): boolean {
  if (c === C.Space || (c >= C.Tab && c <= C.Cr)) return true;
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** \b before position i, for a match whose first character is a word character. */
function boundaryBefore(s: string, i: number): boolean {
  return i === 0 || !isWord(s.charCodeAt(i - 1));
}

/** True if the `n` characters from `from` all satisfy `ok` (bounded look-ahead). */
function runOf(s: string, from: number, n: number, ok: (c: number) => boolean): boolean {
  if (from + n > s.length) return false;
  for (let k = from; k < from + n; k++) if (!ok(s.charCodeAt(k))) return false;
  return true;
}

/** Index just past the run of `ok` characters starting at `from`. */
function runEnd(s: string, from: number, ok: (c: number) => boolean): number {
  let k = from;
  while (k < s.length && ok(s.charCodeAt(k))) k++;
  return k;
}

/**
 * A literal prefix at a word boundary followed by at least `min` characters of a class: the
 * shape of most vendor API keys. Only `min` characters are looked at per candidate.
 */
function prefixed(s: string, prefix: string, min: number, ok: (c: number) => boolean, after: (s: string, end: number) => boolean = () => true): boolean {
  for (let i = s.indexOf(prefix); i >= 0; i = s.indexOf(prefix, i + 1)) {
    if (boundaryBefore(s, i) && runOf(s, i + prefix.length, min, ok) && after(s, i + prefix.length + min)) return true;
  }
  return false;
}

/** \beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.  (JWT / JWS compact) */
export function hasJwt(s: string): boolean {
  let i = s.indexOf('eyJ');
  while (i >= 0) {
    let next = i + 1;
    if (boundaryBefore(s, i)) {
      const e1 = runEnd(s, i + 3, isB64u);
      if (e1 - (i + 3) >= 8 && s.charCodeAt(e1) === C.Dot) {
        const e2 = runEnd(s, e1 + 1, isB64u);
        if (e2 - (e1 + 1) >= 8 && s.charCodeAt(e2) === C.Dot) return true;
      }
      // Every later candidate inside [i, e1) ends its first segment at the same e1, with fewer
      // characters: it fails the same way. Skipping the run keeps the scan linear.
      next = Math.max(next, e1);
    }
    i = s.indexOf('eyJ', next);
  }
  return false;
}

/** \b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,} */
function hasGithubToken(s: string): boolean {
  for (let i = s.indexOf('gh'); i >= 0; i = s.indexOf('gh', i + 1)) {
    const k = s.charCodeAt(i + 2);
    if ('pousr'.includes(String.fromCharCode(k)) && s.charCodeAt(i + 3) === C.Under && boundaryBefore(s, i) && runOf(s, i + 4, 20, isAlnum)) return true;
  }
  return false;
}

const AWS_PREFIXES = ['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'ANPA'];
const isUpperOrDigit = (c: number): boolean => isUpper(c) || isDigit(c);
const wordEnds = (s: string, end: number): boolean => end >= s.length || !isWord(s.charCodeAt(end));

/** \bxox[abposr]-[A-Za-z0-9-]{10,} */
function hasSlackToken(s: string): boolean {
  for (let i = s.indexOf('xox'); i >= 0; i = s.indexOf('xox', i + 1)) {
    if ('abposr'.includes(s.charAt(i + 3) || '!') && s.charCodeAt(i + 4) === C.Dash && boundaryBefore(s, i) &&
      runOf(s, i + 5, 10, (c) => isAlnum(c) || c === C.Dash)) return true;
  }
  return false;
}

/** \b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,} */
function hasStripeKey(s: string): boolean {
  for (const p of ['sk_', 'rk_', 'pk_']) {
    for (const mode of ['live_', 'test_']) if (prefixed(s, p + mode, 16, isAlnum)) return true;
  }
  return false;
}

const isPemLabel = (c: number): boolean => isUpperOrDigit(c) || c === C.Space;

/**
 * -----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----
 * "PRIVATE KEY" and " BLOCK" lie inside the label's run, and "-----" cannot: the label must end
 * exactly where the run does, so one look at the run's end decides.
 */
export function hasPemPrivateKey(s: string): boolean {
  const open = '-----BEGIN ';
  for (let i = s.indexOf(open); i >= 0; i = s.indexOf(open, i + 1)) {
    const p = i + open.length;
    const r = runEnd(s, p, isPemLabel);
    if (!s.startsWith('-----', r)) continue;
    if ((r - 11 >= p && s.startsWith('PRIVATE KEY', r - 11)) || (r - 17 >= p && s.startsWith('PRIVATE KEY BLOCK', r - 17))) return true;
  }
  return false;
}

const isSchemeChar = (c: number): boolean => isAlnum(c) || c === C.Plus || c === C.Dot || c === C.Dash;

/**
 * \b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@  (case-insensitive; a URL with user:password@)
 * Anchored on each "://": the scheme is read backwards (runs of scheme characters cannot contain
 * ':', so they do not overlap), user and password forwards (they stop at '/', so they end before
 * the next "://").
 */
export function hasUrlPassword(s: string): boolean {
  for (let i = s.indexOf('://'); i >= 0; i = s.indexOf('://', i + 1)) {
    if (!schemeBefore(s, i)) continue;
    let j = i + 3;
    while (j < s.length) {
      const c = s.charCodeAt(j);
      if (isSpace(c) || c === C.Slash || c === C.Colon || c === C.At) break;
      j++;
    }
    if (j === i + 3 || s.charCodeAt(j) !== C.Colon) continue;
    let k = j + 1;
    while (k < s.length) {
      const c = s.charCodeAt(k);
      if (isSpace(c) || c === C.Slash || c === C.At) break;
      k++;
    }
    if (k > j + 1 && s.charCodeAt(k) === C.At) return true;
  }
  return false;
}

/** Whether some start inside the scheme run ending at `colon` is a letter at a word boundary. */
function schemeBefore(s: string, colon: number): boolean {
  let r = colon;
  while (r > 0 && isSchemeChar(s.charCodeAt(r - 1))) r--;
  for (let k = r; k < colon; k++) {
    if (!isLetter(s.charCodeAt(k))) continue;
    // Inside the run a boundary needs a non-word scheme character before it ('+', '.', '-');
    // at the run's start, whatever precedes it must not be a word character ('_').
    if (k === 0 || !isWord(s.charCodeAt(k - 1))) return true;
  }
  return false;
}

const isBearerChar = (c: number): boolean => isAlnum(c) || c === C.Dot || c === C.Under || c === C.Tilde || c === C.Plus || c === C.Slash || c === C.Dash;

/** \bBearer\s+[A-Za-z0-9._~+/-]{16,}  (case-insensitive; a pasted Authorization value) */
export function hasBearer(s: string): boolean {
  const word = 'bearer';
  for (let i = 0; i + word.length < s.length; i++) {
    let k = 0;
    // ASCII case folding: only letters are compared, and `| 0x20` maps A-Z onto a-z.
    while (k < word.length && isLetter(s.charCodeAt(i + k)) && (s.charCodeAt(i + k) | 0x20) === word.charCodeAt(k)) k++;
    if (k < word.length || !boundaryBefore(s, i)) continue;
    const t = runEnd(s, i + word.length, isSpace);
    if (t > i + word.length && runOf(s, t, 16, isBearerChar)) return true;
    // The whitespace run belongs to this candidate only: the next "bearer" starts after it.
    i = Math.max(i, t - 1);
  }
  return false;
}

/** Every credential format with a recognisable shape, searched anywhere in the string. */
export function hasCredentialShape(s: string): boolean {
  return hasJwt(s) ||
    prefixed(s, 'sk-', 16, isB64u) || // OpenAI / Anthropic style API keys
    hasGithubToken(s) ||
    prefixed(s, 'github_pat_', 20, isWord) ||
    prefixed(s, 'glpat-', 20, isB64u) || // GitLab
    AWS_PREFIXES.some((p) => prefixed(s, p, 16, isUpperOrDigit, wordEnds)) || // AWS access key ids
    prefixed(s, 'AIza', 35, isB64u) || // Google API keys
    hasSlackToken(s) ||
    hasStripeKey(s) ||
    hasPemPrivateKey(s) ||
    hasUrlPassword(s) ||
    hasBearer(s);
}

/** [A-Za-z0-9+/=_-]: the alphabets of base64 and base64url. */
export const isTokenChar = (c: number): boolean => isB64u(c) || c === C.Plus || c === C.Slash || c === C.Eq;
export const isHexOrDash = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === C.Dash;
export { isDigit, isLetter };
