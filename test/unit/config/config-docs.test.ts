import { strict as assert } from 'node:assert';
import { z } from 'zod';
import { configTable, replaceGenerated } from '../../../src/config/doc-table.js';
import { renderDocs } from '../../support/config-docs.js';

describe('configuration tables generated from the schemas', () => {
  it('docs/ match the schemas (run `make config-docs` after changing a config)', () => {
    for (const [file, { current, wanted }] of renderDocs()) assert.equal(current, wanted, `${file} is stale: run make config-docs`);
  });

  it('lists nested fields as parent.child and refuses an undocumented field', () => {
    const d = (dflt: string, doc: string) => ({ default: dflt, doc });
    const s = z.object({ a: z.number().optional().meta(d('1', 'an a')), n: z.object({ b: z.string().meta(d('—', 'a b')) }).nullable().optional().meta(d('null', 'an n')) });
    assert.equal(configTable(s), '| field | default | meaning |\n| --- | --- | --- |\n| `a` | 1 | an a |\n| `n` | null | an n |\n| `n.b` | — | a b |\n');
    assert.throws(() => configTable(z.object({ c: z.string() })), /config field c has no \{ default, doc \} metadata/);
  });

  it('replaces only what is between the markers, and says when they are missing', () => {
    const text = 'before\n<!-- generated:t -->\nold\n<!-- /generated:t -->\nafter\n';
    assert.equal(replaceGenerated(text, 't', 'new\n'), 'before\n<!-- generated:t -->\nnew\n<!-- /generated:t -->\nafter\n');
    assert.throws(() => replaceGenerated('x', 't', ''), /no <!-- generated:t -->/);
  });
});
