import { strict as assert } from 'node:assert';
import { formatRegistrations, parseRegistrations, type SidecarRegistration } from '../../../src/controlplane/registrations.js';
import { admitNode, indexRegistrations, specFromRegistration, type SidecarDefaults } from '../../../src/controlplane/sidecars.js';
import { NodeRefused } from '../../../src/xds/server.js';
import { CertificateRefused, workloadFromReview } from '../../../src/controlplane/workload-certs.js';
import type { NodeInfo } from '../../../src/xds/protocol.js';

const DEMO = 'spiffe://tollgate.local/ns/default/sa/demo';
const reg: SidecarRegistration = {
  identity: DEMO, nodeId: 'default/demo', server: 'demo', namespace: 'default', listen: { host: '127.0.0.1', port: 10000 },
  mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 3001 }, authz: { host: '127.0.0.1', port: 9191 },
  authzIdentity: 'spiffe://tollgate.local/ns/default/sa/tollgate-authz', resourceUrl: 'http://127.0.0.1:10000/mcp',
};
const defaults: SidecarDefaults = { authz: { host: '10.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://issuer', extProc: true, listenHost: '0.0.0.0' };
const node = (id: string, metadata: NodeInfo['metadata'] = {}): NodeInfo => ({ id, cluster: id, metadata, userAgent: 'envoy' });
const peer = (spiffeId: string, commonName?: string) => ({ spiffeId, identity: { trustDomain: 'tollgate.local', namespace: 'default', serviceAccount: spiffeId.split('/').pop()! }, address: 'ipv4:127.0.0.1:1', ...(commonName ? { commonName } : {}) });

describe('sidecar registrations (what the control plane trusts)', () => {
  it('round-trips through the file tollgate up writes', () => {
    assert.deepEqual(parseRegistrations(formatRegistrations([reg]), 'f'), [reg]);
    assert.deepEqual(parseRegistrations('', 'f'), []);
  });

  it('refuses bad files with the field that is wrong', () => {
    const bad: Array<[string, RegExp]> = [
      ['sidecars: {}', /sidecars: must be a list/],
      ['other: 1', /other: unknown field/],
      ['sidecars: [{identity: "spiffe://x/y", node_id: a, server: s, namespace: default, listen: "1:1", upstream: "1:2"}]', /identity: "spiffe:\/\/x\/y" is not a spiffe/],
      [`sidecars: [{identity: "${DEMO}", node_id: a, server: s, namespace: other, listen: "1:1", upstream: "1:2"}]`, /namespace: "other" is not the namespace of/],
      [`sidecars: [{identity: "${DEMO}", node_id: a, server: s, namespace: default, upstream: "1:2"}]`, /listen: is required/],
      [`sidecars: [{identity: "${DEMO}", node_id: a, server: s, namespace: default, listen: "x", upstream: "1:2"}]`, /listen: expected host:port/],
      [`sidecars: [{identity: "${DEMO}", node_id: a, server: s, namespace: default, listen: "1:1", upstream: "1:2", authz_address: "1:3"}]`, /authz_address: unknown field/],
      [`sidecars: [{identity: "${DEMO}", node_id: a, server: s, namespace: default, listen: "1:1", upstream: "1:2"}, {identity: "${DEMO}", node_id: b, server: s, namespace: default, listen: "1:1", upstream: "1:2"}]`, /registered twice/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseRegistrations(text, 'f.yaml'), re, text);
  });

  it('admits only the registered identity, as its registered node id', () => {
    assert.equal(admitNode(node('default/demo'), peer(DEMO), indexRegistrations([reg])), reg);
    const refused = (n: NodeInfo, p: ReturnType<typeof peer> | null): string => {
      try { admitNode(n, p, indexRegistrations([reg])); } catch (e) { assert.ok(e instanceof NodeRefused); return `${e.reason}: ${e.message}`; }
      assert.fail('admitted');
    };
    assert.match(refused(node('default/demo'), null), /^no_certificate/);
    assert.match(refused(node('default/demo'), peer('spiffe://tollgate.local/ns/default/sa/attacker')), /^not_registered: no sidecar is registered for spiffe:\/\/tollgate\.local\/ns\/default\/sa\/attacker/);
    assert.match(refused(node('default/other'), peer(DEMO)), /^node_id_mismatch: node id "default\/other" does not match/);
  });

  it('serves one identity as several pods, each only as its own pod when the registration is pod-bound', () => {
    const pods = ['default/demo-a', 'default/demo-b'].map((nodeId) => ({ ...reg, nodeId, podBound: true }));
    const other = { ...reg, identity: 'spiffe://tollgate.local/ns/default/sa/other', nodeId: 'default/other-0', podBound: true };
    const idx = indexRegistrations([...pods, other]);
    assert.equal(admitNode(node('default/demo-a'), peer(DEMO, 'default/demo-a'), idx), pods[0]);
    assert.equal(admitNode(node('default/demo-b'), peer(DEMO, 'default/demo-b'), idx), pods[1]);
    const refused = (n: string, p: ReturnType<typeof peer>): string => {
      try { admitNode(node(n), p, idx); } catch (e) { assert.ok(e instanceof NodeRefused); return `${e.reason}: ${e.message}`; }
      assert.fail('admitted');
    };
    // A sibling pod (same service account, its own certificate) cannot take the other's node id.
    assert.match(refused('default/demo-b', peer(DEMO, 'default/demo-a')), /^node_id_mismatch: node id "default\/demo-b" belongs to another pod: the certificate was issued to "default\/demo-a"/);
    // Another service account claiming a registered node id.
    assert.match(refused('default/demo-a', peer(other.identity, 'default/demo-a')), /^node_id_mismatch: .*registered as node "default\/other-0"/);
    assert.match(refused('default/demo-a', peer('spiffe://tollgate.local/ns/evil/sa/demo', 'default/demo-a')), /^not_registered/);
  });

  it('builds the sidecar from the registration and defaults; node metadata cannot reach it', () => {
    const spec = specFromRegistration(reg, defaults);
    assert.deepEqual({ host: spec.authz.host, port: spec.authz.port, tls: spec.authz.tlsIdentity }, { host: '127.0.0.1', port: 9191, tls: reg.authzIdentity });
    assert.deepEqual(spec.upstream, reg.upstream);
    assert.equal(spec.resourceMetadata.resource, reg.resourceUrl);
    const { authz: _a, ...noAuthz } = reg;
    assert.deepEqual({ host: specFromRegistration(noAuthz, defaults).authz.host }, { host: '10.0.0.1' });
  });
});

describe('workload identity from a TokenReview', () => {
  const ok = { authenticated: true, audiences: ['tollgate-controlplane'], user: { username: 'system:serviceaccount:shop:weather', extra: { 'authentication.kubernetes.io/pod-name': ['weather-0'] } } };
  it('maps a pod-bound service-account token to its SPIFFE ID', () => {
    const w = workloadFromReview(ok, 'tollgate-controlplane', 'tollgate.local');
    assert.deepEqual({ id: w.spiffeId, pod: w.pod }, { id: 'spiffe://tollgate.local/ns/shop/sa/weather', pod: 'weather-0' });
  });
  it('refuses anything else with a status and a reason', () => {
    const cases: Array<[object, number, RegExp]> = [
      [{ ...ok, authenticated: false, error: 'expired' }, 401, /did not accept the token: expired/],
      [{ ...ok, audiences: ['other'] }, 403, /not for audience "tollgate-controlplane"/],
      [{ ...ok, user: { username: 'alice', extra: ok.user.extra } }, 403, /"alice" is not a service account/],
      [{ ...ok, user: { username: 'system:serviceaccount:shop:weather' } }, 403, /not bound to a pod/],
      [{ ...ok, user: { ...ok.user, username: 'system:serviceaccount:Shop:weather' } }, 403, /not a service account/],
    ];
    for (const [status, code, re] of cases) {
      assert.throws(() => workloadFromReview(status, 'tollgate-controlplane', 'tollgate.local'), (e: unknown) => e instanceof CertificateRefused && e.status === code && re.test(e.message), JSON.stringify(status));
    }
  });
});
