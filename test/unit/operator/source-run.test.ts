import { strict as assert } from 'node:assert';
import { childrenFor, InvalidServerSpec } from '../../../src/operator/server-objects.js';
import type { McpServer, McpServerSpec } from '../../../src/operator/types.js';
import { LAUNCH_FILE, serverImageName, TOLLGATE_CLI } from '../../../src/servers/image-contract.js';

interface Ctr { name: string; image?: string; command?: string[]; args?: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[]; ports?: { containerPort: number }[]; securityContext?: Record<string, unknown>; volumeMounts?: unknown[] }

const server = (spec: Partial<McpServerSpec>): McpServer => ({
  apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { namespace: 'tools', name: 'fs', uid: 'u1' },
  spec: { resource: 'https://fs.example.com/mcp', ...spec },
});
const mesh = { systemNamespace: 'tollgate-system', inject: { sidecarMode: 'containers' as const } };

function rendered(s: McpServer, prefix?: string): { pod: { containers: Ctr[]; volumes: unknown[] }; annotations: Record<string, string>; np: Record<string, unknown> } {
  const [dep, , np] = childrenFor(s, { ...mesh, ...(prefix ? { serverImagePrefix: prefix } : {}) });
  const tpl = dep!.spec.template as { metadata: { annotations: Record<string, string> }; spec: { containers: Ctr[]; volumes: unknown[] } };
  return { pod: tpl.spec, annotations: tpl.metadata.annotations, np: np!.spec };
}

describe('operator: MCPServer spec.source rendering', () => {
  it('an npx: source runs tollgate bridge over the derived image, with the sidecars, the profile and no network', () => {
    const { pod, annotations, np } = rendered(server({
      source: { package: 'npx:@modelcontextprotocol/server-filesystem@2026.8.31', args: ['/data'] },
      run: { secretEnv: [{ name: 'API_KEY', secretName: 'fs-keys', key: 'api' }], permissions: { filesystem: [{ path: '/data', sizeLimit: '10Mi' }] } },
    }), 'registry.example/mcp/');
    assert.deepEqual(pod.containers.map((c) => c.name), ['server', 'tollgate-authz', 'tollgate-envoy']);
    const c = pod.containers[0]!;
    assert.equal(c.image, 'registry.example/mcp/tollgate-server-npm/modelcontextprotocol/server-filesystem:2026.8.31');
    assert.deepEqual(c.command!.slice(0, 3), ['node', TOLLGATE_CLI, 'bridge']);
    const flag = (f: string): string[] => c.command!.flatMap((x, i) => (x === f ? [c.command![i + 1]!] : []));
    assert.deepEqual(flag('--port'), ['8080']);
    assert.deepEqual(flag('--host'), ['127.0.0.1']);
    assert.deepEqual(flag('--launch-file'), [LAUNCH_FILE]);
    assert.deepEqual(flag('--allow-host'), ['fs', 'fs.tools', 'fs.tools.svc', 'fs.tools.svc.cluster.local', 'fs.example.com']);
    assert.equal(c.command!.at(-1), '--', 'the source args follow the bridge command as the server\'s own');
    assert.deepEqual(c.args, ['/data']);
    assert.equal(annotations['tollgate.dev/upstream-port'], '8080', 'Envoy forwards to the bridge');
    assert.deepEqual(c.ports!.map((p) => p.containerPort), [8080]);
    assert.deepEqual(c.env!.find((e) => e.name === 'API_KEY'), { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'fs-keys', key: 'api' } } }, 'the secret stays a reference');
    assert.equal(c.securityContext!.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext!.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext!.runAsNonRoot, true);
    assert.deepEqual((c.securityContext!.capabilities as { drop: string[] }).drop, ['ALL']);
    assert.deepEqual(c.volumeMounts, [{ name: 'writable-0', mountPath: '/data' }]);
    const egress = np.egress as { to?: { ipBlock?: unknown }[] }[];
    assert.equal(egress.length, 2, 'DNS and the mesh only: no egress rule for the server');
    assert.ok(!egress.some((e) => e.to?.some((t) => t.ipBlock)), 'no ipBlock without permissions.egress');
  });

  it('uvx: derives the PyPI image name, spec.source.image overrides, spec.run.port moves the bridge', () => {
    const uvx = rendered(server({ source: { package: 'uvx:mcp-server-time==2026.10.19' } })).pod.containers[0]!;
    assert.equal(uvx.image, 'localhost/tollgate-server-pypi/mcp-server-time:2026.10.19');
    assert.equal(uvx.args, undefined);
    const own = rendered(server({ source: { package: 'npx:a@1.0.0', image: 'ghcr.example/me/a:1' }, run: { port: 9000, permissions: { egress: [{ cidr: '203.0.113.0/24', ports: [443] }] } } }));
    assert.equal(own.pod.containers[0]!.image, 'ghcr.example/me/a:1');
    assert.ok(own.pod.containers[0]!.command!.includes('9000'));
    assert.equal(own.annotations['tollgate.dev/upstream-port'], '9000');
    assert.deepEqual((own.np.egress as unknown[])[2], { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    assert.equal(serverImageName({ kind: 'image', ref: 'quay.example/x/y:2' }), 'quay.example/x/y:2', 'an image: source names its image');
    assert.notEqual(serverImageName({ kind: 'npx', pkg: '@a/b', version: '1' }), serverImageName({ kind: 'npx', pkg: 'a-b', version: '1' }), 'a scope never collides with an unscoped name');
    const tag = (pkg: string, version: string, kind: 'npx' | 'uvx' = 'npx'): string => serverImageName({ kind, pkg, version });
    assert.notEqual(tag('a', '1.0.0+x'), tag('a', '1.0.0-x'), 'build metadata and a pre-release are two images');
    assert.notEqual(tag('a', '1.0.0-RC.1'), tag('a', '1.0.0-rc.1'), 'pre-releases differ by case');
    assert.notEqual(tag('p', '1!2.0', 'uvx'), tag('p', '1-2.0', 'uvx'), 'an epoch is not a dash');
    assert.equal(tag('a', '1.0.0+build.5'), 'localhost/tollgate-server-npm/a:1.0.0_build.5');
    assert.throws(() => tag('a~b', '1.0.0'), /has no image name of its own/);
    assert.throws(() => childrenFor(server({ source: { package: 'npx:a~b@1.0.0' } }), mesh), (e: Error) => e instanceof InvalidServerSpec && /spec\.source\.package: .*"~"/.test(e.message));
  });

  it('a source the CRD should have refused is an InvalidServerSpec, never a Deployment', () => {
    assert.throws(() => childrenFor(server({ source: { package: 'npx:unpinned' } }), mesh), (e: Error) => e instanceof InvalidServerSpec && /has no version: pin one/.test(e.message));
    assert.throws(() => childrenFor(server({ source: { package: 'fs-entry' } }), mesh), /registry entry names are not run by the operator/);
    assert.throws(() => childrenFor(server({ source: { package: 'npx:a@1.0.0' }, run: { image: 'x', port: 1 } }), mesh), /set spec\.source\.image rather than spec\.run\.image/);
  });
});
