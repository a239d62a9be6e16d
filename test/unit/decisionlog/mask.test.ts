import { strict as assert } from 'node:assert';
import { applyMasks, createInputMasker, maskInput, MASK_REPLACEMENT } from '../../../src/decisionlog/mask.js';
import { isSecretKey, looksLikeSecret } from '../../../src/decisionlog/secrets.js';
import type { Masker } from '../../../src/authz/record.js';
import type { PolicyInput } from '../../../src/contract/policy.js';
import { sampleInput } from './fixtures.js';

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

type Obj = Record<string, unknown>;
const at = (v: unknown, ...path: Array<string | number>): unknown => path.reduce<unknown>((o, k) => (o as Obj | undefined)?.[k as string], v);

describe('decision log masking', () => {
  describe('OPA system.log.mask semantics (applyMasks)', () => {
    const event = () => ({
      input: { resource: 'user', name: 'bob', password: 'passw0rd', ssn: '123', users: [{ name: 'a' }, { name: 'b' }] },
      result: { allow: true, secret_reason: 'x' },
    });

    it('erases JSON pointers and lists them in erased; undefined pointers are ignored', () => {
      const ev = deepFreeze(event());
      const out = applyMasks(ev, ['/input/password', '/input/ssn', '/input/name/first', '/input/nope', '/result/secret_reason']);
      assert.deepEqual(out.value.input, { resource: 'user', name: 'bob', users: [{ name: 'a' }, { name: 'b' }] });
      assert.deepEqual(out.value.result, { allow: true });
      assert.deepEqual(out.erased, ['/input/password', '/input/ssn', '/result/secret_reason']);
      assert.deepEqual(out.masked, []);
      assert.equal(ev.input.password, 'passw0rd');
    });

    it('upserts (overwrite or add) and removes, listing upserts in masked', () => {
      const out = applyMasks(deepFreeze(event()), [
        { op: 'upsert', path: '/input/password', value: '**REDACTED**' },
        { op: 'upsert', path: '/input/extra/note', value: 'added' },
        { op: 'remove', path: '/input/ssn', value: 'ignored' },
      ]);
      assert.equal(at(out.value, 'input', 'password'), '**REDACTED**');
      assert.deepEqual(at(out.value, 'input', 'extra'), { note: 'added' });
      assert.equal(at(out.value, 'input', 'ssn'), undefined);
      assert.deepEqual(out.masked, ['/input/password', '/input/extra/note']);
      assert.deepEqual(out.erased, ['/input/ssn']);
    });

    it('addresses array elements, both inside a path and as the last token', () => {
      const out = applyMasks(deepFreeze(event()), ['/input/users/0/name', '/input/users/1']);
      assert.deepEqual(at(out.value, 'input', 'users'), [{}]);
      assert.deepEqual(out.erased, ['/input/users/0/name', '/input/users/1']);
    });

    it('ignores pointers outside /input and /result and malformed rules', () => {
      const out = applyMasks(deepFreeze(event()), ['/labels/id', 'input/password', { op: 'explode', path: '/input/name' }, 42, null]);
      assert.deepEqual(out.value, event());
      assert.deepEqual(out.erased, []);
    });

    it('accepts a single rule and a set serialised as an array', () => {
      assert.deepEqual(applyMasks(event(), '/input/ssn').erased, ['/input/ssn']);
      assert.deepEqual(applyMasks(event(), undefined).erased, []);
    });
  });

  describe('maskInput (what authz logs)', () => {
    it('is the Masker authz records with: erases credentials, applies the decision and policy masks', () => {
      const m: Masker = maskInput;
      const out = m(sampleInput({ q: 'weather', card: '4111 1111 1111 1111' }), ['/input/mcp/arguments/card'], undefined);
      assert.equal(out.input.request.headers.authorization, undefined);
      assert.equal(out.input.request.headers.cookie, undefined);
      assert.ok(out.erased.includes('/input/request/headers/authorization'), JSON.stringify(out.erased));
      assert.equal(out.input.mcp.arguments?.q, 'weather');
      assert.notEqual(out.input.mcp.arguments?.card, '4111 1111 1111 1111');
      assert.ok(!JSON.stringify(out.input).includes('4111 1111 1111 1111'), 'the masked value appears nowhere in the logged input');
    });

    it('never mutates the input the request path still uses', () => {
      const input = deepFreeze(sampleInput({ password: 'hunter2', q: 'weather', nested: { api_key: 'k-123456' } }));
      const before = JSON.stringify(input);
      const out = maskInput(input, ['input.mcp.arguments.q'], ['/input/mcp/arguments/nested', { op: 'upsert', path: '/input/identity/sub', value: 'anon' }]);
      assert.equal(JSON.stringify(input), before);
      assert.notEqual(out.input, input);
      // Untouched subtrees are shared, not copied.
      assert.equal(out.input.budget, input.budget);
      assert.equal(out.input.parsed_query, input.parsed_query);
    });

    it('applies a policy erase to every copy of the arguments', () => {
      const input = sampleInput({ card: '4111111111111111', q: 'x' });
      const out = maskInput(input, [], ['/input/mcp/arguments/card']);
      assert.equal(at(out.input, 'mcp', 'arguments', 'card'), undefined);
      assert.equal(at(out.input, 'mcp', 'params', 'arguments', 'card'), undefined);
      assert.equal(at(out.input, 'parsed_body', 'params', 'arguments', 'card'), undefined);
      assert.equal(at(out.input, 'mcp', 'arguments', 'q'), 'x');
      assert.ok(out.erased.includes('/input/mcp/arguments/card'));
      assert.ok(out.erased.includes('/input/mcp/params/arguments/card'));
      assert.ok(out.erased.includes('/input/parsed_body/params/arguments/card'));
      assert.ok(!JSON.stringify(out.input).includes('4111111111111111'), 'the raw body copy is gone too');
    });

    it('replaces the decision mask paths (pointer or dotted) with ***', () => {
      const input = sampleInput({ account: 'ACME-1', note: 'n', deep: { iban: 'DE89' } });
      const out = maskInput(input, ['input.mcp.arguments.account', '/input/mcp/arguments/deep/iban', 'mcp.arguments.note', 'input.mcp.arguments.absent'], undefined);
      assert.equal(at(out.input, 'mcp', 'arguments', 'account'), MASK_REPLACEMENT);
      assert.equal(at(out.input, 'mcp', 'arguments', 'note'), MASK_REPLACEMENT);
      assert.equal(at(out.input, 'parsed_body', 'params', 'arguments', 'deep', 'iban'), MASK_REPLACEMENT);
      assert.ok(out.masked.includes('/input/mcp/arguments/account'));
      assert.ok(!out.masked.some((p) => p.includes('absent')));
    });

    it('always erases credentials from headers, in both header maps, and the raw body', () => {
      const out = maskInput(sampleInput({ q: 'x' }), [], undefined);
      for (const root of [['request', 'headers'], ['attributes', 'request', 'http', 'headers']]) {
        const h = at(out.input, ...root) as Obj;
        assert.equal(h.authorization, undefined);
        assert.equal(h.cookie, undefined);
        assert.equal(h['content-type'], 'application/json');
      }
      assert.equal(at(out.input, 'attributes', 'request', 'http', 'body'), undefined);
      assert.deepEqual(out.erased.sort(), [
        '/input/attributes/request/http/body', '/input/attributes/request/http/headers/authorization',
        '/input/attributes/request/http/headers/cookie', '/input/request/headers/authorization', '/input/request/headers/cookie',
      ]);
      assert.ok(!JSON.stringify(out.input).includes('eyJhbGciOiJFUzI1NiJ9'));
    });

    it('erases the body Envoy packed as bytes (rawBody, base64 as opa-envoy-plugin writes it)', () => {
      const base = sampleInput({ card: '4111111111111111' });
      const http = (base.attributes as { request: { http: Obj } }).request.http;
      const packed = Buffer.from(String(http.body)).toString('base64');
      const input = { ...base, attributes: { request: { http: { ...http, body: undefined, rawBody: packed } } } } as PolicyInput;
      const out = maskInput(input, ['/input/mcp/arguments/card'], undefined);
      assert.equal(at(out.input, 'attributes', 'request', 'http', 'rawBody'), undefined);
      assert.ok(out.erased.includes('/input/attributes/request/http/rawBody'));
      assert.ok(!JSON.stringify(out.input).includes(packed));
    });

    it('masks secret-looking names and values at any depth of the arguments, and only those', () => {
      const args = {
        query: 'what is the weather in Paris tomorrow?',
        password: 'hunter2',
        max_tokens: 500,
        config: { db: { DB_PASSWD: 'x1', port: 5432 }, headers: [{ Authorization: 'abc' }], clientSecret: { v: 1 } },
        list: ['plain', 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
        openai: 'sk-proj-abcdefghijklmnopqrstuvwx',
        gh: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
        aws: 'AKIAIOSFODNN7EXAMPLE',
        pem: '-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----',
        dsn: 'postgres://admin:s3cr3t@db.internal:5432/app',
        blob: 'q8Zr2LmN5vXw9Tb3Kc7Hd1Jf6Gs4Ya0PeRtUiOoQ',
        id: '123e4567-e89b-12d3-a456-426614174000',
        sha: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
        path: '/home/alice/projects/report-2024/final_v2.docx',
        tokens: 12,
        enabled: true,
        pass: false,
      };
      const out = maskInput(sampleInput(args), [], undefined);
      const a = at(out.input, 'mcp', 'arguments') as Obj;
      for (const k of ['password', 'openai', 'gh', 'aws', 'pem', 'dsn', 'blob']) assert.equal(a[k], MASK_REPLACEMENT, k);
      assert.equal(at(a, 'config', 'db', 'DB_PASSWD'), MASK_REPLACEMENT);
      assert.equal(at(a, 'config', 'db', 'port'), 5432);
      assert.equal(at(a, 'config', 'headers', 0, 'Authorization'), MASK_REPLACEMENT);
      assert.equal(at(a, 'config', 'clientSecret'), MASK_REPLACEMENT);
      assert.deepEqual(a.list, ['plain', MASK_REPLACEMENT]);
      for (const k of ['query', 'max_tokens', 'id', 'sha', 'path', 'tokens', 'enabled', 'pass']) assert.deepEqual(a[k], args[k as keyof typeof args], k);
      assert.ok(out.masked.includes('/input/mcp/arguments/password'));
      assert.ok(out.masked.includes('/input/mcp/arguments/list/1'));
      assert.ok(out.masked.includes('/input/parsed_body/params/arguments/config/db/DB_PASSWD'));
      const text = JSON.stringify(out.input);
      for (const secret of ['hunter2', 'sk-proj-', 'ghp_', 'AKIAIOSFODNN7EXAMPLE', 'BEGIN RSA', 's3cr3t', 'q8Zr2LmN5vXw9Tb3']) assert.ok(!text.includes(secret), secret);
    });

    it('keeps MCP\'s own progressToken (a correlation handle), unless its value looks like a secret', () => {
      const input = sampleInput({ q: 'x' });
      const params = input.mcp.params as Obj;
      params._meta = { progressToken: 42 };
      let out = maskInput(input, [], undefined);
      assert.equal(at(out.input, 'mcp', 'params', '_meta', 'progressToken'), 42);
      assert.equal(at(out.input, 'parsed_body', 'params', '_meta', 'progressToken'), 42);
      assert.deepEqual(out.masked.filter((p) => p.includes('progressToken')), []);
      // The name is no longer judged; the value still is.
      params._meta = { progressToken: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789' };
      out = maskInput(input, [], undefined);
      assert.equal(at(out.input, 'mcp', 'params', '_meta', 'progressToken'), MASK_REPLACEMENT);
      // Other names ending in "token" still are.
      assert.ok(isSecretKey('progress_token_secret') && isSecretKey('session_token') && !isSecretKey('progressToken'));
    });

    it('can turn the secret heuristics off while still erasing credential headers', () => {
      const out = createInputMasker({ detectSecrets: false })(sampleInput({ password: 'hunter2' }), [], undefined);
      assert.equal(at(out.input, 'mcp', 'arguments', 'password'), 'hunter2');
      assert.equal(at(out.input, 'request', 'headers', 'authorization'), undefined);
    });

    it('in a batch, keeps only this element\'s params in parsed_body', () => {
      const msgs = [
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a', arguments: { secret_note: 'one' } } },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'b', arguments: { q: 'two' } } },
      ];
      const input = deepFreeze(sampleInput({ q: 'two' }, { tool: 'b', batch: { index: 1, size: 2 }, body: msgs }) as PolicyInput);
      const out = maskInput(input, ['input.mcp.arguments.q'], undefined);
      assert.equal(at(out.input, 'parsed_body', 0, 'params'), MASK_REPLACEMENT);
      assert.equal(at(out.input, 'parsed_body', 1, 'params', 'arguments', 'q'), MASK_REPLACEMENT);
      assert.ok(out.masked.includes('/input/parsed_body/1/params/arguments/q'));
      assert.ok(!JSON.stringify(out.input).includes('one'));
    });
  });

  describe('headers shared by request.headers and attributes (issue 12)', () => {
    it('judges one headers object once, and masks both places it appears', () => {
      const reads = new Map<string, number>();
      const plain: Record<string, string> = { 'x-api-key': 'k-1234567890abcdef', 'x-trace': 'ghp_' + 'a'.repeat(36), accept: 'application/json' };
      const headers = new Proxy(plain, {
        get(t, k, r) {
          if (typeof k === 'string') reads.set(k, (reads.get(k) ?? 0) + 1);
          return Reflect.get(t, k, r) as unknown;
        },
      });
      const input = sampleInput({ q: 'x' });
      const shared: PolicyInput = { ...input, request: { ...input.request, headers }, attributes: { request: { http: { method: 'POST', headers } } } };
      const out = maskInput(shared, [], undefined);
      for (const root of [['request', 'headers'], ['attributes', 'request', 'http', 'headers']]) {
        assert.equal(at(out.input, ...root, 'x-trace'), MASK_REPLACEMENT, root.join('.'));
        assert.equal(at(out.input, ...root, 'x-api-key'), MASK_REPLACEMENT, root.join('.'));
        assert.equal(at(out.input, ...root, 'accept'), 'application/json');
      }
      // One read to judge the value, one for each of the two masked copies (judging per place read it twice more).
      assert.equal(reads.get('x-trace'), 3, JSON.stringify([...reads]));
    });

    it('judges two different headers objects each on its own', () => {
      const input = sampleInput({ q: 'x' });
      const mixed: PolicyInput = {
        ...input,
        request: { ...input.request, headers: { accept: 'ghp_' + 'b'.repeat(36) } },
        attributes: { request: { http: { headers: { accept: 'text/plain' } } } },
      };
      const out = maskInput(mixed, [], undefined);
      assert.equal(at(out.input, 'request', 'headers', 'accept'), MASK_REPLACEMENT);
      assert.equal(at(out.input, 'attributes', 'request', 'http', 'headers', 'accept'), 'text/plain');
    });
  });

  describe('secret heuristics', () => {
    it('recognises secret field names without flagging token counts', () => {
      for (const k of ['password', 'Passwd', 'client_secret', 'access_token', 'refresh-token', 'apiKey', 'API_KEY', 'AWS_ACCESS_KEY_ID', 'private_key', 'Authorization', 'credentials', 'x-api-key', 'pwd']) {
        assert.ok(isSecretKey(k), k);
      }
      for (const k of ['max_tokens', 'token_count', 'tokens', 'author', 'query', 'keyword', 'passenger']) assert.ok(!isSecretKey(k), k);
    });

    it('recognises secret-looking values, including inside prose', () => {
      assert.ok(looksLikeSecret('use this: sk-ant-api03-abcdefghijklmnopqrstuv please'));
      assert.ok(looksLikeSecret('here is the token q8Zr2LmN5vXw9Tb3Kc7Hd1Jf6Gs4Ya0PeRtUiOoQ ok'));
      assert.ok(!looksLikeSecret('a perfectly ordinary sentence about the quarterly billing report'));
      assert.ok(!looksLikeSecret('short'));
    });
  });
});
