import { strict as assert } from 'node:assert';
import { LineFramer } from '../../../src/bridge/lines.js';
import { InFlight } from '../../../src/bridge/routing.js';
import { refuseHost, LOOPBACK_HOSTNAMES } from '../../../src/bridge/host-check.js';
import { BoundedEventStore } from '../../../src/bridge/event-store.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

describe('bridge: stdio framing', () => {
  it('splits lines across chunks and drops CR and blank lines', () => {
    const out: string[] = [];
    const f = new LineFramer(1024, (l) => out.push(l), () => assert.fail('no overflow'));
    f.push(Buffer.from('{"a":1}\r\n{"b"'));
    f.push(Buffer.from(':2}\n\n{"c":3}'));
    assert.deepEqual(out, ['{"a":1}', '{"b":2}']);
    f.push(Buffer.from('\n'));
    assert.deepEqual(out, ['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('reports a frame over the limit once and resumes at the next newline', () => {
    const out: string[] = [];
    let overflows = 0;
    const f = new LineFramer(8, (l) => out.push(l), () => overflows++);
    f.push(Buffer.from('0123456789abcdef'));
    f.push(Buffer.from('more junk\nok\n'));
    assert.equal(overflows, 1);
    assert.deepEqual(out, ['ok']);
  });
});

describe('bridge: routing server messages to client streams', () => {
  it('responses go to their request, progress to the request that owns the token', () => {
    const f = new InFlight();
    f.add(1, { _meta: { progressToken: 'p1' } });
    f.add('two', {});
    assert.equal(f.relatedTo({ jsonrpc: '2.0', id: 1, result: {} }), 1);
    assert.equal(f.relatedTo({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p1', progress: 1 } }), 1);
    // Anything else while requests are open: the newest one.
    assert.equal(f.relatedTo({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } }), 'two');
    assert.equal(f.relatedTo({ jsonrpc: '2.0', id: 99, method: 'sampling/createMessage', params: {} }), 'two');
  });

  it('with nothing open, server messages go to the standalone stream; ids of different types differ', () => {
    const f = new InFlight();
    assert.equal(f.relatedTo({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }), undefined);
    f.add(1, {});
    assert.equal(f.has('1'), false);
    assert.deepEqual(f.drain(), [1]);
    assert.equal(f.size, 0);
  });
});

describe('bridge: DNS-rebinding protection', () => {
  it('accepts loopback Host/Origin with any port and refuses other names', () => {
    assert.equal(refuseHost('127.0.0.1:10000', undefined, LOOPBACK_HOSTNAMES), null);
    assert.equal(refuseHost('localhost', 'http://localhost:3000', LOOPBACK_HOSTNAMES), null);
    assert.equal(refuseHost('[::1]:8080', undefined, LOOPBACK_HOSTNAMES), null);
    assert.match(refuseHost('evil.example.com', undefined, LOOPBACK_HOSTNAMES)!, /Host/);
    assert.match(refuseHost('127.0.0.1:1', 'http://evil.example.com', LOOPBACK_HOSTNAMES)!, /Origin/);
    assert.match(refuseHost(undefined, undefined, LOOPBACK_HOSTNAMES)!, /Host/);
  });
});

describe('bridge: the replay buffer (Last-Event-ID)', () => {
  const msg = (id: number, text: string): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });
  const replay = async (store: BoundedEventStore, after: string): Promise<string[]> => {
    const got: string[] = [];
    await store.replayEventsAfter(after, { send: async (id) => { got.push(id); } });
    return got;
  };

  it('holds at most maxBytes of messages: delivered large results are dropped oldest first', async () => {
    const store = new BoundedEventStore({ maxEvents: 1000, maxBytes: 10_000 });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await store.storeEvent('s1', msg(i, 'x'.repeat(3000))));
    assert.ok(store.heldBytes <= 10_000, `held ${store.heldBytes}`);
    await assert.rejects(replay(store, ids[0]!), /unknown or expired event id/);
    assert.deepEqual(await replay(store, ids[47]!), [ids[48], ids[49]]);
  });

  it('a message over the bound is not kept, and a replay that would need it fails instead of skipping it', async () => {
    const store = new BoundedEventStore({ maxEvents: 1000, maxBytes: 10_000 });
    const a = await store.storeEvent('s1', msg(1, 'small'));
    await store.storeEvent('s1', msg(2, 'y'.repeat(20_000)));
    const c = await store.storeEvent('s1', msg(3, 'small'));
    assert.ok(store.heldBytes < 1000);
    await assert.rejects(replay(store, a), /over 10000 bytes and was not kept for replay/);
    assert.deepEqual(await replay(store, c), []);
  });

  it('replays only the resumed stream, in order, and still bounds the count', async () => {
    const store = new BoundedEventStore({ maxEvents: 3, maxBytes: 1_000_000 });
    const a = await store.storeEvent('s1', msg(1, 'a'));
    const b = await store.storeEvent('s2', msg(2, 'b'));
    const c = await store.storeEvent('s1', msg(3, 'c'));
    assert.deepEqual(await replay(store, a), [c]);
    assert.deepEqual(await replay(store, b), []);
    await store.storeEvent('s1', msg(4, 'd'));
    await assert.rejects(replay(store, a), /unknown or expired/);
  });
});
