import { strict as assert } from 'node:assert';
import { advance, chainRecord, GENESIS, sha256Hex } from '../../../src/decisionlog/chain.js';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import type { LogEntryDraft } from '../../../src/decisionlog/types.js';
import { sampleDraft } from './fixtures.js';

describe('chainRecord: one record linked to the chain', () => {
  it('gives seq, the canonical line, its bytes with a newline and their hash, and advances the head', () => {
    const draft = sampleDraft({ i: 4, args: { note: 'ünïcode' } });
    const entry = chainRecord(draft, { seq: 41, hash: 'cd'.repeat(32) });
    assert.equal(entry.seq, 42);
    assert.equal(entry.line, canonicalize({ ...draft, seq: 42, prev_hash: 'cd'.repeat(32) }));
    assert.ok(entry.bytes.equals(Buffer.from(entry.line + '\n', 'utf8')));
    assert.equal(entry.hash, sha256Hex(entry.line));
    assert.deepEqual(advance(entry), { seq: 42, hash: entry.hash });
    assert.deepEqual(entry.record, { ...draft, seq: 42, prev_hash: 'cd'.repeat(32) });
    assert.equal(entry.record, entry.record, 'built once');
  });

  it('reads the draft\'s members once (for the line) unless the record object is asked for', () => {
    // Copying the draft into a record object for every append cost ~10% of chainRecord; only replicas need it.
    let listings = 0;
    const draft = new Proxy(sampleDraft({ i: 5 }), {
      ownKeys(target) {
        listings++;
        return Reflect.ownKeys(target);
      },
    }) as LogEntryDraft;
    const entry = chainRecord(draft, GENESIS);
    advance(entry);
    assert.equal(listings, 1, 'the canonical writer lists the members; nothing else copies the draft');
    assert.equal(entry.record.seq, 1);
    assert.equal(listings, 2);
  });
});
