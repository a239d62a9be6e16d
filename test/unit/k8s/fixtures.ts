import type { Container, PodLike } from '../../../src/k8s/types.js';

/** A pod like the API server hands a webhook for a Deployment's replica: generateName, no name. */
export function mcpPod(extra: { annotations?: Record<string, string>; labels?: Record<string, string>; name?: string } = {}): PodLike {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(extra.name ? { name: extra.name } : { generateName: 'weather-7d9f8c6b5-' }),
      namespace: 'mcp-demo',
      labels: { 'app.kubernetes.io/name': 'weather', 'pod-template-hash': '7d9f8c6b5', ...extra.labels },
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    spec: {
      containers: [{
        name: 'server',
        image: 'ghcr.io/example/weather-mcp:1.4.2',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        resources: { requests: { cpu: '100m' } },
      }],
      restartPolicy: 'Always',
      serviceAccountName: 'default',
    },
  };
}

export function initContainer(pod: PodLike, name: string): Container {
  const c = pod.spec?.initContainers?.find((x) => x.name === name);
  if (!c) throw new Error(`no init container ${name}`);
  return c;
}

/**
 * The kubelet's `$(VAR)` expansion of args and env values: `$$` is a literal `$`, `$(NAME)` of a
 * defined variable is its value, anything else is kept as written.
 */
export function kubeletExpand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m: string, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? (env[name] as string) : m;
  });
}

/** The Envoy bootstrap the injected sidecar runs with (what Envoy sees after kubelet expansion). */
export function envoyBootstrap(envoy: Container): Record<string, unknown> {
  const args = envoy.args as string[];
  const i = args.indexOf('--config-yaml');
  if (i < 0) throw new Error('no --config-yaml argument');
  return JSON.parse(kubeletExpand(args[i + 1] as string, {})) as Record<string, unknown>;
}

export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const e of Object.values(v)) deepFreeze(e);
    Object.freeze(v);
  }
  return v;
}

/** An AdmissionReview v1 as kube-apiserver sends it for a pod CREATE. */
export function podCreateReview(pod: unknown, opts: { uid?: string; namespace?: string; operation?: string } = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: opts.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: '',
      namespace: opts.namespace ?? 'mcp-demo',
      operation: opts.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'a1b2', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
