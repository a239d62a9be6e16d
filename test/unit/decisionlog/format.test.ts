import { strict as assert } from 'node:assert';
import { printable, recordRow, renderRecords, renderStats, safeJson } from '../../../src/decisionlog/format.js';
import { StatsBuilder } from '../../../src/decisionlog/query.js';
import { sampleDraft } from './fixtures.js';

/** Anything a terminal would act on instead of printing. */
// eslint-disable-next-line no-control-regex -- finding control characters is the test
const RISKY = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

describe('decision log text output', () => {
  it('shows control, zero-width and bidi characters as \\uXXXX and folds whitespace, so a value stays one cell', () => {
    assert.equal(printable('delete_records\u001b[1A\u001b[2K'), 'delete_records\\u001b[1A\\u001b[2K');
    assert.equal(printable('\u202esdrocer_eteled'), '\\u202esdrocer_eteled');
    assert.equal(printable('a\u0007b\u009bc\u200bd\u2066e'), 'a\\u0007b\\u009bc\\u200bd\\u2066e');
    assert.equal(printable('two\nlines\r\n\tand  tabs'), 'two lines and tabs');
    assert.equal(printable('plain ünïcödé 名前'), 'plain ünïcödé 名前');
  });

  it('--json output escapes what JSON.stringify leaves raw, and parses back to the same value', () => {
    const value = { tool: 'a\u007fb\u009bc\u202ed\u2028e\u0000f', n: 1 };
    const out = safeJson(value);
    assert.ok(!RISKY.test(out), out);
    assert.deepEqual(JSON.parse(out), value);
    assert.equal(safeJson({ plain: 'ünïcödé' }), JSON.stringify({ plain: 'ünïcödé' }));
  });

  it('never shortens a subject or a reason, and puts REASONS last', () => {
    const sub = 'spiffe://cluster.local/ns/payments/sa/agent-runner-with-a-long-name';
    const reason = 'Tool delete_records is destructive (its changes cannot be undone) and needs membership of group dba. Ask a member of dba to run it, or request membership.';
    const r = sampleDraft({ i: 1, sub, allow: false, reasons: [reason], revision: 'rev-12' });
    const row = recordRow(r);
    assert.equal(row[2], sub);
    assert.equal(row[9], 'rev-12');
    assert.equal(row[10], reason);
    const lines = renderRecords([r]).trimEnd().split('\n');
    assert.match(lines[0]!, /REVISION\s+REASONS$/);
    assert.ok(lines[1]!.endsWith(reason), lines[1]);
    assert.match(lines[1]!, /rev-12 +Tool delete_records/);
  });

  it('keeps hostile names out of the terminal in query tables and stats alike', () => {
    const hostile = sampleDraft({ i: 2, tool: 'x\u001b]0;pwned\u0007', team: 'growth\u001b[2K', allow: false, reasons: ['Tool x\u001b]0;pwned\u0007 is unknown'] });
    assert.ok(!RISKY.test(renderRecords([hostile])));
    const b = new StatsBuilder();
    b.add(hostile);
    const stats = renderStats(b.result());
    assert.ok(!RISKY.test(stats), JSON.stringify(stats));
    assert.match(stats, /x\\u001b\]0;pwned\\u0007/);
  });
});
