import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

/**
 * Pure: turns `tollgate inject` output into a pod that `podman kube play` (4.3) can run. podman
 * does not run native sidecars (an init container with restartPolicy: Always blocks the pod
 * forever), so they become plain containers, which is what `--sidecar-mode containers` writes for
 * clusters before 1.29. Then adds what a cluster would provide around the pod: NATS, the control
 * plane and a dev OIDC issuer, as extra containers on the pod's loopback (standing in for
 * tollgate-system), and host ports on 127.0.0.1 to reach Envoy, its health listener and NATS.
 */

type Obj = Record<string, unknown>;
interface Container extends Obj { name: string; ports?: Obj[]; env?: Obj[] }

export interface PlayablePodOptions {
  /** Unique per run: podman names containers `<pod>-<container>`. */
  podName: string;
  image: string;
  hostPorts: { mcp: number; health: number; nats: number };
  /** Host directory with bundle-signing.key.pem, sidecars.yaml and the issuer's key ring (issuer/). */
  secretsDir: string;
}

export const POD_PORTS = { mcp: 10000, health: 9902, nats: 4222, xds: 18000, issuer: 5556, authz: 9191 } as const;

/** Native sidecars (init containers that restart) become ordinary containers, first in the list. */
export function plainSidecars(pod: Obj): Obj {
  const spec = pod.spec as { initContainers?: Container[]; containers: Container[] };
  const sidecars = (spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  const inits = (spec.initContainers ?? []).filter((c) => c.restartPolicy !== 'Always');
  for (const c of sidecars) delete c.restartPolicy;
  spec.containers = [...sidecars, ...spec.containers];
  if (inits.length > 0) spec.initContainers = inits;
  else delete spec.initContainers;
  return pod;
}

/**
 * podman 4.3 resolves only some downward-API fields (metadata.name, yes; metadata.namespace, no:
 * kube play refuses the pod). A pod has one namespace, known here, so it is written in as a value.
 */
export function resolveNamespaceFieldRefs(pod: Obj, namespace: string): void {
  const spec = pod.spec as { containers: Container[] };
  for (const c of spec.containers) {
    for (const e of c.env ?? []) {
      const ref = (e.valueFrom as { fieldRef?: { fieldPath?: string } } | undefined)?.fieldRef;
      if (ref?.fieldPath === 'metadata.namespace') {
        delete e.valueFrom;
        e.value = namespace;
      }
    }
  }
}

function publish(c: Container, containerPort: number, hostPort: number): void {
  const p = (c.ports ?? []).find((x) => x.containerPort === containerPort);
  if (!p) throw new Error(`container ${c.name} declares no port ${containerPort}`);
  p.hostPort = hostPort;
  p.hostIP = '127.0.0.1';
}

/** The issuer container: the dev issuer from the image's own code, serving the mounted key ring. */
function issuerScript(): string {
  return [
    "const { DevIssuer } = await import('/opt/tollgate/dist/src/identity/issuer.js');",
    `const i = await DevIssuer.start({ host: '127.0.0.1', port: ${POD_PORTS.issuer}, stateDir: '/secrets' });`,
    "console.log('issuer on ' + i.url);",
    "process.on('SIGTERM', () => i.close().then(() => process.exit(0)));",
  ].join('\n');
}

export function playablePod(injectedYaml: string, o: PlayablePodOptions): string {
  const pods = parseAllDocuments(injectedYaml).map((d) => d.toJS() as Obj).filter((d) => d.kind === 'Pod');
  if (pods.length !== 1) throw new Error(`expected one Pod in the injected YAML, found ${pods.length}`);
  const pod = plainSidecars(pods[0]!);
  const meta = pod.metadata as Obj;
  meta.name = o.podName;
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  resolveNamespaceFieldRefs(pod, namespace);
  // Kubernetes expands $(VAR) in args; podman 4.3 does not. Envoy's node id must be the registered one.
  for (const c of (pod.spec as { containers: Container[] }).containers) {
    const args = c.args as unknown[] | undefined;
    if (Array.isArray(args)) c.args = args.map((a) => (a === '$(TOLLGATE_NODE_ID)' ? `${namespace}/${o.podName}` : a));
  }
  const spec = pod.spec as { initContainers?: Container[]; containers: Container[]; volumes?: Obj[] };
  const envoy = spec.containers.find((c) => c.name === 'tollgate-envoy');
  if (!envoy) throw new Error('the injected pod has no tollgate-envoy container');
  // Only Envoy's ports reach the host. podman publishes every declared containerPort, on all
  // addresses: the MCP server's own port would be an ungoverned way in, so it is not declared here.
  for (const c of spec.containers) if (!c.name.startsWith('tollgate-')) delete c.ports;
  publish(envoy, POD_PORTS.mcp, o.hostPorts.mcp);
  publish(envoy, POD_PORTS.health, o.hostPorts.health);

  const secrets = { name: 'secrets', mountPath: '/secrets', readOnly: true };
  spec.containers.push(
    {
      name: 'nats', image: o.image, command: ['nats-server'],
      args: ['-js', '-a', '0.0.0.0', '-p', String(POD_PORTS.nats), '-sd', '/tmp/nats'],
      ports: [{ containerPort: POD_PORTS.nats, hostPort: o.hostPorts.nats, hostIP: '127.0.0.1' }],
    },
    {
      name: 'controlplane', image: o.image,
      args: [
        'controlplane', 'serve', '--policies', '/opt/tollgate/policies', '--signing-key', '/secrets/bundle-signing.key.pem',
        '--nats', `nats://127.0.0.1:${POD_PORTS.nats}`, '--xds-listen', `127.0.0.1:${POD_PORTS.xds}`,
        '--issuer', `http://127.0.0.1:${POD_PORTS.issuer}`, '--sidecar-config', '/secrets/sidecars.yaml',
        '--xds-cert', '/secrets/pki/xds-server.crt', '--xds-key', '/secrets/pki/xds-server.key', '--mesh-ca', '/secrets/pki/ca.crt',
        '--registrations', '/secrets/registrations.yaml',
      ],
      volumeMounts: [secrets],
    },
    { name: 'issuer', image: o.image, command: ['node', '--input-type=module', '-e', issuerScript()], volumeMounts: [secrets] },
  );
  // The workload certificate a cluster's init container would fetch is already in secrets/: mount it
  // where Envoy's bootstrap reads it, instead of the init container and its token and CA volumes.
  // Its renewer goes too: the issued certificate outlives the demo, and there is no token to send.
  const fetchers = new Set(['tollgate-identity', 'tollgate-identity-renew']);
  spec.containers = spec.containers.filter((c) => !fetchers.has(c.name));
  if (spec.initContainers) {
    spec.initContainers = spec.initContainers.filter((c) => !fetchers.has(c.name));
    if (!spec.initContainers.length) delete spec.initContainers;
  }
  const mounted: Record<string, string> = { 'tollgate-identity': 'identity', 'tollgate-mesh-ca': 'mesh-ca' };
  spec.volumes = (spec.volumes ?? []).filter((v) => v.name !== 'tollgate-sa-token').map((v) => {
    const sub = mounted[String(v.name)];
    if (sub) return { name: v.name, hostPath: { path: join(o.secretsDir, sub), type: 'Directory' } };
    // An optional Secret that does not exist (the sidecar's NATS credential; this demo's NATS has
    // no TLS): Kubernetes mounts an empty directory, podman 4.3 refuses the pod (tried), so say so.
    if ((v.secret as { optional?: boolean } | undefined)?.optional === true) return { name: v.name, emptyDir: {} };
    return v;
  });
  spec.volumes.push({ name: 'secrets', hostPath: { path: o.secretsDir, type: 'Directory' } });
  return stringify(pod, { lineWidth: 0 });
}

/** The ConfigMap the authz sidecar mounts (tollgate-authz): its config and the bundle verification key. */
export function authzConfigMap(namespace: string, audience: string, verificationPem: string): string {
  const authz = {
    listen: `127.0.0.1:${POD_PORTS.authz}`,
    metrics_listen: '127.0.0.1:9464',
    identity: { issuer: `http://127.0.0.1:${POD_PORTS.issuer}`, audience: [audience] },
    policy: { nats_url: `nats://127.0.0.1:${POD_PORTS.nats}`, verification_key: '/etc/tollgate/verification.pem' },
    state_dir: '/var/lib/tollgate',
    decision_log_nats_url: `nats://127.0.0.1:${POD_PORTS.nats}`,
  };
  return stringify({
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tollgate-authz', namespace },
    data: { 'authz.yaml': stringify(authz), 'verification.pem': verificationPem },
  });
}

/** The example MCP server's pod as a user writes it: the demo server, listening on loopback only. */
export function demoServerPod(image: string, name: string, namespace: string): string {
  return stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      containers: [{
        name, image, args: ['demo-server', '--host', '127.0.0.1', '--port', '8080'],
        ports: [{ containerPort: 8080 }],
      }],
    },
  });
}
