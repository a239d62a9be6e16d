import { strict as assert } from 'node:assert';
import { encodeProtoJson, messageFromProtoJson, packAny, ProtoJsonError, unpackAny } from '../../../src/envoy/protojson.js';
import { authorizationService, aggregatedDiscoveryService, externalProcessorService, messageType, typeUrlOf } from '../../../src/envoy/protos.js';

describe('Envoy protos', () => {
  it('loads once and exposes the ext_authz, ext_proc and ADS services', () => {
    assert.deepEqual(Object.keys(authorizationService()), ['Check']);
    assert.deepEqual(Object.keys(externalProcessorService()), ['Process']);
    assert.deepEqual(Object.keys(aggregatedDiscoveryService()).sort(), ['DeltaAggregatedResources', 'StreamAggregatedResources']);
    assert.equal(authorizationService(), authorizationService(), 'cached');
    const check = authorizationService().Check!;
    assert.equal(check.path, '/envoy.service.auth.v3.Authorization/Check');
    assert.equal(check.requestStream, false);
  });

  it('(de)serializes with camelCase fields and enum names', () => {
    const check = authorizationService().Check!;
    const bytes = check.responseSerialize({ status: { code: 7 }, deniedResponse: { status: { code: 'Forbidden' }, body: 'no' } });
    const back = messageType('envoy.service.auth.v3.CheckResponse').decode(bytes).toJSON();
    assert.deepEqual(back.deniedResponse, { status: { code: 'Forbidden' }, body: 'no' });
  });

  it('builds type URLs', () => {
    assert.equal(typeUrlOf('envoy.config.listener.v3.Listener'), 'type.googleapis.com/envoy.config.listener.v3.Listener');
    assert.equal(typeUrlOf('.envoy.config.listener.v3.Listener'), 'type.googleapis.com/envoy.config.listener.v3.Listener');
  });
});

describe('proto3 JSON → protobuf', () => {
  it('reads snake_case and camelCase keys, duration strings, wrappers and Struct', () => {
    const m = messageFromProtoJson('envoy.config.cluster.v3.Cluster', {
      name: 'c', connect_timeout: '1.250s', perConnectionBufferLimitBytes: 1024,
      metadata: { filter_metadata: { tollgate: { team: 'a', n: 2, ok: true, list: [1, 'x'], nested: { none: null } } } },
    }).toJSON();
    assert.deepEqual(m.connectTimeout, { seconds: '1', nanos: 250_000_000 });
    assert.deepEqual(m.perConnectionBufferLimitBytes, { value: 1024 });
    const fields = m.metadata.filterMetadata.tollgate.fields;
    assert.deepEqual(fields.team, { stringValue: 'a' });
    assert.deepEqual(fields.list.listValue.values, [{ numberValue: 1 }, { stringValue: 'x' }]);
    assert.deepEqual(fields.nested.structValue.fields.none, { nullValue: 'NULL_VALUE' });
  });

  it('packs nested Any by "@type" and round-trips', () => {
    const any = packAny({
      '@type': typeUrlOf('envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute'),
      check_settings: { context_extensions: { server: 's' } },
    });
    assert.equal(any.type_url, 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute');
    assert.deepEqual(unpackAny(any), {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
      checkSettings: { contextExtensions: { server: 's' } },
    });
  });

  it('refuses what it does not know instead of dropping it', () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ['envoy.config.listener.v3.Listener', { name: 'l', bogus: 1 }, /Listener\.bogus: unknown field/],
      ['envoy.config.cluster.v3.Cluster', { connect_timeout: 5 }, /duration/],
      ['envoy.config.cluster.v3.Cluster', { connect_timeout: '5m' }, /invalid duration/],
      ['envoy.config.cluster.v3.Cluster', { type: 'NOPE' }, /invalid enum value/],
      ['envoy.config.cluster.v3.Cluster', { name: 7 }, /expected a string/],
      ['envoy.config.cluster.v3.Cluster', { type: 'STATIC', cluster_type: { name: 'x' } }, /oneof/],
      ['envoy.config.core.v3.SocketAddress', { port_value: -1 }, /out of range/],
      ['envoy.config.listener.v3.Filter', { name: 'f', typed_config: { '@type': 'type.googleapis.com/no.such.Type' } }, /unknown type "no\.such\.Type"/],
      ['envoy.config.listener.v3.Filter', { name: 'f', typed_config: { name: 'x' } }, /needs "@type"/],
      ['envoy.config.listener.v3.Listener', { filter_chains: {} }, /expected an array/],
    ];
    for (const [type, json, re] of bad) {
      assert.throws(() => encodeProtoJson(type, json), (e: unknown) => e instanceof ProtoJsonError && re.test(e.message), `${JSON.stringify(json)} should fail with ${re}`);
    }
  });
});
