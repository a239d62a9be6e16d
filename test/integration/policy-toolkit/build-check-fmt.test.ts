import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBundle } from '../../../src/bundle/archive.js';
import { loadPolicy } from '../../../src/policy/engine.js';
import { buildCallInput } from '../../../src/toolkit/call-input.js';
import { cleanup, policy, REPO_POLICIES, scratch, write } from './support.js';

describe('tollgate policy build, check, fmt', function () {
  this.timeout(60_000);
  after(cleanup);

  it('build writes a bundle the engine loads, with the entrypoints and revision', async () => {
    const out = join(scratch(), 'bundle.tar.gz');
    const r = await policy(['build', REPO_POLICIES, '-o', out, '--revision', 'rev-42']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /entrypoints: .*tollgate\/authz\/decision/);
    assert.match(r.out, /revision: rev-42/);
    const p = await loadPolicy(await readBundle(readFileSync(out)));
    assert.equal(p.revision, 'rev-42');
    const input = buildCallInput({
      server: 'demo', namespace: 'default', identity: { sub: 'a', team: 'payments' }, request: { tool: 'search_docs', arguments: { query: 'x' } },
      budget: null, annotations: null, nowNs: 1_795_000_000_000_000_000n, mode: 'tollgate',
    });
    assert.equal(p.evaluate(input).allow, true);
  });

  it('build and check point at file:line and exit 1; a clean directory checks clean', async () => {
    const dir = write(scratch(), {
      'authz.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if {\n\thttp.send({"method": "get", "url": "http://x"}).status_code == 200\n}\n',
    });
    const b = await policy(['build', dir, '-o', join(dir, 'b.tar.gz')]);
    assert.equal(b.code, 1);
    assert.ok(b.err.includes(`${join(dir, 'authz.rego')}:6`), b.err);
    assert.match(b.err, /http\.send is a Rego builtin, but not one Tollgate can evaluate/);
    const c = await policy(['check', dir]);
    assert.equal(c.code, 1);
    assert.ok(c.err.includes(`${join(dir, 'authz.rego')}:6`), c.err);

    const ok = await policy(['check', REPO_POLICIES]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /no problems/);
  });

  it('fmt lists, fails and rewrites', async () => {
    const dir = write(scratch(), { 'authz.rego': 'package tollgate.authz\ndefault allow:=false\n' });
    const list = await policy(['fmt', dir]);
    assert.equal(list.code, 0);
    assert.equal(list.out.trim(), join(dir, 'authz.rego'));
    assert.equal((await policy(['fmt', dir, '--fail'])).code, 1);
    const w = await policy(['fmt', dir, '--write']);
    assert.equal(w.code, 0);
    assert.equal(readFileSync(join(dir, 'authz.rego'), 'utf8'), 'package tollgate.authz\n\ndefault allow := false\n');
    const after = await policy(['fmt', dir, '--fail']);
    assert.equal(after.code, 0);
    assert.equal(after.out, '');
  });

  it('answers bad usage with exit 2 and documents every flag', async () => {
    const bad = await policy(['build', '--nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /tollgate policy build: .*--nope/);
    assert.equal((await policy(['frobnicate'])).code, 2);
    assert.equal((await policy([])).code, 2);
    assert.equal((await policy(['explain', '--tool', 'x'])).code, 2);
    assert.equal((await policy(['replay', '--logs', 'x'])).code, 2);
    assert.equal((await policy(['fmt', '--write', '--list'])).code, 2);
    const flags: Record<string, string[]> = {
      build: ['--output', '--revision', '--entrypoint'],
      check: ['--no-tests'],
      fmt: ['--write', '--list', '--fail'],
      test: ['--scenarios', '--run', '--coverage', '--json', '--verbose'],
      explain: ['--as', '--team', '--groups', '--agent', '--scopes', '--claims', '--tool', '--args', '--method', '--params', '--annotations', '--header', '--server', '--namespace', '--time', '--policies', '--entrypoint', '--trace', '--json'],
      replay: ['--logs', '--policies', '--since', '--until', '--tool', '--team', '--server', '--entrypoint', '--examples', '--stream', '--subject-prefix', '--fail-on-change', '--json'],
    };
    for (const [sub, fs] of Object.entries(flags)) {
      const h = await policy([sub, '--help']);
      assert.equal(h.code, 0);
      for (const f of fs) assert.ok(h.out.includes(f), `${sub} --help lacks ${f}`);
    }
  });
});
