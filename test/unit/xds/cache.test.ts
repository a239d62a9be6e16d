import { strict as assert } from 'node:assert';
import { sidecarResources, type EnvoyResources, type SidecarSpec } from '../../../src/envoy/resources.js';
import { ResourceTypeUrl } from '../../../src/envoy/types.js';
import { checkConsistency, contentVersion, makeSnapshot, resourceName, SnapshotCache, type Snapshot } from '../../../src/xds/cache.js';

const spec: SidecarSpec = {
  nodeId: 'n1', server: 'weather', namespace: 'team-a',
  listen: { host: '127.0.0.1', port: 10000 }, mcpPath: '/mcp',
  upstream: { host: '127.0.0.1', port: 3000 },
  authz: { host: '127.0.0.1', port: 9191, timeoutMs: 250 },
  maxRequestBytes: 1024 * 1024, resourceMetadata: {}, extProc: true,
};

const empty: EnvoyResources = { listeners: [], routes: [], clusters: [], endpoints: [] };
const snap = (version: string): Snapshot => makeSnapshot({ ...empty, clusters: [{ name: `c-${version}` }] }, version);

describe('snapshot cache', () => {
  it('keeps resources per type URL and names them the way xDS subscribes', () => {
    const s = makeSnapshot(sidecarResources(spec), 'v1');
    assert.equal(s.version, 'v1');
    assert.deepEqual(Object.keys(s.resources).sort(), Object.values(ResourceTypeUrl).sort());
    const cla = s.resources[ResourceTypeUrl.endpoint]![0]!;
    assert.equal(resourceName(ResourceTypeUrl.endpoint, cla), 'tollgate_mcp_upstream');
    assert.deepEqual(checkConsistency(s), []);
  });

  it('is immune to later edits of the input', () => {
    const r = sidecarResources(spec);
    const s = makeSnapshot(r, 'v1');
    r.clusters[0]!.name = 'changed';
    assert.equal(s.resources[ResourceTypeUrl.cluster]![0]!.name, 'tollgate_mcp_upstream');
    assert.throws(() => { (s.resources[ResourceTypeUrl.cluster]![0]! as { name: string }).name = 'x'; }, TypeError);
  });

  it('derives the version from content when none is given', () => {
    const a = contentVersion(sidecarResources(spec));
    assert.equal(contentVersion(sidecarResources(spec)), a);
    assert.notEqual(contentVersion(sidecarResources({ ...spec, authz: { ...spec.authz, timeoutMs: 300 } })), a);
    assert.equal(makeSnapshot(sidecarResources(spec)).version, a);
  });

  it('refuses unnamed or duplicate resources and empty versions', () => {
    assert.throws(() => makeSnapshot({ ...empty, clusters: [{ type: 'STATIC' }] }, 'v'), /has no name/);
    assert.throws(() => makeSnapshot({ ...empty, listeners: [{ name: 'a' }, { name: 'a' }] }, 'v'), /duplicate Listener "a"/);
    assert.throws(() => makeSnapshot(empty, ''), /non-empty/);
  });

  it('finds dangling references', () => {
    const r = sidecarResources(spec);
    const s = makeSnapshot({ ...r, routes: [], endpoints: [] }, 'v');
    const problems = checkConsistency(s);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /route configuration "tollgate_mcp_routes"/);
    assert.match(problems.join('\n'), /EDS cluster "tollgate_authz"/);
    const noCluster = makeSnapshot({ ...r, clusters: r.clusters.filter((c) => c.name !== 'tollgate_mcp_upstream') }, 'v');
    assert.match(checkConsistency(noCluster).join('\n'), /routes to cluster "tollgate_mcp_upstream"/);
  });

  it('gives a node its own snapshot, else the default, else none', () => {
    const c = new SnapshotCache();
    assert.equal(c.getSnapshot('a'), undefined);
    const d = snap('d1');
    c.setDefaultSnapshot(d);
    assert.equal(c.getSnapshot('a'), d);
    const own = snap('a1');
    c.setSnapshot('a', own);
    assert.equal(c.getSnapshot('a'), own);
    assert.equal(c.getSnapshot('b'), d);
    assert.deepEqual(c.nodeIds(), ['a']);
    c.clearSnapshot('a');
    assert.equal(c.getSnapshot('a'), d);
    assert.equal(c.hasOwnSnapshot('a'), false);
  });

  it('notifies the watchers of a node when its effective snapshot changes, and only then', () => {
    const c = new SnapshotCache();
    const seenA: Array<string | undefined> = [];
    const seenB: Array<string | undefined> = [];
    const stopA = c.watch('a', (s) => seenA.push(s?.version));
    c.watch('b', (s) => seenB.push(s?.version));
    const a1 = snap('a1');
    c.setSnapshot('a', a1);
    c.setSnapshot('a', a1); // same object: nothing new
    c.setDefaultSnapshot(snap('d1')); // a has its own: only b hears
    c.setSnapshot('a', snap('a2'));
    c.clearSnapshot('a'); // falls back to the default
    stopA();
    c.setSnapshot('a', snap('a3'));
    assert.deepEqual(seenA, ['a1', 'a2', 'd1']);
    assert.deepEqual(seenB, ['d1']);
  });

  it('still notifies every watcher when one throws, then reports the error', () => {
    const c = new SnapshotCache();
    const seen: string[] = [];
    c.watch('a', () => { throw new Error('boom'); });
    c.watch('a', (s) => seen.push(s!.version));
    assert.throws(() => c.setSnapshot('a', snap('a1')), /boom/);
    assert.deepEqual(seen, ['a1']);
    assert.equal(c.getSnapshot('a')!.version, 'a1');
  });
});
