import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../../../src/authz/config.js';
import { parseWebhookArgs } from '../../../src/cli/inject.js';
import { version } from '../../../src/util/version.js';
import { isRecord, type Container, type KubeObject, type PodLike } from '../../../src/k8s/types.js';
import { injectYaml } from '../../../src/k8s/yaml-docs.js';
import { natsSeedUrls } from '../../../src/k8s/nats-cluster.js';

type Obj = Record<string, unknown>;
const ROOT = resolve('manifests');

function parseFile(file: string): KubeObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  assert.ok(Array.isArray(docs), `${file}: not a YAML stream`);
  const out: KubeObject[] = [];
  for (const d of docs) {
    assert.deepEqual(d.errors.map((e) => e.message), [], `${file}: YAML errors`);
    const v: unknown = d.toJS();
    if (v == null) continue;
    assert.ok(isRecord(v), `${file}: every document must be a mapping`);
    out.push(v as KubeObject);
  }
  return out;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(n) ? [p] : [];
  });
}

interface Build { objects: KubeObject[]; files: Set<string> }

/** What `kustomize build DIR` reads: resources and components (files or directories with a kustomization), recursively. */
function accumulate(dir: string, seen: Set<string> = new Set()): Build {
  const kfile = join(dir, 'kustomization.yaml');
  assert.ok(existsSync(kfile), `${relative(ROOT, dir) || '.'}: no kustomization.yaml`);
  const [k] = parseFile(kfile) as Obj[];
  assert.ok(k, `${kfile} is empty`);
  assert.ok(['Kustomization', 'Component'].includes(String(k.kind ?? 'Kustomization')), `${relative(ROOT, kfile)}: kind ${String(k.kind)}`);
  const objects: KubeObject[] = [];
  const files = new Set<string>([kfile]);
  // Components (kustomize's reusable pieces, e.g. overlays/multi-region/gateway) are read like resources.
  for (const r of [...(k.resources ?? []) as string[], ...(k.components ?? []) as string[]]) {
    const p = resolve(dir, r);
    assert.ok(existsSync(p), `${relative(ROOT, kfile)}: resource ${r} does not exist`);
    assert.ok(!seen.has(p), `${r} is included twice`);
    seen.add(p);
    if (statSync(p).isDirectory()) {
      const sub = accumulate(p, seen);
      objects.push(...sub.objects);
      for (const f of sub.files) files.add(f);
    } else {
      files.add(p);
      const docs = parseFile(p);
      assert.ok(docs.length > 0, `${r} has no objects`);
      for (const o of docs) {
        assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${r}: every object needs apiVersion, kind and metadata.name`);
        objects.push(o);
      }
    }
  }
  const ns = k.namespace as string | undefined;
  if (ns) for (const o of objects) if (o.metadata && o.metadata.namespace) o.metadata.namespace = ns;
  return { objects, files };
}

function find(objects: KubeObject[], kind: string, name: string): Obj {
  const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(o, `${kind} ${name} is missing`);
  return o as Obj;
}

function podSpecOf(o: KubeObject): PodLike {
  return (o.spec as { template: PodLike }).template;
}

function kustomizeCommand(): string[] | undefined {
  const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();
  const onPath = (n: string): string | undefined => (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, n)).find(isFile);
  const explicit = process.env.TOLLGATE_KUSTOMIZE;
  if (explicit) return [explicit, 'build'];
  const local = resolve('.tools', 'bin', 'kustomize');
  if (isFile(local)) return [local, 'build'];
  const k = onPath('kustomize');
  if (k) return [k, 'build'];
  const kubectl = onPath('kubectl');
  return kubectl ? [kubectl, 'kustomize'] : undefined;
}

// --- a small validator for the structural-schema subset our CRDs use ---

function validate(schema: Obj, value: unknown, path: string, errors: string[]): void {
  const type = schema.type as string | undefined;
  const fail = (m: string): void => { errors.push(`${path}: ${m}`); };
  if (type === 'object') {
    if (!isRecord(value)) return fail('must be an object');
    const props = (schema.properties ?? {}) as Record<string, Obj>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in value)) fail(`${r} is required`);
    if (schema.minProperties !== undefined && Object.keys(value).length < (schema.minProperties as number)) fail(`needs at least ${schema.minProperties as number} field(s)`);
    // metadata-like objects without properties keep whatever they hold.
    if (schema.properties === undefined) return;
    for (const [k, v] of Object.entries(value)) {
      const sub = props[k];
      if (!sub) fail(`unknown field ${k} (the API server would drop it)`);
      else validate(sub, v, `${path}.${k}`, errors);
    }
  } else if (type === 'array') {
    if (!Array.isArray(value)) return fail('must be an array');
    if (schema.minItems !== undefined && value.length < (schema.minItems as number)) fail(`needs at least ${schema.minItems as number} item(s)`);
    value.forEach((v, i) => validate(schema.items as Obj, v, `${path}[${i}]`, errors));
  } else if (type === 'string') {
    if (typeof value !== 'string') return fail('must be a string');
    if (schema.pattern !== undefined && !new RegExp(schema.pattern as string).test(value)) fail(`"${value}" does not match ${schema.pattern as string}`);
    if (schema.minLength !== undefined && value.length < (schema.minLength as number)) fail('too short');
    if (schema.maxLength !== undefined && value.length > (schema.maxLength as number)) fail('too long');
  } else if (type === 'integer' || type === 'number') {
    if (typeof value !== 'number' || (type === 'integer' && !Number.isInteger(value))) return fail(`must be an ${type}`);
    if (schema.minimum !== undefined && value < (schema.minimum as number)) fail(`below ${schema.minimum as number}`);
    if (schema.maximum !== undefined && value > (schema.maximum as number)) fail(`above ${schema.maximum as number}`);
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') fail('must be a boolean');
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).includes(value)) fail(`${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
}

/** Kubernetes' structural-schema rules, plus ours: every property is described. */
function structuralProblems(schema: Obj, path: string, out: string[], inLogic = false): void {
  if (inLogic) {
    for (const k of ['type', 'description', 'default', 'additionalProperties', 'nullable']) if (k in schema) out.push(`${path}: ${k} not allowed inside allOf/anyOf/oneOf/not`);
  } else if (/^[a-z]+\.metadata$/.test(path)) {
    // The API server refuses anything but `type` on a CRD's top-level metadata (found against a real one).
    for (const k of Object.keys(schema)) if (k !== 'type') out.push(`${path}: ${k} not allowed on metadata (only type)`);
  } else {
    if (typeof schema.type !== 'string' && schema['x-kubernetes-int-or-string'] !== true && schema['x-kubernetes-preserve-unknown-fields'] !== true) out.push(`${path}: no type`);
    if (typeof schema.description !== 'string' || schema.description.trim() === '') out.push(`${path}: no description`);
  }
  if (schema.properties !== undefined) {
    if (!inLogic && schema.type !== 'object') out.push(`${path}: properties on a non-object`);
    if (schema.additionalProperties !== undefined) out.push(`${path}: properties and additionalProperties together`);
    for (const [k, v] of Object.entries(schema.properties as Record<string, Obj>)) structuralProblems(v, `${path}.${k}`, out, inLogic);
    for (const r of (schema.required ?? []) as string[]) if (!(r in (schema.properties as Obj))) out.push(`${path}: required ${r} is not a property`);
  }
  if (schema.type === 'array') {
    if (!isRecord(schema.items)) out.push(`${path}: array without items`);
    else structuralProblems(schema.items, `${path}[]`, out, inLogic);
  }
  for (const k of ['allOf', 'anyOf', 'oneOf']) for (const s of (schema[k] ?? []) as Obj[]) structuralProblems(s, `${path}.${k}`, out, true);
  if (isRecord(schema.not)) structuralProblems(schema.not, `${path}.not`, out, true);
}

describe('manifests', () => {
  const base = accumulate(join(ROOT, 'base'));
  const examples = accumulate(join(ROOT, 'examples'));
  const crds = base.objects.filter((o) => o.kind === 'CustomResourceDefinition');

  it('every kustomization resolves, and every YAML file under manifests/ is part of one (or of the Helm chart)', () => {
    const used = new Set<string>();
    // The Helm chart is checked by the real helm in test/integration/k8s/helm.test.ts.
    const kustomizeFiles = yamlFiles(ROOT).filter((f) => !relative(ROOT, f).startsWith('helm/'));
    for (const k of kustomizeFiles.filter((f) => f.endsWith('kustomization.yaml'))) {
      for (const f of accumulate(dirname(k)).files) used.add(f);
    }
    const orphans = kustomizeFiles.filter((f) => !used.has(f)).map((f) => relative(ROOT, f));
    assert.deepEqual(orphans, []);
  });

  it('base deploys the namespace, NATS with JetStream, control plane, shared authz and the webhook', () => {
    const ns = find(base.objects, 'Namespace', 'tollgate-system') as KubeObject;
    assert.notEqual(ns.metadata?.labels?.['tollgate.dev/inject'], 'enabled', 'the mesh must not inject itself');
    for (const o of base.objects) {
      if (!['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind!)) {
        assert.equal(o.metadata?.namespace, 'tollgate-system', `${o.kind} ${o.metadata?.name}`);
      }
    }
    const nats = find(base.objects, 'StatefulSet', 'tollgate-nats');
    assert.match(String((podSpecOf(nats as KubeObject).spec!.containers[0] as Container).image), /^nats:/);
    assert.match(String((find(base.objects, 'ConfigMap', 'tollgate-nats').data as Obj)['nats.conf']), /jetstream \{[^}]*store_dir: \/data/);
    const ports = (name: string): number[] => ((find(base.objects, 'Service', name).spec as { ports: { port: number }[] }).ports).map((p) => p.port);
    assert.deepEqual(ports('tollgate-nats'), [4222]);
    assert.ok(ports('tollgate-controlplane').includes(18000));
    assert.deepEqual(ports('tollgate-authz'), [9191, 9464]);
    assert.deepEqual(ports('tollgate-webhook'), [443]);
    find(base.objects, 'Deployment', 'tollgate-controlplane');
    find(base.objects, 'Deployment', 'tollgate-authz');
    assert.match(String((find(base.objects, 'ConfigMap', 'tollgate-authz').data as Obj)['authz.yaml']), /listen: 0\.0\.0\.0:9191/);
  });

  it('the webhook configuration fails closed and selects labeled namespaces only', () => {
    const mwc = find(base.objects, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector');
    const [hook, more] = mwc.webhooks as Obj[];
    assert.equal(more, undefined);
    assert.ok(hook);
    assert.equal(hook.failurePolicy, 'Fail');
    assert.equal(hook.sideEffects, 'None');
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    assert.deepEqual(hook.namespaceSelector, { matchLabels: { 'tollgate.dev/inject': 'enabled' } });
    assert.deepEqual(hook.objectSelector, { matchExpressions: [{ key: 'tollgate.dev/inject', operator: 'NotIn', values: ['false'] }] });
    assert.deepEqual(hook.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    const svc = (hook.clientConfig as { service: { name: string; namespace: string; path: string; port: number } }).service;
    assert.equal(svc.path, '/mutate');
    const service = find(base.objects, 'Service', svc.name);
    assert.equal((service.metadata as Obj).namespace, svc.namespace);
    const sp = (service.spec as { ports: { port: number; targetPort: string }[] }).ports.find((p) => p.port === svc.port);
    assert.ok(sp, 'the Service exposes the port the API server calls');

    const dep = find(base.objects, 'Deployment', 'tollgate-webhook') as KubeObject;
    const pod = podSpecOf(dep);
    const c = pod.spec!.containers[0]!;
    assert.ok((c.ports ?? []).some((p) => p.name === sp.targetPort && p.containerPort === 8443));
    const args = c.args as string[];
    assert.deepEqual(args.slice(0, 2), ['inject', 'webhook']);
    const opts = parseWebhookArgs(args.slice(2));
    assert.ok(opts !== 'help');
    assert.equal(opts.port, 8443);
    assert.equal(opts.failurePolicy, 'Fail');
    const tlsMount = (c.volumeMounts as { name: string; mountPath: string }[]).find((m) => opts.certFile.startsWith(m.mountPath + '/'));
    assert.ok(tlsMount && opts.keyFile.startsWith(tlsMount.mountPath + '/'), 'cert and key come from the mounted Secret');
    const vol = (pod.spec!.volumes ?? []).find((v) => v.name === tlsMount.name) as { secret?: { secretName: string } };
    assert.equal(vol.secret?.secretName, 'tollgate-webhook-tls');
    assert.ok(((dep.spec as Obj).replicas as number) >= 2, 'failurePolicy Fail needs more than one replica');
  });

  it('workload identities: the webhook sends pods to the control plane\'s certificate port, every file the control plane is given is mounted, and only it mounts the CA key', () => {
    const cpDep = find(base.objects, 'Deployment', 'tollgate-controlplane');
    const cpPod = podSpecOf(cpDep as KubeObject).spec!;
    const cp = cpPod.containers[0] as Container & { args: string[]; volumeMounts: { name: string; mountPath: string }[] };
    const flag = (f: string): string => { const i = cp.args.indexOf(f); assert.ok(i >= 0, `control plane has ${f}`); return cp.args[i + 1]!; };
    assert.ok(cp.args.includes('--registrations-from-kube'));
    const certPort = Number(flag('--workload-certs').split(':').pop());
    for (const f of ['--xds-cert', '--xds-key', '--mesh-ca']) assert.ok(cp.volumeMounts.some((m) => flag(f).startsWith(`${m.mountPath}/`)), `${f} is on a mounted volume`);
    assert.ok(cp.volumeMounts.some((m) => m.mountPath === flag('--ca-dir')), '--ca-dir is a mounted volume');
    const svcPorts = (find(base.objects, 'Service', 'tollgate-controlplane').spec as { ports: { port: number; targetPort: string }[] }).ports;
    const named = (cp.ports as { name: string; containerPort: number }[]).find((p) => p.containerPort === certPort)!;
    const svcPort = svcPorts.find((p) => p.targetPort === named.name)!;
    const hook = podSpecOf(find(base.objects, 'Deployment', 'tollgate-webhook') as KubeObject).spec!.containers[0] as Container & { args: string[] };
    const opts = parseWebhookArgs(hook.args.slice(2));
    assert.ok(opts !== 'help');
    assert.equal(opts.inject?.workloadCerts?.url, `https://tollgate-controlplane.tollgate-system.svc:${svcPort.port}/v1/certificates`);
    assert.equal(opts.inject?.workloadCerts?.caConfigMap, 'tollgate-mesh-ca');
    // The operator injects the pods it runs itself (the webhook skips injected pods): the same endpoint.
    const op = podSpecOf(find(base.objects, 'Deployment', 'tollgate-operator') as KubeObject).spec!.containers[0] as Container & { args: string[] };
    assert.equal(op.args[op.args.indexOf('--workload-certs') + 1], opts.inject?.workloadCerts?.url);
    const np = find(base.objects, 'NetworkPolicy', 'tollgate-controlplane').spec as { ingress: { ports: { port: number }[] }[] };
    assert.ok(np.ingress.some((r) => r.ports.some((p) => p.port === certPort)), 'the NetworkPolicy admits the certificate port');
    // The mesh CA key signs any identity: mounted into the control plane alone.
    const caKeyMounts = base.objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind!))
      .filter((o) => JSON.stringify(podSpecOf(o).spec!.volumes ?? []).includes('"secretName":"tollgate-mesh-ca"')).map((o) => o.metadata?.name);
    assert.deepEqual(caKeyMounts, ['tollgate-controlplane']);
  });

  it('every container runs non-root, read-only, without capabilities, with requests and limits', () => {
    for (const o of base.objects.filter((x) => ['Deployment', 'StatefulSet'].includes(x.kind!))) {
      const pod = podSpecOf(o);
      const psc = (pod.spec!.securityContext ?? {}) as Obj;
      for (const c of [...(pod.spec!.initContainers ?? []), ...pod.spec!.containers]) {
        const where = `${o.kind} ${o.metadata?.name} container ${c.name}`;
        const sc = (c.securityContext ?? {}) as Obj;
        assert.equal(sc.runAsNonRoot ?? psc.runAsNonRoot, true, where);
        assert.equal(sc.readOnlyRootFilesystem, true, where);
        assert.equal(sc.allowPrivilegeEscalation, false, where);
        assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, where);
        const res = c.resources as { requests?: Obj; limits?: Obj } | undefined;
        assert.ok(res?.requests?.cpu && res.requests.memory && res.limits?.memory, `${where}: requests and limits`);
        assert.ok(c.readinessProbe, `${where}: readinessProbe`);
      }
    }
  });

  it('ships authz configurations that authz itself accepts: shared on all interfaces, sidecar on loopback', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-manifests-'));
    try {
      const load = (objects: KubeObject[]): ReturnType<typeof loadConfigFile> => {
        const file = join(dir, 'authz.yaml');
        writeFileSync(file, String((find(objects, 'ConfigMap', 'tollgate-authz').data as Obj)['authz.yaml']));
        return loadConfigFile(file);
      };
      const shared = load(base.objects);
      assert.deepEqual(shared.listen, { host: '0.0.0.0', port: 9191 });
      assert.equal(shared.nats.url, natsSeedUrls('tollgate-system', 3).join(','));
      assert.deepEqual(shared.nats.tls, { ca: '/etc/tollgate-nats/ca.crt', cert: '/etc/tollgate-nats/tls.crt', key: '/etc/tollgate-nats/tls.key' });
      assert.equal(shared.policy.nats?.url, null, 'bundles come over the one NATS connection');
      const sidecar = load(examples.objects);
      assert.deepEqual(sidecar.listen, { host: '127.0.0.1', port: 9191 });
      assert.equal(sidecar.policy.nats?.verificationKey, '/etc/tollgate/verification.pem');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pins the Tollgate image to this version everywhere, including the injected authz sidecar', () => {
    const text = ['base/controlplane.yaml', 'base/authz.yaml', 'base/webhook.yaml'].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
    const tags = [...text.matchAll(/ghcr\.io\/tollgate\/tollgate:(\S+)/g)].map((m) => m[1]);
    assert.ok(tags.length >= 4);
    assert.deepEqual([...new Set(tags)], [version]);
  });

  it('RBAC is least privilege: the control plane lists and watches pods and MCPServers and reviews tokens; the operator writes only what it reconciles', () => {
    for (const name of ['tollgate-webhook', 'tollgate-authz', 'tollgate-nats']) {
      assert.equal(find(base.objects, 'ServiceAccount', name).automountServiceAccountToken, false, name);
    }
    const roles = base.objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    assert.deepEqual(roles.map((r) => r.metadata?.name), ['tollgate-controlplane', 'tollgate-operator', 'tollgate-operator-leader']);
    // The operator writes: exactly these verbs, on exactly these resources (the reconcilers' needs;
    // test/integration/k8s/operator.test.ts runs it under this very ClusterRole against RBAC).
    const writes = (name: string): string[] => ((find(base.objects, name === 'tollgate-operator' ? 'ClusterRole' : 'Role', name).rules) as { apiGroups: string[]; resources: string[]; verbs: string[] }[])
      .flatMap((r) => r.resources.map((res) => `${r.apiGroups[0] || 'core'}/${res}: ${r.verbs.filter((v) => !['get', 'list', 'watch'].includes(v)).join(',')}`));
    assert.deepEqual(writes('tollgate-operator'), [
      'tollgate.dev/mcpservers: update', 'tollgate.dev/mcppolicies: update', 'tollgate.dev/tokenbudgets: update', 'tollgate.dev/virtualmcpservers: update',
      'tollgate.dev/mcpservers/status: update,patch', 'tollgate.dev/mcppolicies/status: update,patch', 'tollgate.dev/tokenbudgets/status: update,patch',
      'tollgate.dev/virtualmcpservers/status: update,patch',
      'tollgate.dev/mcpservers/finalizers: update', 'tollgate.dev/virtualmcpservers/finalizers: update',
      'apps/deployments: create,patch,delete', 'core/services: create,patch,delete', 'core/configmaps: create,patch,delete',
      'networking.k8s.io/networkpolicies: create,patch,delete',
      'core/events: create,patch',
    ]);
    assert.deepEqual(writes('tollgate-operator-leader'), ['coordination.k8s.io/leases: create,update']);
    // Exactly the calls `controlplane serve --registrations-from-kube --workload-certs` makes
    // (test/integration/k8s/controlplane-rbac.test.ts makes them under this role against RBAC).
    assert.deepEqual((roles[0] as Obj).rules, [
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
      { apiGroups: ['tollgate.dev'], resources: ['mcpservers'], verbs: ['list', 'watch'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
    const binding = find(base.objects, 'ClusterRoleBinding', 'tollgate-controlplane');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'tollgate-controlplane', namespace: 'tollgate-system' }]);
  });

  it('defines MCPServer, MCPPolicy, TokenBudget and VirtualMCPServer in tollgate.dev/v1alpha1 with structural, fully described schemas', () => {
    assert.deepEqual(crds.map((c) => (c.spec as { names: { kind: string } }).names.kind).sort(), ['MCPPolicy', 'MCPServer', 'TokenBudget', 'VirtualMCPServer']);
    for (const crd of crds) {
      const spec = crd.spec as { group: string; names: { plural: string }; versions: Obj[] };
      assert.equal(spec.group, 'tollgate.dev');
      assert.equal(crd.metadata?.name, `${spec.names.plural}.tollgate.dev`);
      assert.deepEqual(spec.versions.map((v) => [v.name, v.served, v.storage]), [['v1alpha1', true, true]]);
      const schema = (spec.versions[0]!.schema as { openAPIV3Schema: Obj }).openAPIV3Schema;
      const problems: string[] = [];
      structuralProblems(schema, spec.names.plural, problems);
      assert.deepEqual(problems, []);
      assert.equal(schema.type, 'object');
    }
  });

  it('the structural check and the validator catch what they are for', () => {
    const problems: string[] = [];
    structuralProblems({ type: 'object', description: 'x', properties: { a: { type: 'string' }, b: { description: 'no type' }, c: { type: 'array', description: 'no items' } }, oneOf: [{ type: 'object' }] }, 'root', problems);
    assert.deepEqual(problems, ['root.a: no description', 'root.b: no type', 'root.c: array without items', 'root.oneOf: type not allowed inside allOf/anyOf/oneOf/not']);
    const budget = crds.find((c) => (c.spec as { names: { kind: string } }).names.kind === 'TokenBudget')!;
    const schema = ((budget.spec as { versions: Obj[] }).versions[0]!.schema as { openAPIV3Schema: Obj }).openAPIV3Schema;
    const errors: string[] = [];
    validate(schema, { apiVersion: 'tollgate.dev/v1alpha1', kind: 'TokenBudget', metadata: { name: 'x' }, spec: { scope: {}, limit: 0, window: 'week', actoin: 'deny' } }, 'TokenBudget', errors);
    assert.deepEqual(errors, [
      'TokenBudget.spec.scope: needs at least 1 field(s)',
      'TokenBudget.spec.limit: below 1',
      'TokenBudget.spec.window: "week" is not one of ["hour","day","month"]',
      'TokenBudget.spec: unknown field actoin (the API server would drop it)',
    ]);
  });

  it('examples: a labeled namespace, a server Deployment the injector accepts, and valid Tollgate objects', () => {
    const ns = find(examples.objects, 'Namespace', 'mcp-demo') as KubeObject;
    assert.equal(ns.metadata?.labels?.['tollgate.dev/inject'], 'enabled');
    const schemas = new Map(crds.map((c) => [(c.spec as { names: { kind: string } }).names.kind, ((c.spec as { versions: Obj[] }).versions[0]!.schema as { openAPIV3Schema: Obj }).openAPIV3Schema]));
    const kinds = new Set<string>();
    for (const o of examples.objects.filter((x) => x.apiVersion === 'tollgate.dev/v1alpha1')) {
      const schema = schemas.get(o.kind!);
      assert.ok(schema, `no CRD for ${o.kind}`);
      const errors: string[] = [];
      validate(schema, o, `${o.kind} ${o.metadata?.name}`, errors);
      assert.deepEqual(errors, []);
      if (o.kind === 'MCPPolicy') {
        const s = o.spec as Obj;
        assert.ok(('rego' in s) !== ('bundle' in s), 'exactly one of rego or bundle (the CRD CEL rule)');
      }
      kinds.add(o.kind!);
    }
    assert.deepEqual([...kinds].sort(), ['MCPPolicy', 'MCPServer', 'TokenBudget']);

    const file = join(ROOT, 'examples', 'weather-server.yaml');
    const { documents } = injectYaml(readFileSync(file, 'utf8'));
    const dep = documents.find((d) => d.kind === 'Deployment');
    const result = dep?.pods[0]?.result;
    assert.ok(result?.injected, 'the example Deployment is injectable');
    assert.equal(result.plan.server, 'weather');
    assert.equal(result.plan.upstreamPort, 8080);
    const svc = find(examples.objects, 'Service', 'weather');
    assert.deepEqual((svc.spec as { ports: { targetPort: number }[] }).ports.map((p) => p.targetPort), [result.plan.mcpPort], 'the Service targets Envoy, not the server');
    const mcps = find(examples.objects, 'MCPServer', 'weather');
    assert.equal(((mcps.spec as Obj).upstream as Obj).service, 'weather');
  });

  it('kustomize builds base, the cert-manager overlay and the examples to the objects listed here', function () {
    const cmd = kustomizeCommand();
    // `make deps` can install kustomize into .tools/bin; without it (and without kubectl) the
    // resolution checks above still run.
    if (!cmd) this.skip();
    const build = (dir: string): KubeObject[] => {
      const out = execFileSync(cmd[0]!, [...cmd.slice(1), join(ROOT, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return parseAllDocuments(out).map((d) => d.toJS() as KubeObject);
    };
    const ids = (objs: KubeObject[]): string[] => objs.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`).sort();
    assert.deepEqual(ids(build('base')), ids(base.objects));
    assert.deepEqual(ids(build('examples')), ids(examples.objects));
    const overlay = build('overlays/cert-manager');
    assert.deepEqual(ids(overlay).filter((i) => !i.startsWith('Certificate/') && !i.startsWith('Issuer/')), ids(base.objects));
    const cert = overlay.find((o) => o.kind === 'Certificate')!;
    assert.equal((cert.spec as { secretName: string }).secretName, 'tollgate-webhook-tls');
    const mwc = overlay.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    assert.equal(mwc.metadata?.annotations?.['cert-manager.io/inject-ca-from'], `${cert.metadata?.namespace}/${cert.metadata?.name}`);
  });
});
