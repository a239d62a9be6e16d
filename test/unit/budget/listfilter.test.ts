import { strict as assert } from 'node:assert';
import { filterListResponse, filterListResult, listKindOfMethod, listKindOfResult } from '../../../src/mcp/listfilter.js';
import { ToolAnnotationStore } from '../../../src/mcp/annotations.js';

const page = {
  tools: [
    { name: 'search_docs', description: 'Search', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
    { name: 'delete_records', description: 'Delete', inputSchema: { type: 'object' }, annotations: { destructiveHint: true } },
    { name: 'create_ticket', description: 'Create', inputSchema: { type: 'object' } },
  ],
  nextCursor: 'page-2',
  _meta: { 'example.com/x': 1 },
};

describe('list filtering', () => {
  it('keeps only allowed items and every other member, nextCursor included', () => {
    const f = filterListResult(page, 'tools', (t) => t.name !== 'delete_records');
    assert.equal(f.removed, 1);
    assert.deepEqual(f.result.tools, [page.tools[0], page.tools[2]]);
    assert.equal(f.result.nextCursor, 'page-2');
    assert.deepEqual(f.result._meta, page._meta);
    assert.equal(page.tools.length, 3, 'input untouched');
  });

  it('returns an empty page with its cursor, so clients go on to the next page', () => {
    const f = filterListResult(page, 'tools', () => false);
    assert.deepEqual(f.result.tools, []);
    assert.equal(f.result.nextCursor, 'page-2');
  });

  it('returns the same object when nothing is removed', () => {
    const f = filterListResult(page, 'tools', () => true);
    assert.equal(f.result, page);
  });

  it('filters prompts, resources and resource templates too, and leaves errors alone', () => {
    const msg = { jsonrpc: '2.0', id: 4, result: { resources: [{ uri: 'file:///a', name: 'a' }, { uri: 'file:///secret', name: 's' }] } };
    const f = filterListResponse(msg, 'resources', (r) => !String(r.uri).includes('secret'));
    assert.deepEqual(f.result, { jsonrpc: '2.0', id: 4, result: { resources: [{ uri: 'file:///a', name: 'a' }] } });
    const err = { jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'nope' } };
    assert.equal(filterListResponse(err, 'tools', () => false).result, err);
  });

  it('knows list methods, and list results by shape (for batches)', () => {
    assert.equal(listKindOfMethod('tools/list'), 'tools');
    assert.equal(listKindOfMethod('resources/templates/list'), 'resourceTemplates');
    assert.equal(listKindOfMethod('tools/call'), null);
    assert.equal(listKindOfResult(page), 'tools');
    assert.equal(listKindOfResult({ prompts: [] }), 'prompts');
    assert.equal(listKindOfResult({ content: [{ type: 'text', text: 'x' }], tools: [] }), null);
  });

  it('remembers the annotations a server declared, per server, hints only', () => {
    const store = new ToolAnnotationStore(10, 2);
    assert.equal(store.record('docs', page.tools), 2, 'bounded per server');
    assert.deepEqual(store.get('docs', 'search_docs'), { readOnlyHint: true });
    assert.equal(store.get('other', 'search_docs'), null);
    store.record('docs', [{ name: 'search_docs', annotations: { readOnlyHint: 'yes', destructiveHint: false, evil: 1 } }]);
    assert.deepEqual(store.lookup('docs', 'search_docs'), { destructiveHint: false });
  });
});
