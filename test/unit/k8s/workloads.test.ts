import { strict as assert } from 'node:assert';
import { parseAllDocuments } from 'yaml';
import { applyPatch, getAt, parsePointer } from '../../../src/k8s/jsonpatch.js';
import type { KubeObject, PodLike } from '../../../src/k8s/types.js';
import { injectObject } from '../../../src/k8s/workloads.js';
import { injectYaml } from '../../../src/k8s/yaml-docs.js';
import { envoyBootstrap, initContainer, mcpPod } from './fixtures.js';

function template(): PodLike {
  const p = mcpPod();
  return { metadata: { labels: p.metadata!.labels }, spec: p.spec };
}

function workload(kind: string, apiVersion = 'apps/v1'): KubeObject {
  const base: KubeObject = { apiVersion, kind, metadata: { name: 'weather', namespace: 'mcp-demo' } };
  if (kind === 'CronJob') return { ...base, spec: { schedule: '@hourly', jobTemplate: { spec: { template: template() } } } };
  return { ...base, spec: { replicas: 2, template: template() } };
}

describe('k8s/workloads: injectObject', () => {
  const kinds: [string, string, string][] = [
    ['Deployment', 'apps/v1', '/spec/template'],
    ['StatefulSet', 'apps/v1', '/spec/template'],
    ['DaemonSet', 'apps/v1', '/spec/template'],
    ['ReplicaSet', 'apps/v1', '/spec/template'],
    ['Job', 'batch/v1', '/spec/template'],
    ['CronJob', 'batch/v1', '/spec/jobTemplate/spec/template'],
  ];
  for (const [kind, apiVersion, at] of kinds) {
    it(`injects the pod template of a ${kind}`, () => {
      const obj = workload(kind, apiVersion);
      const r = injectObject(obj);
      assert.equal(r.pods.length, 1);
      assert.equal(r.pods[0]!.at, at);
      assert.ok(r.pods[0]!.result.injected);
      const pod = getAt(r.object, parsePointer(at)) as PodLike;
      assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
      assert.equal(pod.metadata!.annotations!['tollgate.dev/injected'] !== undefined, true);
      // The template has no name: the node id and namespace come from the workload.
      assert.equal((envoyBootstrap(initContainer(pod, 'tollgate-envoy')).node as { id: string }).id, 'mcp-demo/weather-');
      assert.ok(r.patch.every((op) => op.path.startsWith(at + '/')));
      assert.deepEqual(applyPatch(obj, r.patch), r.object);
      assert.equal((r.object.spec as { replicas?: number }).replicas, kind === 'CronJob' ? undefined : 2);
    });
  }

  it('injects a bare Pod at the root', () => {
    const r = injectObject(mcpPod());
    assert.equal(r.pods[0]!.at, '');
    assert.ok(r.patch.some((op) => op.path === '/spec/initContainers'));
  });

  it('injects each pod of a List', () => {
    const list: KubeObject = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }, mcpPod(), workload('Deployment')] };
    const r = injectObject(list);
    assert.deepEqual(r.pods.map((p) => p.at), ['/items/1', '/items/2/spec/template']);
    assert.deepEqual(applyPatch(list, r.patch), r.object);
  });

  it('leaves kinds that run no pods alone', () => {
    const svc: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'weather' }, spec: { ports: [{ port: 80 }] } };
    const r = injectObject(svc);
    assert.deepEqual(r.pods, []);
    assert.deepEqual(r.patch, []);
    assert.equal(r.object, svc);
  });

  it('honours the opt-out on the template', () => {
    const obj = workload('Deployment');
    ((obj.spec as { template: PodLike }).template.metadata!).annotations = { 'tollgate.dev/inject': 'false' };
    const r = injectObject(obj);
    assert.equal(r.pods[0]!.result.injected, false);
    assert.deepEqual(r.patch, []);
  });
});

const STREAM = `# Rendered by hand; comments must survive.
apiVersion: v1
kind: ConfigMap   # odd   spacing is kept byte for byte
metadata: {name: settings, namespace: mcp-demo}
data:
  mode: "strict"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: weather
  namespace: mcp-demo
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: weather}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: weather   # the MCPServer name
    spec:
      containers:
        - name: server
          image: ghcr.io/example/weather-mcp:1.4.2
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:   {name: weather}
spec:
  ports: [{port: 80, targetPort: 10000}]
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  annotations:
    tollgate.dev/inject: "false"
spec:
  containers: [{name: sh, image: busybox}]
`;

describe('k8s/yaml-docs: injectYaml', () => {
  it('injects workloads, copies other documents byte for byte, and keeps comments', () => {
    const { output, documents } = injectYaml(STREAM);
    const inParts = STREAM.split(/^---\n/m);
    const outParts = output.split(/^---\n/m);
    assert.equal(outParts.length, 4);
    assert.equal(outParts[0], inParts[0], 'ConfigMap untouched');
    assert.equal(outParts[2], inParts[2], 'Service untouched');
    assert.equal(outParts[3], inParts[3], 'opted-out Pod untouched');
    assert.match(outParts[1]!, /app\.kubernetes\.io\/name: weather {1,3}# the MCPServer name/);
    assert.deepEqual(documents.map((d) => [d.kind, d.pods.map((p) => p.result.injected)]), [['ConfigMap', []], ['Deployment', [true]], ['Service', []], ['Pod', [false]]]);

    const docs = parseAllDocuments(output);
    assert.ok(Array.isArray(docs));
    for (const d of docs) assert.deepEqual(d.errors, []);
    const dep = docs[1]!.toJS() as KubeObject;
    const pod = (dep.spec as { template: PodLike }).template;
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
    // Equal, as data, to what injectObject makes of the parsed input.
    assert.deepEqual(dep, injectObject(parseAllDocuments(STREAM)[1]!.toJS() as KubeObject).object);
    assert.doesNotMatch(output, /[&*]a\d/, 'no YAML anchors or aliases in the output');
  });

  it('is idempotent on its own output', () => {
    const once = injectYaml(STREAM).output;
    const twice = injectYaml(once);
    assert.equal(twice.output, once);
    assert.match(JSON.stringify(twice.documents[1]!.pods[0]!.result), /already injected/);
  });

  it('passes --no-authz and image options through', () => {
    const { output } = injectYaml(STREAM, { defaultAuthz: 'shared', envoyImage: 'mirror.local/envoy:1.40.0' });
    const dep = parseAllDocuments(output)[1]!.toJS() as KubeObject;
    const pod = (dep.spec as { template: PodLike }).template;
    assert.deepEqual(pod.spec!.initContainers!.map((c) => [c.name, c.image]), [['tollgate-envoy', 'mirror.local/envoy:1.40.0']]);
  });

  it('names the document when YAML is invalid or a pod cannot be governed', () => {
    assert.throws(() => injectYaml('a: 1\n---\nkind: Pod\nmetadata: {name: x\n'), /document 2: invalid YAML/);
    const noPort = 'kind: ConfigMap\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nspec:\n  containers: [{name: a, image: b}]\n';
    assert.throws(() => injectYaml(noPort), /document 2 \(Pod n\/p\): pod n\/p: no container declares a TCP port/);
  });

  describe('refuses documents of the wrong shape, naming the document and the field from its root', () => {
    const pod = (meta: string, spec: string): string => `apiVersion: v1\nkind: Pod\nmetadata: ${meta}\nspec:\n${spec}`;
    const server = '  containers: [{name: server, image: foo, ports: [{containerPort: 8080}]}]\n';
    const deployment = (name: string, podSpec: string): string => `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec:\n  template:\n    spec:\n${podSpec}`;
    const cases: [string, string, string][] = [
      ['an unquoted opt-out annotation', pod('{name: mcp, annotations: {tollgate.dev/inject: false}}', server),
        'document 2 (Pod mcp): metadata.annotations["tollgate.dev/inject"]: expected a string, got false: Kubernetes annotation values are strings, so quote it in the YAML (tollgate.dev/inject: "false")'],
      ['an unquoted port annotation', pod('{name: mcp, annotations: {tollgate.dev/mcp-port: 10001}}', server),
        'document 2 (Pod mcp): metadata.annotations["tollgate.dev/mcp-port"]: expected a string, got 10001: Kubernetes annotation values are strings, so quote it in the YAML (tollgate.dev/mcp-port: "10001")'],
      ['containers that are no objects', pod('{name: x}', '  containers: [5, null]\n'), 'document 2 (Pod x): spec.containers[0]: expected an object, got 5'],
      ['ports given as a string', pod('{name: mcp}', '  containers: [{name: server, ports: "8080"}]\n'), 'document 2 (Pod mcp): spec.containers[0].ports: expected a list, got "8080"'],
      ['a volume without a name', pod('{name: mcp}', `  volumes: [{emptyDir: {}}]\n${server}`), 'document 2 (Pod mcp): spec.volumes[0].name: missing (expected a non-empty string)'],
      ['a numeric name', pod('{name: 123}', server), 'document 2 (Pod 123): metadata.name: expected a string, got 123'],
      ['a negative port', pod('{name: mcp}', '  containers: [{name: server, ports: [{containerPort: -1}]}]\n'),
        'document 2 (Pod mcp): spec.containers[0].ports[0].containerPort: expected a port number, an integer from 1 to 65535, got -1'],
      ['a fractional port in a Deployment', deployment('web', '      containers: [{name: s, ports: [{containerPort: 10000.5}]}]\n'),
        'document 2 (Deployment web): spec.template.spec.containers[0].ports[0].containerPort: expected a port number, an integer from 1 to 65535, got 10000.5'],
      ['a Deployment with a numeric name', deployment('123', server.replace(/^/, '    ')), 'document 2 (Deployment 123): metadata.name: expected a string, got 123'],
      ['a Deployment whose template is a list', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template: [1]\n',
        'document 2 (Deployment web): spec.template: expected an object, got a list'],
      ['a bad pod in a List', `apiVersion: v1\nkind: List\nitems:\n- ${pod('{name: mcp, labels: {tollgate.dev/inject: false}}', server).replace(/\n(?=.)/g, '\n  ')}`,
        'document 2 (List (no name)): items[0].metadata.labels["tollgate.dev/inject"]: expected a string, got false: Kubernetes label values are strings, so quote it in the YAML (tollgate.dev/inject: "false")'],
    ];
    for (const [what, doc, message] of cases) {
      it(what, () => {
        assert.throws(() => injectYaml(`kind: ConfigMap\n---\n${doc}`), (e: unknown) => {
          assert.equal((e as Error).message, message);
          return true;
        });
      });
    }
  });

  it('still skips a workload fragment without a pod template', () => {
    const text = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n';
    assert.equal(injectYaml(text).output, text);
  });

  it('handles empty documents and scalar documents by copying them', () => {
    const text = '---\n# nothing here\n---\njust a string\n';
    assert.equal(injectYaml(text).output, text);
  });
});
