import { strict as assert } from 'node:assert';
import { registrationFromPod } from '../../../src/k8s/registrations.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import type { PodLike } from '../../../src/k8s/types.js';

const ctx = { trustDomain: 'tollgate.local', listenHost: '0.0.0.0' };

/** A pod as the API server stores it after the webhook injected it (and then named it). */
function admitted(pod: PodLike, name: string): PodLike {
  const r = injectSidecars(pod);
  assert.ok(r.injected);
  return { ...r.pod, metadata: { ...r.pod.metadata, name } };
}

const base: PodLike = {
  metadata: { generateName: 'weather-7d9f8c6b5-', namespace: 'shop', labels: { 'app.kubernetes.io/name': 'weather' } },
  spec: { serviceAccountName: 'weather-sa', containers: [{ name: 'mcp', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }] },
};

describe('k8s: a sidecar registration from an injected pod', () => {
  it('takes identity from namespace + service account and everything else from the spec', () => {
    const r = registrationFromPod(admitted(base, 'weather-7d9f8c6b5-x1'), { ...ctx, resourceOf: (ns, s) => (ns === 'shop' && s === 'weather' ? 'https://weather.example/mcp' : undefined) });
    assert.ok('registration' in r, JSON.stringify(r));
    assert.deepEqual(r.registration, {
      identity: 'spiffe://tollgate.local/ns/shop/sa/weather-sa', nodeId: 'shop/weather-7d9f8c6b5-x1', podBound: true, server: 'weather',
      namespace: 'shop', listen: { host: '0.0.0.0', port: 10000 }, mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 8080 },
      authz: { host: '127.0.0.1', port: 9191 }, resourceUrl: 'https://weather.example/mcp',
    });
  });

  it('follows the annotations the injector read: ports, path, shared authz; "default" service account', () => {
    const pod: PodLike = {
      metadata: { name: 'w-0', namespace: 'shop', annotations: { 'tollgate.dev/mcp-port': '11000', 'tollgate.dev/upstream-port': 'http', 'tollgate.dev/mcp-path': '/rpc', 'tollgate.dev/authz': 'shared', 'tollgate.dev/server': 'wx' } },
      spec: { containers: [{ name: 'mcp', image: 'x', ports: [{ name: 'metrics', containerPort: 9000 }, { name: 'http', containerPort: 8081 }] }] },
    };
    const r = registrationFromPod(admitted(pod, 'w-0'), ctx);
    assert.ok('registration' in r, JSON.stringify(r));
    assert.equal(r.registration.identity, 'spiffe://tollgate.local/ns/shop/sa/default');
    assert.equal(r.registration.server, 'wx');
    assert.deepEqual([r.registration.listen.port, r.registration.upstream.port, r.registration.mcpPath, r.registration.authz], [11000, 8081, '/rpc', undefined]);
  });

  it('in containers mode the sidecars are ordinary containers, and still not taken for the server', () => {
    const pod = { ...base, spec: { ...base.spec!, containers: [{ name: 'mcp', image: 'x' }] }, metadata: { ...base.metadata, annotations: { 'tollgate.dev/upstream-port': '8080' } } };
    const r0 = injectSidecars(pod, { sidecarMode: 'containers' });
    assert.ok(r0.injected);
    const r = registrationFromPod({ ...r0.pod, metadata: { ...r0.pod.metadata, name: 'weather-1' } }, ctx);
    assert.ok('registration' in r);
    assert.equal(r.registration.upstream.port, 8080);
  });

  it('skips pods that are not injected, unnamed, being deleted or finished, and says why', () => {
    const pod = admitted(base, 'weather-1');
    const why = (p: PodLike): string => {
      const r = registrationFromPod(p, ctx);
      assert.ok('skipped' in r);
      return r.skipped;
    };
    assert.match(why(base), /no namespace or name/);
    assert.match(why({ ...base, metadata: { ...base.metadata, name: 'a' } }), /not injected/);
    assert.match(why({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }), /being deleted/);
    assert.match(why({ ...pod, status: { phase: 'Succeeded' } }), /finished/);
    assert.match(why({ ...pod, spec: { ...pod.spec!, serviceAccountName: 'Bad_Name' } }), /cannot be given an identity/);
    assert.match(why({ ...pod, metadata: { ...pod.metadata, annotations: { ...pod.metadata!.annotations, 'tollgate.dev/mcp-port': 'x' } } }), /not a port number/);
  });

  it('skips a malformed injected pod naming the field, not with a TypeError', () => {
    const pod = admitted(base, 'weather-1');
    const r = registrationFromPod({ ...pod, spec: { ...pod.spec!, containers: [...pod.spec!.containers, null as never] } }, ctx);
    assert.ok('skipped' in r);
    assert.equal(r.skipped, 'pod shop/weather-1: spec.containers[1]: expected an object, got null');
  });
});
