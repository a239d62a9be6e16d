import { strict as assert } from 'node:assert';
import { version } from '../../../src/util/version.js';
import { applyPatch } from '../../../src/k8s/jsonpatch.js';
import { InjectionError, injectSidecars } from '../../../src/k8s/mutate.js';
import type { Container, PodLike } from '../../../src/k8s/types.js';
import { deepFreeze, envoyBootstrap, initContainer, kubeletExpand, mcpPod } from './fixtures.js';

type Obj = Record<string, unknown>;

function injected(pod: PodLike, opts = {}): PodLike {
  const r = injectSidecars(pod, opts);
  assert.ok(r.injected, `expected injection, got: ${r.injected ? '' : r.reason}`);
  return r.pod;
}

function meta(boot: Obj): Record<string, string> {
  return (boot.node as { metadata: Record<string, string> }).metadata;
}

function envOf(c: Container): Record<string, unknown> {
  return Object.fromEntries((c.env as { name: string; value?: string; valueFrom?: unknown }[]).map((e) => [e.name, e.value ?? e.valueFrom]));
}

describe('k8s/mutate: injectSidecars', () => {
  it('adds authz then Envoy as native sidecars in front of the MCP server port', () => {
    const pod = injected(mcpPod());
    const spec = pod.spec!;
    assert.deepEqual(spec.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
    for (const c of spec.initContainers!) assert.equal(c.restartPolicy, 'Always', `${c.name} must be a native sidecar`);
    assert.deepEqual(spec.containers.map((c) => c.name), ['server'], 'the app container is untouched');
    assert.deepEqual(spec.containers[0], mcpPod().spec!.containers[0]);

    const envoy = initContainer(pod, 'tollgate-envoy');
    assert.equal(envoy.image, 'envoyproxy/envoy:v1.40.0');
    assert.deepEqual(envoy.command, ['envoy']);
    assert.deepEqual((envoy.ports ?? []).map((p) => [p.name, p.containerPort]), [['tollgate-mcp', 10000], ['tollgate-health', 9902]]);
    const boot = envoyBootstrap(envoy);
    assert.equal((boot.node as Obj).id, 'mcp-demo/weather-7d9f8c6b5-');
    assert.equal((boot.node as Obj).cluster, 'mcp-demo/weather');
    assert.deepEqual(meta(boot), {
      server: 'weather', namespace: 'mcp-demo', pod: 'weather-7d9f8c6b5-', mcp_port: '10000', mcp_path: '/mcp',
      upstream_host: '127.0.0.1', upstream_port: '8080', authz_mode: 'sidecar', authz_address: '127.0.0.1:9191', injector_version: version,
    });
    const xds = JSON.stringify((boot.static_resources as { clusters: Obj[] }).clusters.find((c) => c.name === 'tollgate_xds'));
    assert.match(xds, /"address":"tollgate-controlplane\.tollgate-system\.svc","port_value":18000/);
    assert.deepEqual(Object.keys(boot.dynamic_resources as Obj).sort(), ['ads_config', 'cds_config', 'lds_config']);
    // Admin stays on loopback; only the health listener is on the pod IP.
    assert.match(JSON.stringify(boot.admin), /"address":"127\.0\.0\.1","port_value":9901/);

    const authz = initContainer(pod, 'tollgate-authz');
    assert.equal(authz.image, `ghcr.io/tollgate/tollgate:${version}`);
    // The pod's namespace: the budgets its namespace's NATS credential may charge.
    assert.deepEqual(authz.args, ['authz', '--config', '/etc/tollgate/authz.yaml', '--budget-namespace', 'mcp-demo']);
    // Its V8 young generation is capped: the memory every governed pod pays (src/authz/node-flags.ts).
    assert.match(String(envOf(authz).NODE_OPTIONS), /(^| )--max-semi-space-size=2( |$)/);
    assert.deepEqual(spec.volumes, [
      { name: 'tollgate-authz-config', configMap: { name: 'tollgate-authz' } },
      { name: 'tollgate-authz-state', emptyDir: { sizeLimit: '1Gi' } },
      { name: 'tollgate-nats-authz', secret: { secretName: 'tollgate-nats-authz', optional: true } },
    ]);
    // The namespace's NATS credential (controlplane nats-certs --sidecar-namespace), read-only, authz only.
    assert.deepEqual((authz.volumeMounts as Obj[]).find((m) => m.name === 'tollgate-nats-authz'), { name: 'tollgate-nats-authz', mountPath: '/etc/tollgate-nats', readOnly: true });
    assert.ok(!(initContainer(pod, 'tollgate-envoy').volumeMounts as Obj[] | undefined ?? []).some((m) => m.name === 'tollgate-nats-authz'));
    assert.equal(pod.metadata!.annotations!['tollgate.dev/injected'], version);
  });

  it('gives the real pod name to Envoy at run time through the downward API', () => {
    const envoy = initContainer(injected(mcpPod()), 'tollgate-envoy');
    const args = envoy.args as string[];
    assert.equal(args[args.indexOf('--service-node') + 1], '$(TOLLGATE_NODE_ID)');
    const env = envOf(envoy);
    assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(env.TOLLGATE_NODE_ID, '$(POD_NAMESPACE)/$(POD_NAME)');
    const expanded = kubeletExpand(kubeletExpand(args[args.indexOf('--service-node') + 1] as string, { TOLLGATE_NODE_ID: env.TOLLGATE_NODE_ID as string }), { POD_NAMESPACE: 'mcp-demo', POD_NAME: 'weather-7d9f8c6b5-x2k4q' });
    assert.equal(expanded, 'mcp-demo/weather-7d9f8c6b5-x2k4q');
  });

  it('hardens both sidecars: non-root, read-only root, no capabilities, requests and limits, readiness', () => {
    const pod = injected(mcpPod());
    for (const c of pod.spec!.initContainers!) {
      const sc = c.securityContext as Obj;
      assert.equal(sc.runAsNonRoot, true, c.name);
      assert.ok(typeof sc.runAsUser === 'number' && sc.runAsUser > 0, c.name);
      assert.equal(sc.readOnlyRootFilesystem, true, c.name);
      assert.equal(sc.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, c.name);
      const res = c.resources as { requests: Obj; limits: Obj };
      for (const k of ['cpu', 'memory']) {
        assert.ok(res.requests[k], `${c.name} requests.${k}`);
        assert.ok(res.limits[k], `${c.name} limits.${k}`);
      }
      assert.ok(c.readinessProbe, `${c.name} readinessProbe`);
    }
    const envoy = initContainer(pod, 'tollgate-envoy');
    assert.deepEqual((envoy.readinessProbe as Obj).httpGet, { path: '/ready', port: 9902 });
    const listener = JSON.stringify((envoyBootstrap(envoy).static_resources as { listeners: Obj[] }).listeners);
    assert.match(listener, /"port_value":9902/);
    assert.match(listener, /"path":"\/ready"/);
    assert.match(listener, /"cluster":"tollgate_admin"/);
  });

  it('takes the server name from the annotation, then app.kubernetes.io/name, then app', () => {
    const name = (p: PodLike): string => meta(envoyBootstrap(initContainer(injected(p), 'tollgate-envoy'))).server as string;
    assert.equal(name(mcpPod({ annotations: { 'tollgate.dev/server': 'forecast' } })), 'forecast');
    assert.equal(name(mcpPod()), 'weather');
    const p = mcpPod();
    p.metadata!.labels = { app: 'legacy' };
    assert.equal(name(p), 'legacy');
    p.metadata!.labels = {};
    assert.equal(name(p), 'weather-7d9f8c6b5', 'falls back to the pod name without the trailing dash');
  });

  it('honours the port annotations (numbers and container port names) and the default-container annotation', () => {
    const m = (p: PodLike): Record<string, string> => meta(envoyBootstrap(initContainer(injected(p), 'tollgate-envoy')));
    const a = m(mcpPod({ annotations: { 'tollgate.dev/mcp-port': '9000', 'tollgate.dev/upstream-port': '8081', 'tollgate.dev/mcp-path': '/v1/mcp' } }));
    assert.equal(a.mcp_port, '9000');
    assert.equal(a.upstream_port, '8081');
    assert.equal(a.mcp_path, '/v1/mcp');
    const envoy = initContainer(injected(mcpPod({ annotations: { 'tollgate.dev/mcp-port': '9000' } })), 'tollgate-envoy');
    assert.equal(envoy.ports![0]!.containerPort, 9000);

    const two = mcpPod({ annotations: { 'tollgate.dev/upstream-port': 'mcp' } });
    two.spec!.containers.push({ name: 'sidecar-app', image: 'x', ports: [{ name: 'mcp', containerPort: 3001 }] });
    assert.equal(m(two).upstream_port, '3001');

    const dflt = mcpPod({ annotations: { 'kubectl.kubernetes.io/default-container': 'main' } });
    dflt.spec!.containers.push({ name: 'main', image: 'x', ports: [{ containerPort: 7000 }] });
    assert.equal(m(dflt).upstream_port, '7000');
  });

  it('leaves pods that opted out (annotation or label) unchanged', () => {
    for (const p of [mcpPod({ annotations: { 'tollgate.dev/inject': 'false' } }), mcpPod({ labels: { 'tollgate.dev/inject': 'false' } })]) {
      const r = injectSidecars(p);
      assert.equal(r.injected, false);
      assert.deepEqual(r.patch, []);
      assert.deepEqual(r.pod, p);
      assert.match(r.injected ? '' : r.reason, /opted out/);
    }
  });

  it('is idempotent: an injected pod is returned unchanged', () => {
    const once = injected(mcpPod());
    const twice = injectSidecars(once);
    assert.equal(twice.injected, false);
    assert.deepEqual(twice.patch, []);
    assert.deepEqual(twice.pod, once);
    assert.match(twice.injected ? '' : twice.reason, /already injected/);
    // Even with the marker removed, existing sidecars are never added twice.
    const stripped = structuredClone(once);
    delete stripped.metadata!.annotations!['tollgate.dev/injected'];
    const again = injectSidecars(stripped);
    assert.equal(again.injected, false);
    assert.match(again.injected ? '' : again.reason, /already has a "tollgate-authz" container/);
  });

  it('uses the shared authz Service when asked, by annotation or by default (--no-authz)', () => {
    const shared = injected(mcpPod({ annotations: { 'tollgate.dev/authz': 'shared' } }));
    assert.deepEqual(shared.spec!.initContainers!.map((c) => c.name), ['tollgate-envoy']);
    assert.equal(shared.spec!.volumes, undefined);
    const m = meta(envoyBootstrap(initContainer(shared, 'tollgate-envoy')));
    assert.equal(m.authz_mode, 'shared');
    assert.equal(m.authz_address, 'tollgate-authz.tollgate-system.svc:9191');

    const byDefault = injected(mcpPod(), { defaultAuthz: 'shared', sharedAuthz: { host: 'authz.example.svc', port: 9999 } });
    assert.deepEqual(byDefault.spec!.initContainers!.map((c) => c.name), ['tollgate-envoy']);
    assert.equal(meta(envoyBootstrap(initContainer(byDefault, 'tollgate-envoy'))).authz_address, 'authz.example.svc:9999');

    const optIn = injected(mcpPod({ annotations: { 'tollgate.dev/authz': 'sidecar', 'tollgate.dev/authz-config': 'team-a-authz' } }), { defaultAuthz: 'shared' });
    assert.deepEqual(optIn.spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
    assert.deepEqual(optIn.spec!.volumes![0], { name: 'tollgate-authz-config', configMap: { name: 'team-a-authz' } });
  });

  it('applies images, control plane and namespace options', () => {
    const p = mcpPod();
    delete p.metadata!.namespace;
    const pod = injected(p, { envoyImage: 'registry.local/envoy:1', authzImage: 'registry.local/tollgate:2', controlPlane: { host: '10.0.0.7', port: 18001 }, namespace: 'from-request' });
    const envoy = initContainer(pod, 'tollgate-envoy');
    assert.equal(envoy.image, 'registry.local/envoy:1');
    assert.equal(initContainer(pod, 'tollgate-authz').image, 'registry.local/tollgate:2');
    const boot = envoyBootstrap(envoy);
    assert.equal((boot.node as Obj).id, 'from-request/weather-7d9f8c6b5-');
    const xds = (boot.static_resources as { clusters: Obj[] }).clusters.find((c) => c.name === 'tollgate_xds')!;
    assert.equal(xds.type, 'STATIC', 'an IP control plane needs no DNS');
    assert.match(JSON.stringify(xds), /"address":"10\.0\.0\.7","port_value":18001/);
  });

  it('keeps existing init containers and volumes, after its own sidecars', () => {
    const p = mcpPod();
    p.spec!.initContainers = [{ name: 'migrate', image: 'migrate:1' }];
    p.spec!.volumes = [{ name: 'data', emptyDir: {} }];
    const pod = injected(p);
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy', 'migrate']);
    assert.deepEqual(pod.spec!.volumes!.map((v) => v.name), ['data', 'tollgate-authz-config', 'tollgate-authz-state', 'tollgate-nats-authz']);
  });

  it('returns a JSON Patch of adds that rebuilds exactly the returned pod, without touching the input', () => {
    const p = deepFreeze(mcpPod({ annotations: { 'example.com/keep': 'yes' } }));
    const r = injectSidecars(p);
    assert.ok(r.injected);
    assert.ok(r.patch.every((op) => op.op === 'add'));
    assert.ok(r.patch.some((op) => op.path === '/metadata/annotations/tollgate.dev~1injected'));
    assert.deepEqual(applyPatch(p, r.patch), r.pod);
    assert.equal(r.pod.metadata!.annotations!['example.com/keep'], 'yes');
  });

  it('escapes $ so the kubelet passes annotation values to Envoy literally', () => {
    const pod = injected(mcpPod({ annotations: { 'tollgate.dev/server': 'cost$(HOME)x' } }));
    const envoy = initContainer(pod, 'tollgate-envoy');
    const raw = (envoy.args as string[])[1] as string;
    assert.ok(raw.includes('cost$$(HOME)x'));
    assert.equal(meta(envoyBootstrap(envoy)).server, 'cost$(HOME)x');
  });

  const refusals: [string, () => PodLike, RegExp][] = [
    ['no port to govern', () => { const p = mcpPod(); delete p.spec!.containers[0]!.ports; return p; }, /no container declares a TCP port.*tollgate\.dev\/upstream-port/],
    ['Envoy port equal to the server port', () => mcpPod({ annotations: { 'tollgate.dev/upstream-port': '10000' } }), /port 10000.*tollgate\.dev\/mcp-port|set tollgate\.dev\/mcp-port/],
    ['an app container on the authz port', () => { const p = mcpPod(); p.spec!.containers.push({ name: 'metrics', image: 'm', ports: [{ containerPort: 9191 }] }); return p; }, /port 9191 is needed by the authz sidecar \(or set tollgate\.dev\/authz: "shared"\) but container "metrics"/],
    ['a bad port annotation', () => mcpPod({ annotations: { 'tollgate.dev/mcp-port': '70000' } }), /tollgate\.dev\/mcp-port 70000 is not between 1 and 65535/],
    ['a non-numeric port annotation', () => mcpPod({ annotations: { 'tollgate.dev/mcp-port': 'ten' } }), /"ten" is not a port number/],
    ['an unknown upstream port name', () => mcpPod({ annotations: { 'tollgate.dev/upstream-port': 'grpc' } }), /"grpc" is neither a port number nor the name/],
    ['a bad authz mode', () => mcpPod({ annotations: { 'tollgate.dev/authz': 'none' } }), /must be "sidecar" or "shared", not "none"/],
    ['a bad MCP path', () => mcpPod({ annotations: { 'tollgate.dev/mcp-path': 'mcp/' } }), /tollgate\.dev\/mcp-path "mcp\/" must start with "\/"/],
    ['hostNetwork', () => { const p = mcpPod(); p.spec!.hostNetwork = true; return p; }, /hostNetwork/],
  ];
  for (const [name, make, message] of refusals) {
    it(`refuses ${name} with a message that says what to change`, () => {
      assert.throws(() => injectSidecars(make()), (e: unknown) => e instanceof InjectionError && message.test(e.message) && e.message.startsWith('pod mcp-demo/weather-7d9f8c6b5-:'));
    });
  }
});

describe('k8s/mutate: malformed pods', () => {
  // As read from YAML: unquoted values, wrong types. Each must be refused with the field named,
  // never injected on a misreading, never a TypeError.
  type Spoil = (p: PodLike) => void;
  const set = (p: PodLike, f: (o: Obj) => void): void => f(p as unknown as Obj);
  const spec = (p: PodLike): Obj => p.spec as unknown as Obj;
  const server = (p: PodLike): Obj => p.spec!.containers[0] as unknown as Obj;
  const annotate = (key: string, value: unknown): Spoil => (p) => { p.metadata!.annotations = { [key]: value } as Record<string, string>; };
  const cases: [string, Spoil, string][] = [
    ['an unquoted (boolean) opt-out annotation', annotate('tollgate.dev/inject', false),
      'metadata.annotations["tollgate.dev/inject"]: expected a string, got false: Kubernetes annotation values are strings, so quote it in the YAML (tollgate.dev/inject: "false")'],
    ['an unquoted (boolean) opt-out label', (p) => { (p.metadata!.labels as Obj)['tollgate.dev/inject'] = false; },
      'metadata.labels["tollgate.dev/inject"]: expected a string, got false: Kubernetes label values are strings, so quote it in the YAML (tollgate.dev/inject: "false")'],
    ['an unquoted (number) mcp-port annotation', annotate('tollgate.dev/mcp-port', 10001),
      'metadata.annotations["tollgate.dev/mcp-port"]: expected a string, got 10001: Kubernetes annotation values are strings, so quote it in the YAML (tollgate.dev/mcp-port: "10001")'],
    ['an unquoted (number) upstream-port annotation', annotate('tollgate.dev/upstream-port', 8080),
      'metadata.annotations["tollgate.dev/upstream-port"]: expected a string, got 8080: Kubernetes annotation values are strings, so quote it in the YAML (tollgate.dev/upstream-port: "8080")'],
    ['a non-string name', (p) => set(p, (o) => { o.metadata = { name: 123 }; }), 'metadata.name: expected a string, got 123'],
    ['containers that are no objects', (p) => { spec(p).containers = [5, null]; }, 'spec.containers[0]: expected an object, got 5'],
    ['a null container after a good one', (p) => { (p.spec!.containers as unknown[]).push(null); }, 'spec.containers[1]: expected an object, got null'],
    ['a container without a name', (p) => { delete server(p).name; }, 'spec.containers[0].name: missing (expected a non-empty string)'],
    ['ports given as a string', (p) => { server(p).ports = '8080'; }, 'spec.containers[0].ports: expected a list, got "8080"'],
    ['a null port', (p) => { server(p).ports = [null]; }, 'spec.containers[0].ports[0]: expected an object, got null'],
    ['volumes that are no list', (p) => { spec(p).volumes = 5; }, 'spec.volumes: expected a list, got 5'],
    ['a volume without a name', (p) => { spec(p).volumes = [{ emptyDir: {} }]; }, 'spec.volumes[0].name: missing (expected a non-empty string)'],
    ['initContainers that are no list', (p) => { spec(p).initContainers = 5; }, 'spec.initContainers: expected a list, got 5'],
    ['a string hostNetwork', (p) => { spec(p).hostNetwork = 'false'; }, 'spec.hostNetwork: expected true or false, got "false"'],
  ];
  for (const [port, shown] of [[-1, '-1'], [0, '0'], [99999999, '99999999'], [10000.5, '10000.5'], ['8080', '"8080"']] as const) {
    cases.push([`containerPort ${shown}`, (p) => { p.spec!.containers[0]!.ports![0]!.containerPort = port as number; },
      `spec.containers[0].ports[0].containerPort: expected a port number, an integer from 1 to 65535, got ${shown}`]);
  }
  cases.push(['an init container port out of range', (p) => { spec(p).initContainers = [{ name: 'init', image: 'i', ports: [{ containerPort: 70000 }] }]; },
    'spec.initContainers[0].ports[0].containerPort: expected a port number, an integer from 1 to 65535, got 70000']);

  for (const [what, spoil, message] of cases) {
    it(`refuses ${what}, naming the field`, () => {
      const pod = mcpPod();
      spoil(pod);
      assert.throws(() => injectSidecars(pod), (e: unknown) => {
        assert.ok(e instanceof InjectionError, `not an InjectionError: ${String(e)}`);
        assert.equal(e.message.slice(e.message.indexOf(': ') + 2), message);
        assert.ok(e.field, 'the field is given');
        return true;
      });
    });
  }

  it('never injects a pod whose opt-out is a boolean, whatever its value', () => {
    for (const v of [false, true, 0, null]) {
      assert.throws(() => injectSidecars(mcpPod({ annotations: { 'tollgate.dev/inject': v as unknown as string } })), /tollgate\.dev\/inject.*expected a string/);
    }
  });

  it('does not hold a pod that is left alone to the fields it would read', () => {
    const pod = mcpPod({ annotations: { 'tollgate.dev/inject': 'false' } });
    (pod.spec!.containers[0] as unknown as Obj).ports = '8080';
    assert.equal(injectSidecars(pod).injected, false);
  });
});

describe('k8s/mutate: sidecar modes', () => {
  it('native (the default) puts the sidecars in initContainers with restartPolicy Always', () => {
    const spec = injected(mcpPod(), { sidecarMode: 'native' }).spec!;
    assert.deepEqual(spec.initContainers!.map((c) => [c.name, c.restartPolicy]), [['tollgate-authz', 'Always'], ['tollgate-envoy', 'Always']]);
    assert.deepEqual(spec.containers.map((c) => c.name), ['server']);
  });

  it('containers mode appends plain containers after the MCP server, for clusters before 1.29', () => {
    const p = mcpPod();
    p.spec!.initContainers = [{ name: 'migrate', image: 'migrate:1' }];
    const spec = injected(p, { sidecarMode: 'containers' }).spec!;
    assert.deepEqual(spec.containers.map((c) => c.name), ['server', 'tollgate-authz', 'tollgate-envoy'], 'the server stays the first (default) container');
    for (const c of spec.containers) assert.equal(c.restartPolicy, undefined, `${c.name} must be a plain container: restartPolicy on a container is rejected before 1.29`);
    assert.deepEqual(spec.initContainers!.map((c) => c.name), ['migrate'], 'init containers are left alone');
    assert.ok(spec.volumes!.some((v) => v.name === 'tollgate-authz-config'));
  });

  it('containers mode does not inject twice: a pod that already has the sidecars as containers is skipped', () => {
    const once = injected(mcpPod(), { sidecarMode: 'containers' });
    delete once.metadata!.annotations!['tollgate.dev/injected'];
    const again = injectSidecars(once, { sidecarMode: 'containers' });
    assert.equal(again.injected, false);
    assert.match(again.injected ? '' : again.reason, /already has a "tollgate-authz" container/);
  });
});
