import { strict as assert } from 'node:assert';
import { parseMcpBody, nestingDepth, idOf, isInitializeBody, isJsonRpcMessage, parseJsonRpcBody, serializeJsonRpcBody } from '../../../src/mcp/jsonrpc.js';
import { callFacts } from '../../../src/mcp/request.js';

const limits = { maxBytes: 1024, maxDepth: 8, maxBatch: 3 };

describe('MCP JSON-RPC body parsing', () => {
  it('reads a request, a notification and a response', () => {
    const r = parseMcpBody('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}', limits);
    assert.ok(r.ok);
    assert.deepEqual(r.messages[0], { kind: 'request', id: 7, method: 'tools/call', params: { name: 'x', arguments: { a: 1 } } });
    const n = parseMcpBody('{"jsonrpc":"2.0","method":"notifications/initialized"}', limits);
    assert.ok(n.ok && n.messages[0]!.kind === 'notification' && n.messages[0]!.id === null);
    const s = parseMcpBody('{"jsonrpc":"2.0","id":"a","result":{}}', limits);
    assert.ok(s.ok && s.messages[0]!.kind === 'response');
  });

  it('reads batches element by element', () => {
    const r = parseMcpBody('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]', limits);
    assert.ok(r.ok && r.batch);
    assert.deepEqual(r.messages.map((m) => m.kind), ['request', 'notification']);
  });

  const refused: Array<[string, string | Buffer, number, RegExp]> = [
    ['empty body', '', -32600, /empty request body/],
    ['not JSON', '{"jsonrpc":', -32700, /parse error/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), -32700, /UTF-8/],
    ['wrong version', '{"jsonrpc":"1.0","id":1,"method":"x"}', -32600, /jsonrpc/],
    ['null id', '{"jsonrpc":"2.0","id":null,"method":"x"}', -32600, /null ids/],
    ['object id', '{"jsonrpc":"2.0","id":{},"method":"x"}', -32600, /"id"/],
    ['array params', '{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', -32600, /params/],
    ['empty batch', '[]', -32600, /empty JSON-RPC batch/],
    ['batch too long', '[' + Array(4).fill('{"jsonrpc":"2.0","method":"n"}').join(',') + ']', -32600, /over the limit of 3/],
    ['bad batch element', '[{"jsonrpc":"2.0","method":"n"},42]', -32600, /batch index 1/],
    ['a bare string', '"hello"', -32600, /must be an object/],
    ['a bare number', '42', -32600, /must be an object/],
    ['null', 'null', -32600, /must be an object/],
    ['a version that is a number', '{"jsonrpc":2.0,"id":1,"method":"x"}', -32600, /jsonrpc/],
    ['no version at all', '{"id":1,"method":"x"}', -32600, /jsonrpc/],
    ['an empty method', '{"jsonrpc":"2.0","id":1,"method":""}', -32600, /non-empty string/],
    ['a response without an id', '{"jsonrpc":"2.0","result":{}}', -32600, /needs an "id"/],
    ['a non-finite id', '{"jsonrpc":"2.0","id":1e999,"method":"x"}', -32600, /"id"/],
    ['a batch holding a batch', '[[{"jsonrpc":"2.0","method":"n"}]]', -32600, /batch index 0: a JSON-RPC message must be an object/],
    ['a batch with a wrong version inside', '[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"1.0","method":"n"}]', -32600, /batch index 1: missing or wrong "jsonrpc"/],
    ['a batch of null', '[null]', -32600, /batch index 0/],
    ['neither request nor response', '{"jsonrpc":"2.0","id":1}', -32600, /neither/],
  ];
  for (const [name, body, code, msg] of refused) {
    it(`refuses ${name} with ${code}`, () => {
      const r = parseMcpBody(body, limits);
      assert.ok(!r.ok);
      assert.equal(r.error.code, code);
      assert.match(r.error.message, msg);
    });
  }

  it('refuses oversized bodies with 413 before parsing', () => {
    const r = parseMcpBody('{"a":"' + 'x'.repeat(2000) + '"}', limits);
    assert.ok(!r.ok && r.error.httpStatus === 413 && /over the 1024-byte limit/.test(r.error.message));
  });

  it('takes a batch of exactly the limit', () => {
    const r = parseMcpBody('[' + Array(3).fill('{"jsonrpc":"2.0","method":"n"}').join(',') + ']', limits);
    assert.ok(r.ok && r.batch && r.messages.length === 3);
  });

  it('treats a single message and a batch of one differently', () => {
    const one = parseMcpBody('{"jsonrpc":"2.0","id":1,"method":"ping"}', limits);
    const batch = parseMcpBody('[{"jsonrpc":"2.0","id":1,"method":"ping"}]', limits);
    assert.ok(one.ok && !one.batch && batch.ok && batch.batch);
    assert.deepEqual(one.messages, batch.messages);
  });

  it('measures the size limit in bytes, not characters', () => {
    // 400 three-byte characters: 400 characters, 1,200 bytes.
    const text = `{"jsonrpc":"2.0","id":1,"method":"x","params":{"s":"${'€'.repeat(400)}"}}`;
    assert.ok(text.length < limits.maxBytes);
    for (const body of [text, Buffer.from(text)]) {
      const r = parseMcpBody(body, limits);
      assert.ok(!r.ok && r.error.httpStatus === 413, `refused as ${typeof body}`);
    }
  });

  it('refuses deep nesting without recursing into it', () => {
    const deep = '{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":' + '['.repeat(500) + ']'.repeat(500) + '}}';
    const r = parseMcpBody(deep, { ...limits, maxBytes: 10_000 });
    assert.ok(!r.ok && /deeper than 8/.test(r.error.message));
  });

  it('does not count brackets inside strings as nesting', () => {
    assert.equal(nestingDepth('{"a":"[[[[{{{{\\"]]]"}', 10), 1);
  });

  it('finds the id of a refused body when it can', () => {
    assert.equal(idOf({ id: 'x' }), 'x');
    assert.equal(idOf([{ id: 3 }]), 3);
    assert.equal(idOf('nope'), null);
  });
});

describe('JSON-RPC message checks', () => {
  it('recognises a message by its version, whatever else it holds', () => {
    assert.equal(isJsonRpcMessage({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'x' } }), true);
    for (const v of [null, 42, 'x', [], [{ jsonrpc: '2.0' }], {}, { jsonrpc: '1.0' }, { jsonrpc: 2 }]) {
      assert.equal(isJsonRpcMessage(v), false, JSON.stringify(v));
    }
  });

  it('knows an initialize body, alone or as a batch of one only', () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    assert.equal(isInitializeBody(init), true);
    assert.equal(isInitializeBody([init]), true);
    assert.equal(isInitializeBody([init, init]), false);
    assert.equal(isInitializeBody([]), false);
    assert.equal(isInitializeBody({ ...init, method: 'ping' }), false);
    assert.equal(isInitializeBody(undefined), false);
    assert.equal(isInitializeBody('initialize'), false);
  });
});

describe('JSON-RPC response bodies', () => {
  it('parses and re-serialises single messages and batches', () => {
    const b = parseJsonRpcBody('[{"jsonrpc":"2.0","id":1,"result":{}}]')!;
    assert.equal(b.batch, true);
    assert.equal(serializeJsonRpcBody(b), '[{"jsonrpc":"2.0","id":1,"result":{}}]');
    const one = parseJsonRpcBody('{"jsonrpc":"2.0","id":1,"result":{}}')!;
    assert.deepEqual(one, { batch: false, messages: [{ jsonrpc: '2.0', id: 1, result: {} }] });
    assert.equal(serializeJsonRpcBody(one), '{"jsonrpc":"2.0","id":1,"result":{}}');
  });

  it('returns null for text that is not JSON', () => {
    for (const t of ['{"a":', '', 'data: {}', '\ufeff\ufeff{}']) assert.equal(parseJsonRpcBody(t), null, JSON.stringify(t));
  });

  it('skips one leading byte order mark, as clients do', () => {
    assert.deepEqual(parseJsonRpcBody('\ufeff{"jsonrpc":"2.0","id":1,"result":{}}')?.messages, [{ jsonrpc: '2.0', id: 1, result: {} }]);
  });

  it('passes non-messages and empty batches through unvalidated, to be relayed as they came', () => {
    assert.deepEqual(parseJsonRpcBody('42'), { batch: false, messages: [42] });
    assert.deepEqual(parseJsonRpcBody('{"jsonrpc":"1.0"}'), { batch: false, messages: [{ jsonrpc: '1.0' }] });
    const empty = parseJsonRpcBody('[]')!;
    assert.deepEqual(empty, { batch: true, messages: [] });
    assert.equal(serializeJsonRpcBody(empty), '[]');
  });
});

describe('MCP call facts', () => {
  const msg = (method: string, params: Record<string, unknown> | null) => ({ kind: 'request' as const, id: 1, method, params });
  it('takes tool name and arguments from tools/call', () => {
    assert.deepEqual(callFacts(msg('tools/call', { name: 'run_sql', arguments: { query: 'select 1' } })),
      { tool: 'run_sql', arguments: { query: 'select 1' }, resource: null, prompt: null, invalid: null });
  });
  it('flags tools/call without a name or with non-object arguments', () => {
    assert.match(callFacts(msg('tools/call', {})).invalid!, /params.name/);
    assert.match(callFacts(msg('tools/call', { name: 'x', arguments: [1] })).invalid!, /must be an object/);
  });
  it('reads resources/read uri and prompts/get name', () => {
    assert.equal(callFacts(msg('resources/read', { uri: 'file:///a' })).resource, 'file:///a');
    assert.equal(callFacts(msg('prompts/get', { name: 'p' })).prompt, 'p');
    assert.match(callFacts(msg('resources/read', null)).invalid!, /uri/);
  });
});
