import { strict as assert } from 'node:assert';
import { maskInput } from '../../../src/decisionlog/mask.js';
import { hasCredentialShape } from '../../../src/decisionlog/secret-scan.js';
import { isSecretKey, looksLikeSecret } from '../../../src/decisionlog/secrets.js';
import { mulberry32 as rng } from '../../support/prng.js';
import { sampleInput } from './fixtures.js';

/**
 * Issue 10 item 3: secret detection runs in linear time on any input. Two properties:
 *
 * 1. Same verdicts as the regular expressions the scanners replace, on many random short strings
 *    built from the patterns' own fragments (near misses included). The expressions are the
 *    specification; on strings this short they are fast.
 * 2. Bounded time on long adversarial strings: runs of every pattern's prefix, the `a.a.a…`
 *    argument from the report, and mixtures. The old expressions took seconds on several of them
 *    (120k characters of `a.a.a…`: ~14 s); a linear scan takes milliseconds. The bound is loose
 *    (a busy shared machine must not fail it) yet orders of magnitude below the old cost.
 *
 * Cost: ~1-2 s.
 */

/** The expressions secret detection used before, kept here as the reference. */
const REFERENCE: RegExp[] = [
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/,
  /\bsk-[A-Za-z0-9_-]{16,}/,
  /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\bglpat-[A-Za-z0-9_-]{20,}/,
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b/,
  /\bAIza[0-9A-Za-z_-]{35}/,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/,
  /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/,
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----/,
  /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/i,
  /\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*/i,
];
const referenceShape = (s: string): boolean => REFERENCE.some((re) => re.test(s));

const FRAGMENTS = [
  'eyJ', 'sk-', 'sk_', 'rk_', 'pk_', 'live_', 'test_', 'ghp_', 'gho_', 'ghx_', 'github_pat_', 'glpat-', 'AKIA', 'ASIA', 'ANPA', 'AIza',
  'xoxb-', 'xoxz-', '-----BEGIN ', 'RSA ', 'PRIVATE KEY', ' BLOCK', '-----', 'http', 'postgres+ssl', '://', ':', '@', '/', 'Bearer', 'bEaReR',
  ' ', '  ', '\t', '\n', '\u00a0', '\u2003', '.', '-', '_', '+', '~', '=', 'x', 'Z', '0', '9', 'é', 'İ', '\u212a',
];
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomString(next: () => number): string {
  let s = '';
  const parts = 1 + Math.floor(next() * 12);
  for (let p = 0; p < parts; p++) {
    if (next() < 0.55) s += FRAGMENTS[Math.floor(next() * FRAGMENTS.length)];
    else {
      // A run long enough to cross the patterns' minimum lengths sometimes, and sometimes not.
      const len = Math.floor(next() * 40);
      const upper = next() < 0.3;
      for (let k = 0; k < len; k++) {
        const ch = ALNUM[Math.floor(next() * ALNUM.length)]!;
        s += upper ? ch.toUpperCase() : ch;
      }
    }
  }
  return s;
}

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** A plain pass over every character: the cost any linear scan is measured against. */
function linearPass(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * Best of three timings of `fn`, next to the best of three plain passes over `s`. Comparing the
 * two keeps the bound meaningful on a loaded machine, where every timing grows alike. A run
 * that takes seconds (a backtracking engine) is not repeated.
 */
function timedAgainstBaseline(fn: () => void, s: string): { ms: number; base: number } {
  let base = Infinity;
  for (let k = 0; k < 3; k++) base = Math.min(base, timed(() => linearPass(s)));
  let ms = Infinity;
  for (let k = 0, last = 0; k < 3 && last < 2000; k++) {
    last = timed(fn);
    ms = Math.min(ms, last);
  }
  return { ms, base };
}

/** Linear scans cost up to ~200 plain passes (measured); the old expressions ~100,000 (30 s vs 0.3 ms). */
const withinBound = ({ ms, base }: { ms: number; base: number }): boolean => ms < Math.max(25, 1000 * base);

const N = 120_000;
const repeat = (unit: string, n = N): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

/** Long strings that make backtracking expressions (or quadratic scans) take seconds. */
const ADVERSARIAL: Array<[string, string]> = [
  ['a.a.a… (the reported argument)', repeat('a.')],
  ['a run of scheme characters and no "://"', repeat('a')],
  ['"://" after every scheme run, no password', repeat('a+b.c-d://x')],
  ['scheme runs broken by "_"', repeat('a_b://')],
  ['user part with no password', repeat('h://u')],
  ['user:pass with no "@"', repeat('a://u:p')],
  ['eyJ repeated', repeat('eyJ')],
  ['eyJ then long segment, no dot', 'eyJ' + repeat('A')],
  ['eyJ segments without the second dot', repeat('eyJAAAAAAAAA.')],
  ['eyJ with dashes', repeat('eyJ-')],
  ['sk- repeated', repeat('sk-')],
  ['sk- short keys', repeat('sk-abc ')],
  ['ghp_ repeated', repeat('ghp_')],
  ['github_pat_ repeated', repeat('github_pat_')],
  ['AKIA repeated', repeat('AKIA')],
  ['AIza repeated', repeat('AIza')],
  ['xoxb- repeated', repeat('xoxb-')],
  ['sk_live_ repeated', repeat('sk_live_')],
  ['-----BEGIN repeated', repeat('-----BEGIN ')],
  ['-----BEGIN then a long label', '-----BEGIN ' + repeat('A ')],
  ['PRIVATE KEY without the end', repeat('-----BEGIN PRIVATE KEY')],
  ['Bearer then whitespace', 'Bearer' + repeat(' ')],
  ['Bearer repeated', repeat('Bearer ')],
  ['Bearer with short tokens', repeat('Bearer abc ')],
  ['long token-like word', repeat('Ab3+')],
  ['long words separated by spaces', repeat('Zq8xW2vN4kR7tY1uP6sL3mJ9hG5fD0cB ')],
  ['whitespace only', repeat(' \t')],
];

describe('secret detection in linear time (issue 10, masking DoS)', function () {
  this.timeout(60_000);

  it('decides as the replaced regular expressions did, on 20,000 random strings made of their fragments', () => {
    const next = rng(20261204);
    let positives = 0;
    for (let n = 0; n < 20_000; n++) {
      const s = randomString(next);
      const want = referenceShape(s);
      assert.equal(hasCredentialShape(s), want, `case ${n}: ${JSON.stringify(s)} should be ${want}`);
      if (want) positives++;
    }
    // The generator must exercise both verdicts, or the comparison proves little.
    assert.ok(positives > 500 && positives < 19_500, `positives ${positives}`);
  });

  it('still recognises each credential format (one example of each)', () => {
    const examples = [
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', 'key sk-abcdefghijklmnop1234', 'ghp_abcdefghijklmnopqrstuvwx',
      'github_pat_abcdefghijklmnopqrstuv', 'glpat-abcdefghijklmnopqrst', 'AKIAABCDEFGHIJKLMNOP', 'AIzaSyA-1234567890abcdefghijklmnopqrstu',
      'xoxb-1234567890-abc', 'sk_live_abcdefghijklmnop', '-----BEGIN OPENSSH PRIVATE KEY-----', '-----BEGIN PGP PRIVATE KEY BLOCK-----',
      'postgres://admin:hunter2@db:5432/x', 'Authorization: bearer abcdefghijklmnopqrstuvwxyz',
    ];
    for (const e of examples) {
      assert.ok(referenceShape(e), `reference misses ${e}`);
      assert.ok(hasCredentialShape(e), `scanner misses ${e}`);
    }
  });

  for (const [name, s] of ADVERSARIAL) {
    it(`bounded time on ${name} (${s.length} chars)`, () => {
      let verdict = false;
      // Linear: a few ms here (tens of plain passes). The old expressions: 30-60 s on some.
      const t = timedAgainstBaseline(() => { verdict = looksLikeSecret(s); }, s);
      assert.ok(withinBound(t), `looksLikeSecret took ${t.ms.toFixed(1)} ms on ${name} (a plain pass: ${t.base.toFixed(2)} ms)`);
      assert.equal(typeof verdict, 'boolean');
      // A field name of the same size is judged in bounded time too (names are caller data).
      const k = timedAgainstBaseline(() => isSecretKey(s + String(Math.random())), s);
      assert.ok(withinBound(k), `isSecretKey took ${k.ms.toFixed(1)} ms (a plain pass: ${k.base.toFixed(2)} ms)`);
    });
  }

  it('grows linearly: 8× the input costs well under 8²× the time', () => {
    // Summed over every adversarial shape, to average out timer noise.
    const at = (n: number): number => {
      let ms = 0;
      for (const [, s] of ADVERSARIAL) {
        const unit = s.slice(0, Math.min(64, s.length));
        const input = s.length === N ? repeat(unit, n) : s.slice(0, n);
        ms += timed(() => looksLikeSecret(input));
      }
      return ms;
    };
    at(15_000); // warm-up (JIT)
    const small = Math.max(at(15_000), 1);
    const large = at(120_000);
    assert.ok(large / small < 24, `8× input cost ${(large / small).toFixed(1)}× the time (${small.toFixed(1)} → ${large.toFixed(1)} ms)`);
  });

  it('masks a whole input carrying adversarial arguments and headers in bounded time', () => {
    const args = { query: repeat('a.'), note: repeat('eyJ'), url: repeat('a+b.c-d://x'), [repeat('pass_word', 50_000)]: 'x' };
    const input = sampleInput(args);
    input.request.headers['x-trace'] = repeat('Bearer ', 30_000);
    const everything = Object.keys(args).join('') + Object.values(args).join('') + input.request.headers['x-trace'];
    const t = timedAgainstBaseline(() => maskInput(input, [], undefined), everything);
    // Every argument appears three times in the input (mcp.arguments, params, parsed_body).
    assert.ok(t.ms < Math.max(100, 3 * 1000 * t.base), `masking took ${t.ms.toFixed(0)} ms (a plain pass: ${t.base.toFixed(2)} ms)`);
  });
});
