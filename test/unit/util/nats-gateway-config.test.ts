import { strict as assert } from 'node:assert';
import { renderServerConfig, type ServerConfigInput } from '../../../src/nats/server-config.js';
import { DEFAULT_RESOURCES, permissionsFor } from '../../../src/nats/permissions.js';

const base: ServerConfigInput = {
  serverName: 'tollgate-east-n1', host: '127.0.0.1', port: 4222, storeDir: '/data', tls: null, users: [],
  cluster: { name: 'east', host: '127.0.0.1', port: 6222, routes: ['nats-route://127.0.0.1:6222'] },
};
const tls = { cert: '/pki/server.crt', key: '/pki/server.key', ca: '/pki/ca.crt' };
const gateway = { name: 'east', host: '127.0.0.1', port: 7222, gateways: [{ name: 'west', urls: ['nats://10.0.0.2:7222'] }] };

describe('nats-server config: gateways between regions', () => {
  it('with TLS: mutual TLS and only the servers\' own identity may open a gateway', () => {
    const text = renderServerConfig({ ...base, tls, gateway: { ...gateway, peerIdentity: 'spiffe://tollgate.local/ns/tollgate-system/sa/nats' } });
    const block = text.slice(text.indexOf('gateway {'));
    assert.match(block, /name: "east"/);
    assert.match(block, /listen: "127\.0\.0\.1:7222"/);
    assert.match(block, /verify_and_map: true/);
    assert.match(block, /authorization \{ user: "spiffe:\/\/tollgate\.local\/ns\/tollgate-system\/sa\/nats" \}/);
    assert.match(block, /\{ name: "west", urls: \["nats:\/\/10\.0\.0\.2:7222"\] \}/);
    assert.doesNotMatch(block, /advertise/);
    assert.match(renderServerConfig({ ...base, gateway: { ...gateway, advertise: 'gw.east.example:443' } }), /advertise: "gw\.east\.example:443"/);
  });

  it('refuses a TLS gateway without the peer identity, and a gateway named unlike its cluster', () => {
    assert.throws(() => renderServerConfig({ ...base, tls, gateway }), /needs the identity its peers present/);
    assert.throws(() => renderServerConfig({ ...base, gateway: { ...gateway, name: 'west' } }), /gateway name "west" must equal the cluster name "east"/);
  });

  it('every right on the usage bucket covers each region\'s bucket too', () => {
    const id = 'spiffe://tollgate.local/ns/default/sa/authz';
    const one = permissionsFor('authz', id);
    const regional = permissionsFor('authz', id, { ...DEFAULT_RESOURCES, budgetRegions: ['east', 'west'] });
    for (const region of ['east', 'west']) {
      assert.ok(regional.publish.includes(`$KV.tollgate_budgets_${region}.w.*.*.*`), region);
      // A namespace's sidecars: mesh-wide and their own namespace's usage keys in every region's bucket.
      const sidecar = permissionsFor('authz', id, { ...DEFAULT_RESOURCES, budgetRegions: ['east', 'west'] }, { namespace: 'team-a' });
      assert.ok(sidecar.publish.includes(`$KV.tollgate_budgets_${region}.w.team-a.*.*`), region);
      assert.ok(sidecar.publish.includes(`$KV.tollgate_budgets_${region}.w._.*.*`), region);
      assert.ok(!sidecar.publish.some((s) => s.startsWith(`$KV.tollgate_budgets_${region}.`) && !s.includes('.w.team-a.') && !s.includes('.w._.')), region);
      assert.ok(regional.publish.includes(`$JS.API.DIRECT.GET.KV_tollgate_budgets_${region}.>`), region);
      assert.ok(!one.publish.some((s) => s.includes(`tollgate_budgets_${region}`)), `no ${region} rights without regions`);
    }
    const cp = permissionsFor('controlplane', 'spiffe://tollgate.local/ns/tollgate-system/sa/controlplane', { ...DEFAULT_RESOURCES, budgetRegions: ['west'] });
    assert.ok(cp.publish.includes('$JS.API.STREAM.CREATE.KV_tollgate_budgets_west'), 'the control plane creates the regional bucket');
  });
});
