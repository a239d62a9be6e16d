import { strict as assert } from 'node:assert';
import { dynamicClusters, dynamicEndpoints, dynamicRouteConfigs } from '../../../src/envoy/config-dump.js';

/** Readers of Envoy's /config_dump: the xDS resources of each section, by name and version. */
describe('envoy config dump readers', () => {
  const T = 'type.googleapis.com/envoy.admin.v3.';
  const dump = {
    configs: [
      { '@type': `${T}ClustersConfigDump`, version_info: '7', dynamic_active_clusters: [
        { version_info: '7', cluster: { name: 'mcp', type: 'EDS' } },
        { version_info: '3', cluster: { name: 'authz' }, error_state: { details: 'rejected v8' } },
        { version_info: '9' }, // no resource: skipped
        'junk',
      ] },
      { '@type': `${T}RoutesConfigDump`, dynamic_route_configs: [{ version_info: 'r1', route_config: { name: 'local' } }] },
      { '@type': `${T}EndpointsConfigDump`, dynamic_endpoint_configs: [{ version_info: 'e2', endpoint_config: { cluster_name: 'mcp', endpoints: [] } }] },
    ],
  };

  it('lists each section\'s resources with name, version and a kept error state', () => {
    assert.deepEqual(dynamicClusters(dump), [
      { name: 'mcp', versionInfo: '7', config: { name: 'mcp', type: 'EDS' } },
      { name: 'authz', versionInfo: '3', config: { name: 'authz' }, errorState: { details: 'rejected v8' } },
    ]);
    assert.deepEqual(dynamicRouteConfigs(dump), [{ name: 'local', versionInfo: 'r1', config: { name: 'local' } }]);
    assert.deepEqual(dynamicEndpoints(dump).map((e) => [e.name, e.versionInfo]), [['mcp', 'e2']], 'endpoints are named by cluster_name');
  });

  it('reads nothing from a dump without the section, or from no dump at all', () => {
    assert.deepEqual(dynamicRouteConfigs({ configs: [] }), []);
    assert.deepEqual(dynamicClusters(null), []);
    assert.deepEqual(dynamicEndpoints('not a dump'), []);
  });
});
