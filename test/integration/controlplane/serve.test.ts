import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '../../../src/nats/server.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { PolicyControlPlane, type ControlPlaneEvents } from '../../../src/controlplane/serve.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { toolInput, waitFor, writePolicy } from './support.js';
import { closeLinks, plainLink } from '../../support/nats-link.js';

type Seen = Array<[keyof ControlPlaneEvents, string]>;

function record(cp: PolicyControlPlane): Seen {
  const seen: Seen = [];
  cp.on('built', () => seen.push(['built', '']));
  cp.on('unchanged', (e) => seen.push(['unchanged', String(e.revision)]));
  cp.on('published', (e) => seen.push(['published', String(e.pointer.revision)]));
  cp.on('build-failed', (e) => seen.push(['build-failed', e.message]));
  cp.on('publish-failed', (e) => seen.push(['publish-failed', e.message]));
  return seen;
}

describe('control plane serve: directory → opa build → sign → NATS → authz', function () {
  this.timeout(120000);
  let srv: NatsServer;
  let dir: string;
  let keys: Awaited<ReturnType<typeof keyPair>>;
  const running: Array<{ stop(): Promise<void> }> = [];

  before(async () => { keys = await keyPair('ES256'); });
  beforeEach(async () => {
    srv = await NatsServer.start();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-serve-'));
  });
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop();
    await closeLinks();
    await srv.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const controlPlane = (policiesDir = dir): PolicyControlPlane => {
    const cp = new PolicyControlPlane({ policiesDir, signingKey: keys.signing, nats: plainLink(srv.url), debounceMs: 50, pollMs: 500, retryMs: 200 });
    running.push(cp);
    return cp;
  };

  it('publishes each good edit, never a broken one, and authz follows', async () => {
    writePolicy(dir, ['a']);
    const cp = controlPlane();
    const seen = record(cp);
    await cp.start();
    assert.deepEqual(seen, [['built', ''], ['published', '1']]);

    const holder = new PolicyHolder();
    const src = new NatsBundleSource({ holder, nats: plainLink(srv.url), keys: [keys.verification] });
    running.push(src);
    await src.start();
    assert.equal(await src.whenLoaded(), '1');
    assert.equal(holder.get()!.evaluate(toolInput('a')).allow, true);

    writePolicy(dir, ['a', 'b']);
    await waitFor(() => holder.get()!.revision === '2', 'authz on revision 2', () => ({ seen, cp: cp.status(), src: src.status() }));
    assert.equal(holder.get()!.evaluate(toolInput('b')).allow, true);

    seen.length = 0;
    writeFileSync(join(dir, 'authz.rego'), 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.mcp.tool == undefined_var\n');
    await waitFor(() => seen.some(([k]) => k === 'build-failed'), 'a build failure', () => seen);
    const failure = seen.find(([k]) => k === 'build-failed')![1];
    // Names the file and the problem (the exact file:line layout is build.ts's concern).
    assert.match(failure, /authz\.rego/);
    assert.match(failure, /var undefined_var is unsafe/);
    assert.ok(!seen.some(([k]) => k === 'published'), `published a broken build: ${JSON.stringify(seen)}`);
    assert.equal(cp.status().revision, 2);
    assert.equal(holder.get()!.revision, '2');
    assert.equal(src.status().rejections, 0);
  });

  it('a restart with unchanged sources publishes nothing; a changed one takes the next revision', async () => {
    writePolicy(dir, ['a']);
    const first = controlPlane();
    await first.start();
    assert.equal(first.status().revision, 1);
    await first.stop();

    const second = controlPlane();
    const seen = record(second);
    await second.start();
    assert.deepEqual(seen, [['built', ''], ['unchanged', '1']]);
    await second.stop();

    writePolicy(dir, ['b']);
    const third = controlPlane();
    const seen3 = record(third);
    await third.start();
    assert.deepEqual(seen3, [['built', ''], ['published', '2']]);
  });

  it('two control planes with one key and the same sources (one per region) publish each change once and never correct each other', async () => {
    const other = mkdtempSync(join(tmpdir(), 'tollgate-serve-b-'));
    try {
      writePolicy(dir, ['a']);
      writePolicy(other, ['a']);
      const east = controlPlane();
      const west = controlPlane(other);
      const seen = [record(east), record(west)];
      const corrected: string[] = [];
      for (const cp of [east, west]) cp.on('pointer-corrected', (e) => corrected.push(e.found));
      await Promise.all([east.start(), west.start()]);
      const published = (): string[] => seen.flat().filter(([k]) => k === 'published').map(([, r]) => r);
      assert.deepEqual(published(), ['1'], JSON.stringify(seen));
      // The same edit lands in both regions' ConfigMaps at about the same time.
      writePolicy(dir, ['a', 'b']);
      writePolicy(other, ['a', 'b']);
      await waitFor(() => east.status().revision === 2 && west.status().revision === 2, 'both at revision 2', () => seen);
      await new Promise((r) => setTimeout(r, 1500)); // a late rebuild would publish a revision 3
      // Either region may publish either revision; each revision exactly once.
      assert.deepEqual(published().sort(), ['1', '2'], JSON.stringify(seen));
      assert.deepEqual(corrected, []);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('retries a publish that failed while NATS was down', async () => {
    writePolicy(dir, ['a']);
    const cp = controlPlane();
    const seen = record(cp);
    await cp.start();
    await srv.stop();
    writePolicy(dir, ['b']);
    await waitFor(() => seen.some(([k]) => k === 'publish-failed'), 'a failed publish', () => seen);
    assert.equal(cp.status().revision, 1);
    await srv.restart();
    await waitFor(() => cp.status().revision === 2, 'revision 2 once NATS is back', () => ({ seen, st: cp.status() }));
    assert.deepEqual(seen.filter(([k]) => k === 'published').map(([, r]) => r), ['1', '2']);
    assert.equal(cp.status().lastPublishError, null);
  });
});
