import type { SidecarRegistration } from '../controlplane/registrations.js';
import { spiffeId } from '../pki/identity.js';
import { Annotation } from './annotations.js';
import { injectedPodFacts, InjectionError } from './mutate.js';
import type { PodLike } from './types.js';

/**
 * Pure: the sidecar registration of an injected pod, from facts the API server vouches for — the
 * pod's namespace, name and service account, and the spec its creator wrote (ports, server name,
 * authz placement). Nothing comes from what the pod's Envoy says about itself over xDS.
 */

export interface PodRegistrationContext {
  trustDomain: string;
  /** What the MCP listener binds: 0.0.0.0 in a pod. */
  listenHost: string;
  /** RFC 9728 resource URL of the MCPServer `<namespace>/<server>`, when one declares it. */
  resourceOf?: (namespace: string, server: string) => string | undefined;
}

export type PodRegistration = { registration: SidecarRegistration } | { skipped: string };

const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);

export function registrationFromPod(pod: PodLike, ctx: PodRegistrationContext): PodRegistration {
  const meta = pod.metadata ?? {};
  const { namespace, name } = meta;
  if (!namespace || !name) return { skipped: 'has no namespace or name yet' };
  if (meta.annotations?.[Annotation.injected] === undefined) return { skipped: `not injected (no ${Annotation.injected} annotation)` };
  if (meta.deletionTimestamp) return { skipped: 'is being deleted' };
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  if (phase && TERMINAL_PHASES.has(phase)) return { skipped: `has finished (${phase})` };
  // The API server fills in "default" when the creator names no service account; so do we.
  const sa = (pod.spec?.serviceAccountName as string | undefined) || 'default';
  let facts;
  let identity;
  try {
    facts = injectedPodFacts(pod);
    identity = spiffeId({ trustDomain: ctx.trustDomain, namespace, serviceAccount: sa });
  } catch (e) {
    return { skipped: e instanceof InjectionError ? e.message : `cannot be given an identity: ${(e as Error).message}` };
  }
  const registration: SidecarRegistration = {
    identity,
    nodeId: `${namespace}/${name}`,
    // The workload certificate names its pod (CN <namespace>/<pod>): another pod of the same
    // service account cannot take this node id either.
    podBound: true,
    server: facts.server,
    namespace,
    listen: { host: ctx.listenHost, port: facts.mcpPort },
    mcpPath: facts.mcpPath,
    upstream: { host: '127.0.0.1', port: facts.upstreamPort },
  };
  // A shared authz is the control plane's default authz (--authz); a sidecar one is in the pod.
  if (facts.authz.mode === 'sidecar') registration.authz = { host: '127.0.0.1', port: facts.authz.port };
  const resource = ctx.resourceOf?.(namespace, facts.server);
  if (resource) registration.resourceUrl = resource;
  return { registration };
}
