import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../../src/envoy/protos.js';
import { AUTHZ_CLUSTER } from '../../../src/envoy/resources.js';
import { dynamicClusters } from '../../../src/envoy/config-dump.js';
import { authzIdentity, LocalMesh, sidecarIdentity } from '../../../src/mesh/local.js';
import { createCa, issueCertificate, type CertFiles } from '../../../src/pki/index.js';
import { formatRegistrations, parseRegistrations } from '../../../src/controlplane/registrations.js';
import { readRecords } from '../../../src/decisionlog/reader.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';
import { eventually, startFakeAuthz, type FakeAuthz } from '../xds/harness.js';
import { tryAds } from './ads-client.js';

/**
 * Issue 10 item 1 (xDS hijack) and item 2 (authz over mTLS), against the mesh `tollgate up` runs:
 * real NATS, control plane, authz and Envoy. A local process tries to re-point the real Envoy at
 * its own allow-all authz over ADS, as the issue reproduced; none of its attempts may change what
 * Envoy runs, and a call without a token must still be refused and recorded.
 */
describe('trust: xDS and authz gRPC only answer mesh workloads (issue 10 items 1, 2)', function () {
  this.timeout(180_000);
  let mesh: LocalMesh;
  let state: string;
  let evil: FakeAuthz;
  const metadata = (): Record<string, string> => ({
    server: 'demo', namespace: 'default', authz_address: `127.0.0.1:${evil.port}`, upstream_port: '1', mcp_port: '1',
  });
  const caPem = (): Buffer => readFileSync(mesh.certs.sidecar.ca);
  const creds = (f: CertFiles): grpc.ChannelCredentials => grpc.credentials.createSsl(caPem(), readFileSync(f.key), readFileSync(f.cert));
  const xds = (): string => mesh.endpoints.xds as string;

  /** Ports Envoy's dynamic clusters point at, from its live config. */
  async function livePorts(): Promise<string> {
    return JSON.stringify(await mesh.envoy.configDump({ includeEds: true }));
  }

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-trust-'));
    evil = await startFakeAuthz();
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state, controlPlane: true,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0, xds: 0, nats: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    await mesh?.stop();
    await evil?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it('Envoy got its config over mTLS ADS, and reaches authz over mTLS with its workload certificate', async () => {
    const dump = await mesh.envoy.configDump({ includeEds: true });
    const authz = dynamicClusters(dump).find((c) => c.name === AUTHZ_CLUSTER);
    assert.ok(authz, 'authz cluster is live');
    const ts = JSON.stringify(authz.config);
    assert.match(ts, /envoy\.transport_sockets\.tls/);
    assert.ok(ts.includes(authzIdentity('default')), 'Envoy checks the authz SAN');
    const static_ = JSON.stringify(dump);
    assert.ok(static_.includes('tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'), 'Envoy checks the control plane SAN');
    // A real call through Envoy: ext_authz and ext_proc both crossed the mTLS channel.
    const c = await connectClient(mesh.endpoints.mcp, await mesh.token({ sub: 'alice', team: 'payments' }));
    const r = await c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    assert.match(JSON.stringify(r), /Refund policy/);
    await c.close();
  });

  it('(a) no client certificate: refused, nothing served', async () => {
    const a = await tryAds(xds(), grpc.credentials.createInsecure(), 'default/demo', metadata());
    a.close();
    assert.notEqual(a.code, null, 'the stream must not stay open');
    assert.notEqual(a.code, grpc.status.OK);
    assert.deepEqual(a.responses, []);
    // TLS without a client certificate: the handshake fails, so no stream is ever opened.
    const b = await tryAds(xds(), grpc.credentials.createSsl(caPem()), 'default/demo', metadata());
    b.close();
    assert.equal(b.code, grpc.status.UNAVAILABLE, b.details);
    assert.deepEqual(b.responses, []);
  });

  it('(b) a certificate from another CA, even with the sidecar\'s own SPIFFE ID: refused', async () => {
    const otherCa = await createCa('not the mesh');
    const forged = await issueCertificate(otherCa, { commonName: 'default/demo', uris: [sidecarIdentity('default', 'demo')], usage: 'client' });
    const a = await tryAds(xds(), grpc.credentials.createSsl(caPem(), Buffer.from(forged.keyPem), Buffer.from(forged.certPem)), 'default/demo', metadata());
    a.close();
    // Refused at the handshake (src/pki/grpc.ts), before any stream.
    assert.equal(a.code, grpc.status.UNAVAILABLE, a.details);
    assert.deepEqual(a.responses, []);
  });

  it('(c) a valid certificate of another workload claiming node default/demo: refused, registered or not', async () => {
    const attacker = await mesh.certs.pki.issue('attacker', { commonName: 'attacker', uris: ['spiffe://tollgate.local/ns/default/sa/attacker'], usage: 'client' });
    const a = await tryAds(xds(), creds(attacker), 'default/demo', metadata());
    a.close();
    assert.equal(a.code, grpc.status.PERMISSION_DENIED, a.details);
    assert.match(a.details, /no sidecar is registered for spiffe:\/\/tollgate\.local\/ns\/default\/sa\/attacker/);
    assert.deepEqual(a.responses, []);

    // A legitimately registered second workload still cannot speak for default/demo.
    const file = join(state, 'sidecar-registrations.yaml');
    const regs = parseRegistrations(readFileSync(file, 'utf8'), file);
    const demo = regs[0]!;
    writeFileSync(file, formatRegistrations([...regs, { ...demo, identity: sidecarIdentity('default', 'other'), nodeId: 'default/other', server: 'other', listen: { host: '127.0.0.1', port: 1 } }]));
    await eventually('the control plane to reload registrations', () => /sidecar registrations updated/.test(mesh.controlPlane!.output), 10_000);
    const other = await mesh.certs.pki.issue('other', { commonName: 'other', uris: [sidecarIdentity('default', 'other')], usage: 'client' });
    const b = await tryAds(xds(), creds(other), 'default/demo', metadata());
    b.close();
    assert.equal(b.code, grpc.status.PERMISSION_DENIED, b.details);
    assert.match(b.details, /node id "default\/demo" does not match the certificate's identity .*sa\/other, which is registered as node "default\/other"/);
    assert.deepEqual(b.responses, []);

    // As itself it is served its own registration; the metadata it sends changes nothing.
    const c = await tryAds(xds(), creds(other), 'default/other', metadata());
    c.close();
    assert.equal(c.code, null, `admitted: ${c.details}`);
    assert.ok(c.responses.length > 0, 'got its own config');

    const log = mesh.controlPlane!.output;
    for (const reason of ['not_registered', 'node_id_mismatch']) assert.match(log, new RegExp(`stream refused.*"reason":"${reason}"`));
    // Callers without a mesh certificate never got a stream to refuse: they failed the handshake.
    assert.doesNotMatch(log, /stream refused.*"reason":"no_certificate"/);
    const metrics = await (await fetch(`${mesh.endpoints.controlPlaneMetrics}/metrics`)).text();
    for (const [reason, n] of [['no_certificate', 0], ['bad_identity', 0], ['not_registered', 1], ['node_id_mismatch', 1]] as const) {
      assert.match(metrics, new RegExp(`tollgate_xds_refused_streams_total\\{reason="${reason}"\\} ${n}\\b`), metrics);
    }
  });

  it('after every attempt the real Envoy still uses the real authz: no token is refused and recorded', async () => {
    // Give any (wrongly) accepted update time to reach Envoy before looking.
    await new Promise((r) => setTimeout(r, 1000));
    const live = await livePorts();
    assert.ok(!live.includes(`"port_value":${evil.port}`), 'the allow-all server is nowhere in Envoy\'s config');
    assert.ok(live.includes(`"port_value":${Number(mesh.endpoints.authz.split(':')[1])}`), 'the real authz is');
    const init = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'delete_records', arguments: { table: 'orders' } } });
    const before = mesh.demo!.requests.length;
    const r = await rawPost(mesh.endpoints.mcp, init);
    assert.equal(r.status, 401, r.text);
    assert.equal(mesh.demo!.requests.length, before, 'nothing reached the MCP server');
    assert.equal(evil.checks.length, 0, 'the allow-all server was never asked');
    const rec = await eventually('the refusal in the decision log', () => {
      for (const { record } of readRecords(join(state, 'decisions'))) {
        if (record.result.http_status === 401 && record.result.error?.startsWith('missing_token')) return record;
      }
      return undefined;
    }, 10_000).catch((e: Error) => { throw new Error(`${e.message}: ${[...readRecords(join(state, 'decisions'))].map((x) => JSON.stringify({ mcp: x.record.mcp, result: x.record.result })).join('\n')}`); });
    assert.equal(rec.result.allow, false);
  });

  it('authz refuses gRPC callers without a mesh certificate, or not the registered sidecar', async () => {
    const method = authorizationService().Check!;
    const check = (c: grpc.ChannelCredentials): Promise<grpc.ServiceError | null> => new Promise((resolve) => {
      const client = new grpc.Client(mesh.endpoints.authz, c);
      client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize,
        { attributes: { request: { http: { method: 'POST', path: '/mcp', headers: {} } } } },
        { deadline: Date.now() + 5000 }, (err) => { client.close(); resolve(err); });
    });
    const plain = await check(grpc.credentials.createInsecure());
    assert.ok(plain && plain.code !== grpc.status.OK, 'plaintext is not served');
    // No client certificate: the TLS handshake fails, nothing is served.
    const noCert = await check(grpc.credentials.createSsl(caPem()));
    assert.equal(noCert?.code, grpc.status.UNAVAILABLE, noCert?.details);
    const attacker = await mesh.certs.pki.issue('attacker', { commonName: 'attacker', uris: ['spiffe://tollgate.local/ns/default/sa/attacker'], usage: 'client' });
    const wrongPeer = await check(creds(attacker));
    assert.equal(wrongPeer?.code, grpc.status.UNAUTHENTICATED);
    assert.match(wrongPeer!.details, /not an allowed caller/);
    // The sidecar's own certificate is answered (a denial: the request has no token).
    assert.equal(await check(creds(mesh.certs.sidecar)), null);
  });
});
