import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BundlePointer } from '../../../src/bundle/pointer.js';
import { showRevision } from '../../../src/cli/policy-show.js';
import { archiveRevision, readRevision, RevisionReadError } from '../../../src/controlplane/revision-archive.js';

const pointer = (revision: number): BundlePointer => ({
  revision, object: `bundle-${revision}`, sha256: 'b'.repeat(64), size: 1, published_at: '2026-12-06T20:00:23.609Z', content_sha256: 'c'.repeat(64), kid: 'kid-1',
});

async function show(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await showRevision(argv, { out: (s) => { out += s; }, err: (s) => { err += s; } }, {});
  return { code, out, err };
}

describe('policy show: reading archived revisions', () => {
  let state: string;
  let secret: string;
  const revDir = (n: number) => join(state, 'revisions', String(n));
  const indexOf = (n: number) => join(revDir(n), 'revision.json');
  const files = () => new Map([['/authz.rego', Buffer.from('package tollgate.authz\n')], ['/lib/x.rego', Buffer.from('package x\n')]]);
  /** Rewrites revision N's index with `edit` applied. */
  const editIndex = (n: number, edit: (doc: { files: Array<{ path: string; sha256: string; size: number }> }) => void) => {
    const doc = JSON.parse(readFileSync(indexOf(n), 'utf8')) as { files: Array<{ path: string; sha256: string; size: number }> };
    edit(doc);
    writeFileSync(indexOf(n), JSON.stringify(doc));
  };

  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-policy-show-'));
    secret = join(state, 'secret.txt');
    writeFileSync(secret, 'not policy\n');
    for (const n of [1, 2, 3]) archiveRevision(state, pointer(n), files());
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  it('lists the good revisions and names the file and the problem of each bad one, in one line', async () => {
    writeFileSync(indexOf(2), '{"revision": 2, oops');
    editIndex(3, (d) => { d.files[0]!.size = 'big' as unknown as number; });
    const r = await show(['--state', state]);
    assert.equal(r.code, 1);
    assert.match(r.out, /^REVISION {2}PUBLISHED/);
    assert.match(r.out, /^1\s+2026-12-06T20:00:23\.609Z\s+cccccccccccc\s+2$/m);
    assert.doesNotMatch(r.out, /^[23]\s/m);
    const lines = r.err.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.err);
    assert.match(lines[0]!, /^tollgate policy show: revision 2: .*revisions\/2\/revision\.json: not JSON \(.+\)$/);
    assert.match(lines[1]!, /^tollgate policy show: revision 3: .*revisions\/3\/revision\.json: not a revision index: files\[0\]\.size: .+$/);

    const one = await show(['--state', state, '--revision', '3']);
    assert.equal(one.code, 1);
    assert.equal(one.out, '');
    assert.match(one.err, /^tollgate policy show: .*revisions\/3\/revision\.json: not a revision index: files\[0\]\.size: [^\n]+\n$/);
  });

  it('refuses a listed path that leads outside the revision, and shows the other files', async () => {
    const escape = `../../../../${'../'.repeat(8)}${secret}`;
    editIndex(2, (d) => { d.files.unshift({ path: escape, sha256: 'd'.repeat(64), size: 11 }); });
    const r = await show(['--state', state, '--revision', '2', '--file', escape]);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /is outside the revision's files\/ directory; refusing to read it\n$/);
    assert.doesNotMatch(r.out + r.err, /not policy/);

    const all = await show(['--state', state, '--revision', '2']);
    assert.equal(all.code, 1);
    assert.match(all.out, /--- authz\.rego \(sha256 [0-9a-f]{64}\)\npackage tollgate\.authz\n/);
    assert.match(all.out, /--- lib\/x\.rego/);
    assert.doesNotMatch(all.out, /not policy/);
    assert.match(all.err, /outside the revision's files\/ directory/);
  });

  it('refuses a file whose content no longer has its recorded sha256, or that is a link out of the revision', async () => {
    writeFileSync(join(revDir(1), 'files', 'authz.rego'), 'package tollgate.authz\nallow := true\n');
    const r = await show(['--state', state, '--revision', '1', '--file', 'authz.rego']);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /files\/authz\.rego: content has sha256 [0-9a-f]{64}, .*revision\.json recorded [0-9a-f]{64}: the archived file was altered/);

    const link = join(revDir(2), 'files', 'authz.rego');
    unlinkSync(link);
    symlinkSync(secret, link);
    assert.throws(() => readRevision(state, 2).source('authz.rego'), (e: unknown) => e instanceof RevisionReadError && /leads outside the revision's files\/ directory \(a symbolic link\)/.test(e.message));
    assert.equal(readRevision(state, 3).source('lib/x.rego').toString(), 'package x\n');
  });
});
