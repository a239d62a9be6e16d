import { strict as assert } from 'node:assert';
import { limitMessageSize } from '../../../src/gateway/message-limit.js';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({ start(c) { for (const s of chunks) c.enqueue(enc.encode(s)); c.close(); } });
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(s).text();
}

describe('gateway: the bound on one upstream message', () => {
  const limit = (chunks: string[], max: number): Promise<string> => readAll(limitMessageSize(streamOf(chunks), max, () => new Error('too large')));

  it('passes many SSE events through unchanged when each is under the bound, whatever the total', async () => {
    const event = `event: message\ndata: ${'x'.repeat(40)}\n\n`;
    const chunks = Array.from({ length: 200 }, () => event);
    assert.equal(await limit(chunks, 100), chunks.join(''));
    const crlf = Array.from({ length: 50 }, () => `data: ${'y'.repeat(40)}\r\n\r\n`);
    assert.equal(await limit(crlf, 100), crlf.join(''), 'CRLF line ends end events too');
  });

  it('fails the stream when one event grows past the bound, also across chunks', async () => {
    await assert.rejects(limit(['event: message\ndata: ', 'A'.repeat(60), 'A'.repeat(60)], 100), /too large/);
    await assert.rejects(limit(['data: a\n', 'data: b\n', 'x'.repeat(100)], 100), /too large/, 'lines of one event add up');
  });

  it('bounds a JSON body (no blank lines) as a whole', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'z'.repeat(500) } });
    assert.equal(await limit([body], 1000), body);
    await assert.rejects(limit([body.slice(0, 300), body.slice(300)], 400), /too large/);
  });
});
