import { strict as assert } from 'node:assert';
import { bodyFormat, replaceSseEventData, SseEventSplitter, sseEventData, sseEventMessages } from '../../../src/mcp/response.js';
import { ResponseBodyProcessor } from '../../../src/mcp/response-body.js';
import { filterListResponse, isJsonObject } from '../../../src/mcp/listfilter.js';

const toolsList = (id: number, names: string[], cursor?: string) => ({
  jsonrpc: '2.0', id, result: { tools: names.map((n) => ({ name: n, inputSchema: { type: 'object' } })), ...(cursor ? { nextCursor: cursor } : {}) },
});

/** Drops tool "secret" from list results. */
const hideSecret = (m: unknown): unknown => filterListResponse(m, 'tools', (t) => t.name !== 'secret').result;

function run(format: 'json' | 'sse', chunks: Buffer[], rewrite = true): { out: Buffer; messages: unknown[] } {
  const messages: unknown[] = [];
  const p = new ResponseBodyProcessor({ format, rewrite, transform: hideSecret, onMessage: (m) => messages.push(m), maxBufferBytes: 1 << 20 });
  const parts: Buffer[] = [];
  chunks.forEach((c, i) => {
    const r = p.push(c, i === chunks.length - 1);
    parts.push(r ?? c);
  });
  return { out: Buffer.concat(parts), messages };
}

/** Cuts a buffer into pieces of `size` bytes (so events, CR LF pairs and characters get split). */
const cut = (b: Buffer, size: number): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
};

describe('response bodies', () => {
  it('knows JSON and SSE content types', () => {
    assert.equal(bodyFormat('application/json; charset=utf-8'), 'json');
    assert.equal(bodyFormat('text/event-stream'), 'sse');
    assert.equal(bodyFormat('text/html'), 'other');
    assert.equal(bodyFormat(null), 'other');
  });

  it('reads SSE data the way a browser does and rewrites only the data lines', () => {
    const raw = 'event: message\r\nid: 7\r\n: keep-alive comment\r\ndata: {"a":\r\ndata: 1}\r\n\r\n';
    assert.equal(sseEventData(raw), '{"a":\n1}');
    assert.deepEqual(sseEventMessages(raw)?.messages, [{ a: 1 }]);
    assert.equal(replaceSseEventData(raw, '{"b":2}'), 'event: message\r\nid: 7\r\n: keep-alive comment\r\ndata: {"b":2}\r\n\r\n');
    assert.equal(sseEventData('event: ping\n\n'), null);
  });

  it('splits an SSE stream into events however it is chunked, byte for byte', () => {
    const stream = Buffer.from('event: message\r\ndata: {"x":"é€😀"}\r\n\r\n: ping\n\ndata: {"y":1}\r\rdata: 2\n\n', 'utf8');
    for (const size of [1, 2, 3, 5, 7, 64]) {
      const s = new SseEventSplitter();
      const events = cut(stream, size).flatMap((c) => s.push(c));
      assert.equal(events.length, 4, `chunk size ${size}`);
      assert.deepEqual(Buffer.concat([...events, s.takeRest()]), stream);
      assert.equal(events[0]!.toString('utf8'), 'event: message\r\ndata: {"x":"é€😀"}\r\n\r\n');
      assert.equal(events[2]!.toString('utf8'), 'data: {"y":1}\r\r');
    }
  });

  it('filters a JSON tools/list body, in one chunk (BUFFERED) or many (STREAMED)', () => {
    const body = Buffer.from(JSON.stringify(toolsList(1, ['a', 'secret', 'b'], 'c2')));
    for (const chunks of [[body], cut(body, 10)]) {
      const { out, messages } = run('json', chunks);
      assert.deepEqual(JSON.parse(out.toString()), toolsList(1, ['a', 'b'], 'c2'));
      assert.equal(messages.length, 1);
    }
  });

  it('passes an unchanged JSON body through untouched', () => {
    const body = Buffer.from(JSON.stringify(toolsList(1, ['a'])));
    const p = new ResponseBodyProcessor({ format: 'json', rewrite: true, transform: hideSecret, onMessage: () => undefined, maxBufferBytes: 1 << 20 });
    assert.equal(p.push(body, true), null);
    const q = new ResponseBodyProcessor({ format: 'json', rewrite: true, transform: hideSecret, onMessage: () => undefined, maxBufferBytes: 1 << 20 });
    const parts = cut(body, 8);
    const outs = parts.map((c, i) => q.push(c, i === parts.length - 1));
    assert.ok(outs.slice(0, -1).every((o) => o !== null && o.length === 0), 'held back until complete');
    assert.deepEqual(outs.at(-1), body);
  });

  it('filters each message of a batch', () => {
    const batch = [toolsList(1, ['secret', 'a']), { jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'hi' }] } }];
    const { out } = run('json', [Buffer.from(JSON.stringify(batch))]);
    const got = JSON.parse(out.toString()) as unknown[];
    assert.deepEqual(got[0], toolsList(1, ['a']));
    assert.deepEqual(got[1], batch[1]);
  });

  it('filters an SSE stream split anywhere, keeping framing, ids and other events intact', () => {
    const events = [
      'event: message\nid: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n',
      ': keep-alive\n\n',
      `event: message\r\nid: 2\r\ndata: ${JSON.stringify(toolsList(3, ['secret', 'a'], 'next'))}\r\n\r\n`,
    ];
    const stream = Buffer.from(events.join(''));
    const want = events[0]! + events[1]! + `event: message\r\nid: 2\r\ndata: ${JSON.stringify(toolsList(3, ['a'], 'next'))}\r\n\r\n`;
    for (const size of [1, 4, 33, 4096]) {
      const { out, messages } = run('sse', cut(stream, size));
      assert.equal(out.toString(), want, `chunk size ${size}`);
      assert.equal(messages.length, 2);
      const last = messages[1];
      assert.ok(isJsonObject(last) && isJsonObject(last.result) && last.result.nextCursor === 'next');
    }
  });

  it('without rewriting, passes every chunk at once and still sees every message', () => {
    const stream = Buffer.from(`data: ${JSON.stringify(toolsList(3, ['secret']))}\n\ndata: {"jsonrpc":"2.0","id":4,"result":{}}\n\n`);
    const messages: unknown[] = [];
    const p = new ResponseBodyProcessor({ format: 'sse', rewrite: false, transform: hideSecret, onMessage: (m) => messages.push(m), maxBufferBytes: 1 << 20 });
    for (const [i, c] of cut(stream, 9).entries()) assert.equal(p.push(c, i === Math.ceil(stream.length / 9) - 1), null);
    assert.equal(messages.length, 2);
    assert.deepEqual(messages[0], toolsList(3, ['secret']), 'seen as sent');
  });

  it('lets a body too large to hold pass through when it is not rewritten, counting it as raw text', () => {
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'x'.repeat(3000) }] } }));
    let raw = '';
    const p = new ResponseBodyProcessor({ format: 'json', rewrite: false, transform: hideSecret, onMessage: () => assert.fail('not parsed'), onRawText: (t) => { raw += t; }, maxBufferBytes: 1000 });
    const parts = cut(body, 300);
    const out = Buffer.concat(parts.map((c, i) => p.push(c, i === parts.length - 1) ?? c));
    assert.ok(p.overflowed);
    assert.deepEqual(out, body);
    assert.equal(raw, body.toString());
  });

  const refusal = (why: string): string => JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32006, message: `unfilterable: ${why}` } });

  function rewriteAll(format: 'json' | 'sse', body: Buffer, size: number, maxBufferBytes = 1 << 20): { out: string; p: ResponseBodyProcessor } {
    const p = new ResponseBodyProcessor({ format, rewrite: true, transform: hideSecret, onMessage: () => undefined, maxBufferBytes, unreadable: refusal });
    const parts = cut(body, size);
    const out = Buffer.concat(parts.map((c, i) => p.push(c, i === parts.length - 1) ?? c)).toString();
    return { out, p };
  }

  it('refuses a list too large to hold instead of passing it unfiltered (JSON and SSE)', () => {
    const list = JSON.stringify(toolsList(1, ['secret', ...Array.from({ length: 200 }, (_, i) => `tool_${i}`)]));
    const json = rewriteAll('json', Buffer.from(list), 300, 1000);
    assert.equal(json.out, refusal('it is larger than 1000 bytes'));
    assert.ok(json.p.refused);
    const sse = rewriteAll('sse', Buffer.from(`event: message\ndata: ${list}\n\n: later\n\n`), 300, 1000);
    assert.equal(sse.out, `event: message\ndata: ${refusal('an event is larger than 1000 bytes')}\n\n`);
    assert.ok(!sse.out.includes('secret'));
  });

  it('refuses a list body that is not JSON, and replaces only the unreadable event of a stream', () => {
    assert.equal(rewriteAll('json', Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]'), 7).out, refusal('it is not JSON'));
    const good = `data: ${JSON.stringify(toolsList(2, ['secret', 'a']))}\n\n`;
    const sse = rewriteAll('sse', Buffer.from(`data: {"tools":[{"name":"secret"}]\n\n${good}`), 5);
    assert.equal(sse.out, `event: message\ndata: ${refusal("an event's data is not JSON")}\n\ndata: ${JSON.stringify(toolsList(2, ['a']))}\n\n`);
  });

  it('reads a BOM-prefixed body as clients do, so the list is still filtered', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(toolsList(1, ['secret', 'a'])))]);
    assert.deepEqual(JSON.parse(rewriteAll('json', body, 4).out), toolsList(1, ['a']));
    const sse = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`data: ${JSON.stringify(toolsList(1, ['secret', 'a']))}\n\n`)]);
    assert.ok(!rewriteAll('sse', sse, 6).out.includes('secret'));
  });

  it('on abort, refuses a list it was rewriting and drops the rest', () => {
    const p = new ResponseBodyProcessor({ format: 'json', rewrite: true, transform: hideSecret, onMessage: () => undefined, maxBufferBytes: 1 << 20, unreadable: refusal });
    assert.deepEqual(p.push(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"se'), false), Buffer.alloc(0));
    assert.equal(p.abort()?.toString(), refusal('an internal error stopped its processing'));
    assert.deepEqual(p.push(Buffer.from('cret"}]}}'), true), Buffer.alloc(0), 'nothing of the list gets out after the refusal');
  });
});
