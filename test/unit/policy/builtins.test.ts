import { strict as assert } from 'node:assert';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, type JWTPayload } from 'jose';
import { readBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { HOST_BUILTIN_NAMES } from '../../../src/policy/builtins.js';
import { TOLLGATE_BUILTIN_DECLS } from '../../../src/policy/builtin-sql.js';
import { WASM_NATIVE_BUILTINS } from '../../../src/policy/builtin-support.js';
import { loadPolicy, type WasmPolicy } from '../../../src/policy/engine.js';
import { runOpa } from '../../../src/policy/opa-cli.js';
import { cleanupDirs, policyDir } from './fixtures.js';

const TOLLGATE_OWN = new Set(TOLLGATE_BUILTIN_DECLS.map((d) => d.name));

/*
 * Every host builtin is checked the same way: one policy calls it, compiled to WASM and evaluated
 * by the engine, and the same policy evaluated by OPA itself (`opa eval`, Go). The results must be
 * identical, including which calls are undefined because the builtin failed.
 */

const NOW_NS = 1795000000000000000; // 2026-11-18T11:06:40Z, exactly representable as a double
const NOW_S = NOW_NS / 1e9;

const CASES: Record<string, string> = {
  // crypto
  sha256: 'crypto.sha256(input.text)',
  sha1: 'crypto.sha1(input.text)',
  md5: 'crypto.md5(input.text)',
  hmac_sha256: 'crypto.hmac.sha256(input.text, "k3y")',
  hmac_sha512: 'crypto.hmac.sha512(input.text, "k3y")',
  hmac_sha1: 'crypto.hmac.sha1(input.text, "k3y")',
  hmac_md5: 'crypto.hmac.md5(input.text, "k3y")',
  hmac_equal_yes: 'crypto.hmac.equal("abc", "abc")',
  hmac_equal_no: 'crypto.hmac.equal("abc", "abd")',
  // encodings and strings
  hex_encode: 'hex.encode(input.text)',
  hex_decode: 'hex.decode("68656c6c6f20c3bc")',
  hex_decode_bad: 'hex.decode("zz")',
  hex_decode_odd: 'hex.decode("abc")',
  urlquery_encode: 'urlquery.encode("a b&c=d/é~*!()\'")',
  urlquery_decode: 'urlquery.decode("a+b%26c%3Dd%2F%C3%A9")',
  urlquery_decode_bad: 'urlquery.decode("%zz")',
  b64url_no_pad: 'base64url.encode_no_pad("hello?>")',
  any_prefix: 'strings.any_prefix_match("foobar", ["x", "foo"])',
  any_prefix_set: 'strings.any_prefix_match({"a/b", "c/d"}, "c/")',
  any_prefix_no: 'strings.any_prefix_match(["a", "b"], "c")',
  any_suffix: 'strings.any_suffix_match("report.csv", {".json", ".csv"})',
  count_e: 'strings.count("cheese", "e")',
  count_overlap: 'strings.count("aaaa", "aa")',
  count_empty: 'strings.count("héllo", "")',
  indexof_n: 'indexof_n("sea sells seashells", "se")',
  indexof_n_overlap: 'indexof_n("aaaa", "aa")',
  indexof_n_unicode: 'indexof_n("ünï ü cödé ü", "ü")',
  indexof_n_empty: 'indexof_n("abc", "")',
  cidr_valid_v4: 'net.cidr_is_valid("10.0.0.0/8")',
  cidr_valid_v6: 'net.cidr_is_valid("2001:db8::/32")',
  cidr_bad_prefix: 'net.cidr_is_valid("10.0.0.0/33")',
  cidr_no_prefix: 'net.cidr_is_valid("10.0.0.0")',
  cidr_garbage: 'net.cidr_is_valid("not a cidr")',
  trace: 'trace("note")',
  // time
  rfc3339_utc: 'time.parse_rfc3339_ns("2026-11-23T10:00:00Z")',
  rfc3339_offset_frac: 'time.parse_rfc3339_ns("2026-11-23T10:00:00.123456789+05:30")',
  rfc3339_exact: 'time.parse_rfc3339_ns("2026-11-18T08:26:40.123456789Z") == 1795000000123456789',
  rfc3339_before_epoch: 'time.parse_rfc3339_ns("1969-12-31T23:59:59.5Z")',
  rfc3339_leap_day: 'time.parse_rfc3339_ns("2024-02-29T00:00:00-08:00")',
  rfc3339_bad_day: 'time.parse_rfc3339_ns("2026-02-29T00:00:00Z")',
  rfc3339_not_a_time: 'time.parse_rfc3339_ns("yesterday")',
  duration_hm: 'time.parse_duration_ns("1h30m")',
  duration_frac: 'time.parse_duration_ns("1.5s")',
  duration_neg: 'time.parse_duration_ns("-2m3.25s")',
  duration_units: 'time.parse_duration_ns("1h2m3s4ms5us6ns")',
  duration_micro: 'time.parse_duration_ns("7µs")',
  duration_days: 'time.parse_duration_ns("1d12h")',
  duration_weeks_years: 'time.parse_duration_ns("2w1y")',
  duration_zero: 'time.parse_duration_ns("0")',
  duration_bad: 'time.parse_duration_ns("soon")',
  duration_no_unit: 'time.parse_duration_ns("15")',
  date_utc: 'time.date(input.now)',
  clock_utc: 'time.clock(input.now)',
  weekday_utc: 'time.weekday(input.now)',
  date_ny: 'time.date([input.now, "America/New_York"])',
  clock_kolkata: 'time.clock([input.now, "Asia/Kolkata"])',
  weekday_tokyo: 'time.weekday([input.now + 54000000000000, "Asia/Tokyo"])',
  clock_empty_tz: 'time.clock([input.now, ""])',
  date_bad_tz: 'time.date([input.now, "Mars/Olympus"])',
  date_before_epoch: 'time.date(-86400000000000)',
  weekday_epoch: 'time.weekday(0)',
  add_month_overflow: 'time.add_date(time.parse_rfc3339_ns("2026-01-31T12:00:00Z"), 0, 1, 0)',
  add_mixed: 'time.add_date(input.now, 1, -13, 400)',
  // JWT
  jwt_decode: 'io.jwt.decode(input.tokens.rs256)',
  jwt_decode_not_a_token: 'io.jwt.decode("abc")',
  jwt_decode_two_parts: 'io.jwt.decode("a.b")',
  verify_rs256_pem: 'io.jwt.verify_rs256(input.tokens.rs256, input.keys.rsa_pem)',
  verify_rs256_other_key: 'io.jwt.verify_rs256(input.tokens.rs256, input.keys.rsa_other_pem)',
  verify_rs256_jwks_kid: 'io.jwt.verify_rs256(input.tokens.rs256, input.keys.jwks)',
  verify_rs256_es_token: 'io.jwt.verify_rs256(input.tokens.es256, input.keys.rsa_pem)',
  verify_rs384: 'io.jwt.verify_rs384(input.tokens.rs384, input.keys.rsa_pem)',
  verify_rs512: 'io.jwt.verify_rs512(input.tokens.rs512, input.keys.rsa_pem)',
  verify_ps256: 'io.jwt.verify_ps256(input.tokens.ps256, input.keys.rsa_pem)',
  verify_ps384: 'io.jwt.verify_ps384(input.tokens.ps384, input.keys.rsa_pem)',
  verify_ps512: 'io.jwt.verify_ps512(input.tokens.ps512, input.keys.rsa_pem)',
  verify_ps256_wrong_hash: 'io.jwt.verify_ps256(input.tokens.ps512, input.keys.rsa_pem)',
  verify_es256: 'io.jwt.verify_es256(input.tokens.es256, input.keys.ec256_pem)',
  verify_es256_jwks: 'io.jwt.verify_es256(input.tokens.es256, input.keys.jwks)',
  verify_es384: 'io.jwt.verify_es384(input.tokens.es384, input.keys.ec384_pem)',
  verify_es512: 'io.jwt.verify_es512(input.tokens.es512, input.keys.ec521_pem)',
  verify_eddsa: 'io.jwt.verify_eddsa(input.tokens.eddsa, input.keys.ed_pem)',
  verify_hs256: 'io.jwt.verify_hs256(input.tokens.hs256, "s3cret")',
  verify_hs256_wrong: 'io.jwt.verify_hs256(input.tokens.hs256, "guess")',
  verify_hs384: 'io.jwt.verify_hs384(input.tokens.hs384, "s3cret")',
  verify_hs512: 'io.jwt.verify_hs512(input.tokens.hs512, "s3cret")',
  verify_hs512_as_256: 'io.jwt.verify_hs256(input.tokens.hs512, "s3cret")',
  verify_bad_key: 'io.jwt.verify_rs256(input.tokens.rs256, "not a key")',
  dv_valid: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.jwks, "iss": "https://idp.example", "aud": "mcp", "time": input.now})',
  dv_pem_alg: 'io.jwt.decode_verify(input.tokens.es256, {"cert": input.keys.ec256_pem, "alg": "ES256", "aud": "mcp", "time": input.now})',
  dv_alg_mismatch: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.jwks, "alg": "RS512", "aud": "mcp", "time": input.now})',
  dv_wrong_aud: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.jwks, "aud": "other", "time": input.now})',
  dv_aud_not_asked: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.jwks, "time": input.now})',
  dv_wrong_iss: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.jwks, "iss": "https://evil", "aud": "mcp", "time": input.now})',
  dv_expired: 'io.jwt.decode_verify(input.tokens.expired, {"aud": "mcp", "cert": input.keys.rsa_pem, "time": input.now})',
  dv_not_yet: 'io.jwt.decode_verify(input.tokens.not_yet, {"aud": "mcp", "cert": input.keys.rsa_pem, "time": input.now})',
  dv_later_valid: 'io.jwt.decode_verify(input.tokens.not_yet, {"cert": input.keys.rsa_pem, "aud": "mcp", "time": input.now + 1200000000000})',
  dv_secret: 'io.jwt.decode_verify(input.tokens.hs256, {"aud": "mcp", "secret": "s3cret", "time": input.now})',
  dv_eddsa: 'io.jwt.decode_verify(input.tokens.eddsa, {"aud": "mcp", "cert": input.keys.ed_pem, "time": input.now})',
  dv_alg_confusion: 'io.jwt.decode_verify(input.tokens.confused, {"aud": "mcp", "cert": input.keys.rsa_pem, "time": input.now})',
  dv_other_key: 'io.jwt.decode_verify(input.tokens.rs256, {"cert": input.keys.rsa_other_pem, "aud": "mcp", "time": input.now})',
  dv_no_key: 'io.jwt.decode_verify(input.tokens.rs256, {"time": input.now})',
  dv_two_keys: 'io.jwt.decode_verify(input.tokens.hs256, {"secret": "s3cret", "cert": input.keys.rsa_pem})',
  dv_unknown_constraint: 'io.jwt.decode_verify(input.tokens.hs256, {"secret": "s3cret", "leeway": 5})',
  dv_crit_unknown: 'io.jwt.decode_verify(input.tokens.crit, {"aud": "mcp", "secret": "s3cret", "time": input.now})',
  // natively compiled ones the brief asked about
  native_regex_match: 'regex.match(`^cus_[0-9]+$`, "cus_1001")',
  native_cidr_contains: 'net.cidr_contains("10.0.0.0/8", "10.20.30.40")',
};

function policySource(): string {
  const lines = ['package tollgate.authz', '', 'decision := {"allow": true}', ''];
  for (const [name, expr] of Object.entries(CASES)) lines.push(`results["${name}"] := ${expr}`, '');
  return lines.join('\n');
}

async function sign(payload: JWTPayload, header: { alg: string; kid?: string; crit?: string[]; [k: string]: unknown }, key: KeyObject | Uint8Array): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

/** An HS256 token with any header at all (jose rightly refuses to sign an unknown crit). */
function rawHs256(header: object, payload: object, secret: string): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function pem(k: KeyObject): string {
  return k.export({ type: 'spki', format: 'pem' }).toString();
}

async function material(): Promise<{ keys: Record<string, string>; tokens: Record<string, string> }> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const ed = generateKeyPairSync('ed25519');
  const secret = new TextEncoder().encode('s3cret');
  const claims = { iss: 'https://idp.example', aud: 'mcp', sub: 'alice', exp: NOW_S + 3600, iat: NOW_S - 60 };
  const jwks = {
    keys: [
      { ...(await exportJWK(rsaOther.publicKey)), kid: 'old', alg: 'RS256' },
      { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256' },
      { ...(await exportJWK(ec256.publicKey)), kid: 'e1' },
    ],
  };
  const rsaPem = pem(rsa.publicKey);
  return {
    keys: { rsa_pem: rsaPem, rsa_other_pem: pem(rsaOther.publicKey), ec256_pem: pem(ec256.publicKey), ec384_pem: pem(ec384.publicKey), ec521_pem: pem(ec521.publicKey), ed_pem: pem(ed.publicKey), jwks: JSON.stringify(jwks) },
    tokens: {
      rs256: await sign(claims, { alg: 'RS256', kid: 'k1', typ: 'JWT' }, rsa.privateKey),
      rs384: await sign(claims, { alg: 'RS384' }, rsa.privateKey),
      rs512: await sign(claims, { alg: 'RS512' }, rsa.privateKey),
      ps256: await sign(claims, { alg: 'PS256' }, rsa.privateKey),
      ps384: await sign(claims, { alg: 'PS384' }, rsa.privateKey),
      ps512: await sign(claims, { alg: 'PS512' }, rsa.privateKey),
      es512: await sign(claims, { alg: 'ES512' }, ec521.privateKey),
      hs384: await sign(claims, { alg: 'HS384' }, secret),
      es256: await sign(claims, { alg: 'ES256', kid: 'e1' }, ec256.privateKey),
      es384: await sign(claims, { alg: 'ES384' }, ec384.privateKey),
      eddsa: await sign(claims, { alg: 'EdDSA' }, ed.privateKey),
      hs256: await sign(claims, { alg: 'HS256' }, secret),
      hs512: await sign(claims, { alg: 'HS512' }, secret),
      expired: await sign({ ...claims, exp: NOW_S - 10 }, { alg: 'RS256' }, rsa.privateKey),
      not_yet: await sign({ ...claims, nbf: NOW_S + 600 }, { alg: 'RS256' }, rsa.privateKey),
      // HS256 keyed with the RSA public key text: the classic algorithm confusion attack.
      confused: await sign(claims, { alg: 'HS256' }, new TextEncoder().encode(rsaPem)),
      crit: rawHs256({ alg: 'HS256', crit: ['exp-ext'], 'exp-ext': 1 }, claims, 's3cret'),
    },
  };
}

describe('host builtins, against OPA itself', function () {
  this.timeout(60_000);
  let policy: WasmPolicy;
  let input: Record<string, unknown>;
  let expected: Record<string, unknown>;
  let actual: Record<string, unknown>;

  before(async () => {
    const dir = policyDir({ 'p.rego': policySource() });
    const m = await material();
    input = { text: 'hello ü wörld', now: NOW_NS, ...m };
    writeFileSync(join(dir, 'input.json.txt'), JSON.stringify(input));
    const run = await runOpa(['eval', '-b', '.', '-i', 'input.json.txt', '--format', 'json', 'data.tollgate.authz.results'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const doc = JSON.parse(run.stdout) as { result: Array<{ expressions: Array<{ value: Record<string, unknown> }> }> };
    expected = doc.result[0]!.expressions[0]!.value;
    policy = await loadPolicy(await readBundle(await buildPolicyBundle(dir, { entrypoints: ['tollgate/authz/decision', 'tollgate/authz/results'] })));
    const r = policy.evaluateEntrypoint('tollgate/authz/results', input);
    assert.ok(r.ok && r.defined, JSON.stringify(r));
    actual = r.value as Record<string, unknown>;
  });
  after(cleanupDirs);

  for (const name of Object.keys(CASES)) {
    it(`${name}: ${CASES[name]}`, () => {
      assert.deepEqual(actual[name], expected[name]);
    });
  }

  it('covers each builtin Tollgate supplies', () => {
    const used = new Set(Object.values(CASES).flatMap((e) => [...e.matchAll(/([a-z_][\w.]*)\(/g)].map((m) => m[1]!)));
    const untested = HOST_BUILTIN_NAMES.filter((b) => !used.has(b) && !TOLLGATE_OWN.has(b));
    // time.now_ns cannot be compared with a separate process; it has its own tests below.
    // Tollgate's own builtins (tollgate.*) have no OPA counterpart: sql-builtin.test.ts.
    assert.deepEqual(untested, ['time.now_ns']);
  });

  it('agrees with OPA on which calls are undefined', () => {
    const undef = Object.keys(CASES).filter((k) => !(k in expected));
    assert.ok(undef.includes('dv_no_key') && undef.includes('hex_decode_bad') && undef.includes('date_bad_tz'), undef.join(', '));
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  });

  it('uses tokens and keys that really verify, and really fail (so agreement means something)', () => {
    const valid = (k: string): unknown => (expected[k] as unknown[])[0];
    for (const k of ['dv_valid', 'dv_pem_alg', 'dv_later_valid', 'dv_secret', 'dv_eddsa']) assert.equal(valid(k), true, k);
    for (const k of ['dv_alg_mismatch', 'dv_wrong_aud', 'dv_aud_not_asked', 'dv_wrong_iss', 'dv_expired', 'dv_not_yet', 'dv_alg_confusion', 'dv_other_key', 'dv_crit_unknown']) assert.equal(valid(k), false, k);
    for (const k of Object.keys(CASES).filter((c) => /^verify_/.test(c))) {
      const shouldPass = !/(other_key|es_token|wrong|bad_key|as_256)/.test(k);
      if (k === 'verify_bad_key') continue;
      assert.equal(expected[k], shouldPass, k);
    }
    assert.deepEqual((expected.dv_valid as unknown[])[2], { iss: 'https://idp.example', aud: 'mcp', sub: 'alice', exp: NOW_S + 3600, iat: NOW_S - 60 });
  });
});

describe('host builtins: evaluation time', () => {
  after(cleanupDirs);
  let policy: WasmPolicy;

  before(async () => {
    const dir = policyDir({ 'p.rego': [
      'package tollgate.authz', '',
      'a := time.now_ns()', '', 'b := time.now_ns()', '',
      'decision := {"allow": a == b, "reasons": [], "exact": a == input.expect, "jwt_valid": v} if {',
      '\t[v, _, _] := io.jwt.decode_verify(input.token, {"secret": "s3cret"})', '}', '',
    ].join('\n') });
    policy = await loadPolicy(await readBundle(await buildPolicyBundle(dir, { entrypoints: ['tollgate/authz/decision', 'tollgate/authz/a'] })));
  });

  it('gives every time.now_ns() of one evaluation the same value, from the wall clock', async () => {
    const token = await sign({ exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256' }, new TextEncoder().encode('s3cret'));
    const before = Date.now() * 1e6;
    const r = policy.evaluateEntrypoint('tollgate/authz/a', {});
    const after = Date.now() * 1e6;
    assert.ok(r.ok && r.defined);
    assert.ok((r.value as number) >= before && (r.value as number) <= after, `${String(r.value)} within [${before}, ${after}]`);
    assert.equal(policy.evaluateEntrypoint('tollgate/authz/decision', { token, expect: 0 }).ok, true);
    const d = policy.evaluateEntrypoint('tollgate/authz/decision', { token, expect: 0 });
    assert.ok(d.ok && d.defined);
    assert.equal((d.value as { allow: boolean }).allow, true);
    assert.equal((d.value as { jwt_valid: boolean }).jwt_valid, true, 'decode_verify defaults to the evaluation time');
  });

  it('hands the policy exact nanoseconds (beyond 2^53) when pinned', () => {
    const ns = 1795000000123456789n;
    const ok = policy.evaluateEntrypoint('tollgate/authz/a', {}, { nowNs: ns });
    assert.ok(ok.ok && ok.defined);
    // Compare inside the policy: a JS number could not carry 19 digits, so the input holds them as
    // text and to_number() parses them exactly there (the ...788 case shows no rounding).
    const dir = policyDir({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": time.now_ns() == to_number(input.expect)}\n' });
    return buildPolicyBundle(dir).then(readBundle).then(loadPolicy).then((p) => {
      assert.equal(p.evaluate({ expect: '1795000000123456789' } as never, { nowNs: ns }).allow, true);
      assert.equal(p.evaluate({ expect: '1795000000123456788' } as never, { nowNs: ns }).allow, false);
    });
  });

  it('makes decode_verify judge expiry at the pinned time', async () => {
    const token = await sign({ exp: NOW_S }, { alg: 'HS256' }, new TextEncoder().encode('s3cret'));
    const at = (ns: bigint): unknown => {
      const r = policy.evaluateEntrypoint('tollgate/authz/decision', { token, expect: 0 }, { nowNs: ns });
      return r.ok && r.defined ? (r.value as { jwt_valid: boolean }).jwt_valid : r;
    };
    assert.equal(at(BigInt(NOW_NS) - 1_000_000_000n), true);
    assert.equal(at(BigInt(NOW_NS)), false);
  });
});

describe('builtin support lists', () => {
  after(cleanupDirs);

  it('names only builtins that exist in this opa', async () => {
    const run = await runOpa(['capabilities', '--current']);
    const names = new Set((JSON.parse(run.stdout) as { builtins: Array<{ name: string }> }).builtins.map((b) => b.name));
    for (const b of [...WASM_NATIVE_BUILTINS, ...HOST_BUILTIN_NAMES].filter((x) => !TOLLGATE_OWN.has(x))) assert.ok(names.has(b), `${b} is not an OPA builtin`);
    // Tollgate's own must never shadow one of OPA's.
    for (const b of TOLLGATE_OWN) assert.ok(!names.has(b), `${b} is also an OPA builtin`);
  });

  it('natively compiled builtins need nothing from the host', async () => {
    const dir = policyDir({ 'p.rego': [
      'package tollgate.authz', '',
      'decision := {"allow": true, "v": [count(input), concat(",", ["a"]), lower("A"), regex.match("a", "a"), object.get({}, "a", 1),',
      '\tjson.marshal({}), base64.encode("a"), startswith("ab", "a"), net.cidr_contains("10.0.0.0/8", "10.0.0.1"), glob.match("a*", [], "ab"),',
      '\tsplit("a,b", ","), trim_space(" a "), to_number("1"), sort([2, 1]), array.slice([1, 2], 0, 1), "a" in {"a"}, 1 + 2 * 3 / 1 % 2]}', '',
    ].join('\n') });
    const p = await loadPolicy(await readBundle(await buildPolicyBundle(dir)));
    assert.equal(p.evaluate({} as never).allow, true);
  });
});
