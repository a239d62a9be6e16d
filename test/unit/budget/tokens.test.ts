import { strict as assert } from 'node:assert';
import { countText, countTextAsync, countValue, measureValue, measureValueAsync, textOf } from '../../../src/budget/tokens.js';

const PROSE = `Tollgate sits between MCP clients and servers. Every tool call is checked against policy,
identity is verified, and token budgets are enforced before the call reaches the server. `;

describe('token counting', () => {
  it('counts real text with o200k_base by default, and with other encodings on request', () => {
    assert.equal(countText(''), 0);
    assert.equal(countText('hello world'), 2);
    const o200k = countText(PROSE);
    assert.ok(o200k > 30 && o200k < 60, `o200k: ${o200k}`);
    // Different vocabularies give different counts for non-English text.
    const text = 'Служба поддержки клиентов отвечает на вопросы о счетах и платежах.';
    assert.notEqual(countText(text, 'o200k_base'), countText(text, 'cl100k_base'));
  });

  it('treats special-token text from tools as ordinary characters instead of throwing', () => {
    assert.ok(countText('result: <|endoftext|> and <|im_start|>') > 5);
  });

  it('counts JSON values as their JSON text and strings as themselves', () => {
    assert.equal(textOf({ city: 'Berlin' }), '{"city":"Berlin"}');
    assert.equal(countValue({ city: 'Berlin' }), countText('{"city":"Berlin"}'));
    assert.equal(countValue('Berlin'), countText('Berlin'));
    assert.equal(countValue(null), 0);
  });

  it('measures in every encoding the budgets use', () => {
    const m = measureValue(PROSE, ['cl100k_base', 'o200k_base']);
    assert.equal(m.tokens, countText(PROSE));
    assert.equal(m.byEncoding?.cl100k_base, countText(PROSE, 'cl100k_base'));
    assert.equal(m.byEncoding?.o200k_base, undefined);
  });

  it('counts a large text asynchronously, slice by slice, to the same total', async () => {
    const big = PROSE.repeat(3000); // ~0.5 MB
    const exact = countText(big, 'o200k_base', { maxExactChars: Infinity });
    let turns = 0;
    const ticker = setInterval(() => { turns++; }, 0);
    const sliced = await countTextAsync(big, 'o200k_base', 16 * 1024);
    clearInterval(ticker);
    assert.equal(sliced, exact);
    // The event loop got to run between slices.
    assert.ok(turns > 0);
    const m = await measureValueAsync(big, ['cl100k_base'], 16 * 1024);
    assert.equal(m.tokens, exact);
    assert.equal(m.byEncoding?.cl100k_base, countText(big, 'cl100k_base', { maxExactChars: Infinity }));
  });

  it('estimates synchronous counts above maxExactChars from the counted head', () => {
    const big = PROSE.repeat(200);
    const exact = countText(big, 'o200k_base', { maxExactChars: Infinity });
    const est = countText(big, 'o200k_base', { maxExactChars: 4096 });
    assert.ok(Math.abs(est - exact) / exact < 0.05, `estimate ${est} vs exact ${exact}`);
  });
});
