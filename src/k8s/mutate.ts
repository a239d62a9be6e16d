import { version as tollgateVersion } from '../util/version.js';
import type { HostPort } from '../envoy/resources.js';
import {
  Annotation, APP_NAME_LABEL, AUTHZ_CONTAINER, DEFAULT_AUTHZ_CONFIGMAP, DEFAULT_AUTHZ_IMAGE_REPO, DEFAULT_AUTHZ_PORT,
  DEFAULT_CONTAINER_ANNOTATION, DEFAULT_CONTROL_PLANE, DEFAULT_ENVOY_ADMIN_PORT, DEFAULT_ENVOY_HEALTH_PORT,
  DEFAULT_ENVOY_IMAGE, DEFAULT_MCP_PATH, DEFAULT_MCP_PORT, DEFAULT_SHARED_AUTHZ, ENVOY_CONTAINER, OPT_OUT_VALUE,
} from './annotations.js';
import { applyPatch, pointer, type PatchOp } from './jsonpatch.js';
import {
  authzContainer, authzVolumes, AUTHZ_UID, DEFAULT_AUTHZ_RESOURCES, DEFAULT_ENVOY_RESOURCES, envoyContainer, restrictedSecurityContext,
  type AuthzPlacement, type ResourceSpec, type SidecarFacts, type SidecarMode, type SidecarPlan,
} from './sidecars.js';
import { DEFAULT_MESH_CA_CONFIGMAP, identityInitContainer, identityRenewContainer, identityVolumes, IDENTITY_CONTAINER, IDENTITY_RENEW_CONTAINER } from './identity.js';
import { describeProblem, metadataProblem, podSpecProblem, type FieldProblem } from './pod-schema.js';
import type { Container, PodLike, PodSpec } from './types.js';

export interface InjectOptions {
  envoyImage?: string;
  /** Default `ghcr.io/tollgate/tollgate:<tollgate version>`. */
  authzImage?: string;
  /** The control plane's ADS endpoint. */
  controlPlane?: HostPort;
  /** The shared authz Service, for pods that do not get their own authz sidecar. */
  sharedAuthz?: HostPort;
  /** Where authz runs for pods without a `tollgate.dev/authz` annotation. Default `sidecar`. */
  defaultAuthz?: 'sidecar' | 'shared';
  /** `native` (default, Kubernetes 1.29+) or `containers` for older clusters. */
  sidecarMode?: SidecarMode;
  /** The pod's namespace when its metadata has none (the admission request's namespace). */
  namespace?: string;
  /** Pod name when metadata has neither name nor generateName (a workload template). */
  podName?: string;
  /** Server name when neither the annotation nor a name label gives one (the workload's name). */
  serverName?: string;
  adminPort?: number;
  healthPort?: number;
  authzPort?: number;
  envoyResources?: ResourceSpec;
  authzResources?: ResourceSpec;
  /** Recorded in the `tollgate.dev/injected` annotation. Default: this tollgate's version. */
  version?: string;
  /**
   * Give Envoy a workload certificate from the control plane (`https://…/v1/certificates`) for
   * mTLS xDS (docs/security.md); the mesh CA comes from the ConfigMap `caConfigMap`.
   */
  workloadCerts?: { url: string; caConfigMap?: string };
}

export type InjectResult =
  | { injected: true; pod: PodLike; patch: PatchOp[]; plan: SidecarPlan }
  | { injected: false; pod: PodLike; patch: PatchOp[]; reason: string };

/**
 * The pod asks for something that cannot be governed as written (bad annotation, port clash, no
 * port to protect). The message says what to change; the webhook turns it into a denial.
 */
export class InjectionError extends Error {
  /**
   * `field`: set when a field has the wrong type or value (its path relative to the pod), so a
   * caller that knows where the pod sits in a larger object can name the field from there.
   */
  constructor(readonly pod: string, problem: string, readonly field?: FieldProblem) {
    super(`pod ${pod}: ${problem}`);
    this.name = 'InjectionError';
  }
}

/** Throws InjectionError (with `field`) for the first problem, if any. */
function failOnShape(label: string, problem: FieldProblem | undefined): void {
  if (problem) throw new InjectionError(label, describeProblem(problem), problem);
}

export function defaultAuthzImage(version = tollgateVersion): string {
  return `${DEFAULT_AUTHZ_IMAGE_REPO}:${version}`;
}

function parsePort(v: string, what: string, fail: (m: string) => never): number {
  if (!/^[0-9]+$/.test(v.trim())) fail(`${what} "${v}" is not a port number`);
  const n = Number(v.trim());
  if (n < 1 || n > 65535) fail(`${what} ${n} is not between 1 and 65535`);
  return n;
}

function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** The MCP server container: the one named by kubectl's default-container annotation, else the first with a port. */
function upstreamContainer(spec: PodSpec, annotations: Record<string, string>): Container | undefined {
  const named = annotations[DEFAULT_CONTAINER_ANNOTATION];
  if (named) {
    const c = spec.containers.find((x) => x.name === named);
    if (c) return c;
  }
  return spec.containers.find((c) => (c.ports ?? []).some((p) => (p.protocol ?? 'TCP') === 'TCP'));
}

function resolveUpstreamPort(spec: PodSpec, annotations: Record<string, string>, fail: (m: string) => never): number {
  const v = annotations[Annotation.upstreamPort];
  if (v !== undefined) {
    if (/^[0-9]+$/.test(v.trim())) return parsePort(v, Annotation.upstreamPort, fail);
    for (const c of spec.containers) {
      const p = (c.ports ?? []).find((x) => x.name === v);
      if (p) return p.containerPort;
    }
    return fail(`${Annotation.upstreamPort} "${v}" is neither a port number nor the name of a container port`);
  }
  const c = upstreamContainer(spec, annotations);
  const port = (c?.ports ?? []).find((p) => (p.protocol ?? 'TCP') === 'TCP');
  if (!port) {
    return fail(`no container declares a TCP port, so there is no MCP server to put behind Envoy: set the ${Annotation.upstreamPort} annotation to the MCP server's port, or opt the pod out with ${Annotation.inject}: "${OPT_OUT_VALUE}"`);
  }
  return port.containerPort;
}

function resolveAuthz(annotations: Record<string, string>, opts: InjectOptions, fail: (m: string) => never): AuthzPlacement {
  const v = annotations[Annotation.authz] ?? opts.defaultAuthz ?? 'sidecar';
  if (v === 'shared') return { mode: 'shared', address: opts.sharedAuthz ?? { ...DEFAULT_SHARED_AUTHZ } };
  if (v === 'sidecar') {
    const configMap = annotations[Annotation.authzConfig] ?? DEFAULT_AUTHZ_CONFIGMAP;
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(configMap) || configMap.length > 253) fail(`${Annotation.authzConfig} "${configMap}" is not a valid ConfigMap name`);
    return { mode: 'sidecar', port: opts.authzPort ?? DEFAULT_AUTHZ_PORT, configMap };
  }
  return fail(`${Annotation.authz} must be "sidecar" or "shared", not "${v}"`);
}

function resolveServer(meta: { name?: string; generateName?: string; labels?: Record<string, string> }, annotations: Record<string, string>, opts: InjectOptions): string {
  const fromPod = (meta.name ?? meta.generateName ?? '').replace(/-+$/, '');
  return annotations[Annotation.server] ?? meta.labels?.[APP_NAME_LABEL] ?? meta.labels?.app ?? opts.serverName ?? fromPod;
}

/** Rejects port choices that would make two processes in the pod fight over one port. */
function checkPorts(plan: SidecarPlan, spec: PodSpec, fail: (m: string) => never): void {
  const declared = new Map<number, string>();
  for (const c of allContainers(spec)) for (const p of c.ports ?? []) declared.set(p.containerPort, c.name);
  const ours: [string, number][] = [
    [`the Envoy MCP listener (${Annotation.mcpPort})`, plan.mcpPort],
    ['the Envoy admin port', plan.adminPort],
    ['the Envoy health port', plan.healthPort],
  ];
  if (plan.authz.mode === 'sidecar') ours.push([`the authz sidecar (or set ${Annotation.authz}: "shared")`, plan.authz.port]);
  const seen = new Map<number, string>();
  for (const [what, port] of ours) {
    const other = seen.get(port);
    if (other) fail(`${what} and ${other} both want port ${port}`);
    seen.set(port, what);
    const owner = declared.get(port);
    if (owner) fail(`port ${port} is needed by ${what} but container "${owner}" already declares it`);
  }
  if (plan.upstreamPort === plan.mcpPort) fail(`the MCP server's port ${plan.upstreamPort} is also the port Envoy would listen on: set ${Annotation.mcpPort} to another port`);
  const clash = seen.get(plan.upstreamPort);
  if (clash) fail(`the MCP server's port ${plan.upstreamPort} is also ${clash}`);
}

function hasSidecar(spec: PodSpec): string | undefined {
  return allContainers(spec).map((c) => c.name).find((n) => n === ENVOY_CONTAINER || n === AUTHZ_CONTAINER || n === IDENTITY_CONTAINER || n === IDENTITY_RENEW_CONTAINER);
}

function resolveFacts(meta: PodLike['metadata'] & object, spec: PodSpec, opts: InjectOptions, fail: (m: string) => never): SidecarFacts {
  const annotations = meta.annotations ?? {};
  const server = resolveServer(meta, annotations, opts);
  if (!server) fail(`cannot tell the MCP server's name: set the ${Annotation.server} annotation or the ${APP_NAME_LABEL} label`);
  const mcpPath = annotations[Annotation.mcpPath] ?? DEFAULT_MCP_PATH;
  if (!/^\/[^?#]*[^?#/]$/.test(mcpPath)) fail(`${Annotation.mcpPath} "${mcpPath}" must start with "/", not end with "/", and have no "?" or "#"`);
  const mcpPortRaw = annotations[Annotation.mcpPort];
  return {
    server,
    mcpPort: mcpPortRaw === undefined ? DEFAULT_MCP_PORT : parsePort(mcpPortRaw, Annotation.mcpPort, fail),
    mcpPath,
    upstreamPort: resolveUpstreamPort(spec, annotations, fail),
    authz: resolveAuthz(annotations, opts, fail),
  };
}

/**
 * The sidecar facts of a pod that was already injected, read back from its spec and annotations
 * the same way the injector read them (its own containers left out). Throws InjectionError.
 */
export function injectedPodFacts(pod: PodLike, opts: InjectOptions = {}): SidecarFacts {
  const meta = pod.metadata ?? {};
  const label = `${meta.namespace ?? opts.namespace ?? 'default'}/${meta.name ?? '(unnamed)'}`;
  const fail = (m: string): never => { throw new InjectionError(label, m); };
  failOnShape(label, metadataProblem(pod) ?? podSpecProblem(pod));
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) return fail('has no containers');
  const ours = new Set([ENVOY_CONTAINER, AUTHZ_CONTAINER, IDENTITY_CONTAINER, IDENTITY_RENEW_CONTAINER]);
  const own = { ...spec, containers: spec.containers.filter((c) => !ours.has(c.name)) };
  // The webhook saw a controller's pod before the API server named it: only its generateName.
  const asAdmitted = meta.generateName ? { ...meta, name: undefined } : meta;
  return resolveFacts(asAdmitted, own, opts, fail);
}

/** Decides everything about the pod, or says why it is skipped (a string), or throws InjectionError. */
export function planInjection(pod: PodLike, opts: InjectOptions = {}): SidecarPlan | string {
  const meta = pod.metadata ?? {};
  const annotations = meta.annotations ?? {};
  const namespace = meta.namespace || opts.namespace || 'default';
  const podName = meta.name || meta.generateName || opts.podName || '';
  const label = `${namespace}/${podName || '(unnamed)'}`;
  const fail = (m: string): never => { throw new InjectionError(label, m); };
  // The opt-out must be read from strings: YAML's unquoted `false` is a boolean, and a pod that
  // would be injected against its owner's wish is refused instead (as the API server would).
  failOnShape(label, metadataProblem(pod));

  if (annotations[Annotation.inject] === OPT_OUT_VALUE || meta.labels?.[Annotation.inject] === OPT_OUT_VALUE) {
    return `opted out (${Annotation.inject}: "${OPT_OUT_VALUE}")`;
  }
  if (annotations[Annotation.injected] !== undefined) return `already injected (${Annotation.injected}: "${annotations[Annotation.injected]}")`;
  // Only now: a pod that is left alone is not held to the fields the injector would read.
  failOnShape(label, podSpecProblem(pod));
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) return fail('has no containers');
  const existing = hasSidecar(spec);
  if (existing) return `already has a "${existing}" container`;
  if (spec.hostNetwork) fail(`uses hostNetwork, so its sidecar ports would clash with other pods on the node: opt it out with ${Annotation.inject}: "${OPT_OUT_VALUE}"`);
  if (!podName) fail('has neither metadata.name nor metadata.generateName');

  const version = opts.version ?? tollgateVersion;
  const plan: SidecarPlan = {
    namespace,
    podName,
    ...resolveFacts(meta, spec, opts, fail),
    sidecarMode: opts.sidecarMode ?? 'native',
    controlPlane: opts.controlPlane ?? { ...DEFAULT_CONTROL_PLANE },
    envoyImage: opts.envoyImage ?? DEFAULT_ENVOY_IMAGE,
    authzImage: opts.authzImage ?? defaultAuthzImage(version),
    adminPort: opts.adminPort ?? DEFAULT_ENVOY_ADMIN_PORT,
    healthPort: opts.healthPort ?? DEFAULT_ENVOY_HEALTH_PORT,
    envoyResources: opts.envoyResources ?? DEFAULT_ENVOY_RESOURCES,
    authzResources: opts.authzResources ?? DEFAULT_AUTHZ_RESOURCES,
    version,
    ...(opts.workloadCerts ? { identity: { certsUrl: opts.workloadCerts.url, caConfigMap: opts.workloadCerts.caConfigMap ?? DEFAULT_MESH_CA_CONFIGMAP, image: opts.authzImage ?? defaultAuthzImage(version) } } : {}),
  };
  checkPorts(plan, spec, fail);
  for (const v of spec.volumes ?? []) {
    if ((plan.authz.mode === 'sidecar' || plan.identity) && v.name.startsWith('tollgate-')) fail(`already has a volume named "${v.name}"; names starting with "tollgate-" are reserved for the injector`);
  }
  return plan;
}

/** The JSON Patch that turns the pod into its injected form; paths are relative to the pod. */
export function injectionPatch(pod: PodLike, plan: SidecarPlan): PatchOp[] {
  const ops: PatchOp[] = [];
  const marker = { [Annotation.injected]: plan.version };
  if (!pod.metadata) ops.push({ op: 'add', path: '/metadata', value: { annotations: marker } });
  else if (!pod.metadata.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: marker });
  else ops.push({ op: 'add', path: pointer('metadata', 'annotations', Annotation.injected), value: plan.version });

  // authz first, so it is already listening when Envoy starts taking traffic; both ahead of any
  // existing init container so those run with the pod's network already governed.
  const sidecars = [envoyContainer(plan)];
  if (plan.authz.mode === 'sidecar') sidecars.unshift(authzContainer({ ...plan, authz: plan.authz }));
  // The renewer keeps the certificate the init container fetched fresh for as long as Envoy runs.
  if (plan.identity) sidecars.unshift(identityRenewContainer(plan.identity, restrictedSecurityContext(AUTHZ_UID), plan.sidecarMode === 'native' ? { restartPolicy: 'Always' } : {}));
  // The certificate first: Envoy cannot reach the control plane without it. It runs to completion,
  // so it is an init container in both sidecar modes.
  const inits = plan.identity ? [identityInitContainer(plan.identity, restrictedSecurityContext(AUTHZ_UID))] : [];
  const spec = pod.spec as PodSpec;
  if (plan.sidecarMode === 'containers') {
    // After the MCP server, so it stays the pod's first (kubectl's default) container. Init
    // containers run before these start, ungoverned: nothing else is possible before 1.29.
    for (const c of sidecars) ops.push({ op: 'add', path: '/spec/containers/-', value: c });
  } else inits.push(...sidecars);
  if (inits.length) {
    if (!spec.initContainers) ops.push({ op: 'add', path: '/spec/initContainers', value: inits });
    else inits.forEach((c, i) => ops.push({ op: 'add', path: pointer('spec', 'initContainers', i), value: c }));
  }

  const volumes = [
    ...(plan.authz.mode === 'sidecar' ? authzVolumes({ ...plan, authz: plan.authz }) : []),
    ...(plan.identity ? identityVolumes(plan.identity) : []),
  ];
  if (volumes.length > 0) {
    if (!spec.volumes) ops.push({ op: 'add', path: '/spec/volumes', value: volumes });
    else for (const v of volumes) ops.push({ op: 'add', path: '/spec/volumes/-', value: v });
  }
  return ops;
}

/**
 * Adds the Envoy sidecar (and, unless the pod asks for the shared authz, the authz sidecar) as
 * native sidecars. Pure: the input is not modified. A pod that opted out or is already injected
 * comes back unchanged with an empty patch and the reason; one that cannot be governed as written
 * throws InjectionError.
 */
export function injectSidecars(pod: PodLike, opts: InjectOptions = {}): InjectResult {
  const plan = planInjection(pod, opts);
  if (typeof plan === 'string') return { injected: false, pod, patch: [], reason: plan };
  const patch = injectionPatch(pod, plan);
  return { injected: true, pod: applyPatch(pod, patch), patch, plan };
}
