import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { validateGatewayConfig } from '../gateway/config.js';
import { DEFAULT_MCP_PATH } from '../k8s/annotations.js';
import { defaultAuthzImage } from '../k8s/mutate.js';
import { AUTHZ_UID, restrictedSecurityContext } from '../k8s/sidecars.js';
import { MANAGED_BY, type KubeManifest, type MeshSettings } from './server-objects.js';
import { API_VERSION, type McpServer, type VirtualMcpServer } from './types.js';

/**
 * What a VirtualMCPServer turns into: the `tollgate gateway` configuration (a ConfigMap, checked
 * against the gateway's own schema before it is applied), a Deployment running it, and a Service.
 * Pure: members are looked up by the caller; a missing one is a MemberError.
 */

export const GATEWAY_PORT = 10100;
const CONFIG_DIR = '/etc/tollgate/gateway';
const SECRET_DIR = '/etc/tollgate/gateway-secret';

export class MemberError extends Error {}

/** The governed URL of a member: its Service, which leads to its Envoy sidecar. */
export function memberUrl(m: McpServer): string {
  const path = m.spec.upstream?.path ?? DEFAULT_MCP_PATH;
  if (m.spec.run || m.spec.source) return `http://${m.metadata.name}.${m.metadata.namespace}.svc:${m.spec.upstream?.port ?? 80}${path}`;
  const up = m.spec.upstream!;
  return `http://${up.service}.${up.namespace ?? m.metadata.namespace}.svc:${up.port}${path}`;
}

function names(v: VirtualMcpServer): { config: string; labels: Record<string, string>; selector: Record<string, string> } {
  const selector = { 'app.kubernetes.io/name': v.metadata.name, 'app.kubernetes.io/component': 'gateway', 'app.kubernetes.io/managed-by': MANAGED_BY };
  return { config: `${v.metadata.name}-gateway`, labels: { ...selector, 'app.kubernetes.io/part-of': 'tollgate' }, selector };
}

function meta(v: VirtualMcpServer, name: string): KubeManifest['metadata'] {
  return {
    name, namespace: v.metadata.namespace, labels: names(v).labels,
    ownerReferences: v.metadata.uid ? [{ apiVersion: API_VERSION, kind: 'VirtualMCPServer', name: v.metadata.name, uid: v.metadata.uid, controller: true, blockOwnerDeletion: true }] : [],
  };
}

export function endpointOf(v: VirtualMcpServer): string {
  return `http://${v.metadata.name}.${v.metadata.namespace}.svc:${v.spec.port ?? 80}/mcp`;
}

/** The gateway.yaml (docs/gateway.md); throws MemberError naming members that do not exist. */
export function gatewayConfig(v: VirtualMcpServer, members: ReadonlyMap<string, McpServer>): Record<string, unknown> {
  const missing = v.spec.servers.filter((s) => !members.has(s.name)).map((s) => s.name);
  if (missing.length) throw new MemberError(`no MCPServer ${missing.join(', ')} in namespace ${v.metadata.namespace}`);
  const key = v.spec.delegation.clientSecretRef.key ?? 'client-secret';
  const cfg = {
    listen: `0.0.0.0:${GATEWAY_PORT}`,
    path: '/mcp',
    public_url: endpointOf(v),
    mode: v.spec.mode ?? 'aggregate',
    identity: { issuer: v.spec.identity.issuer, ...(v.spec.identity.audience?.length ? { audience: v.spec.identity.audience } : {}) },
    delegation: {
      client_id: v.spec.delegation.clientId, client_secret_file: `${SECRET_DIR}/${key}`,
      ...(v.spec.delegation.tokenEndpoint ? { token_endpoint: v.spec.delegation.tokenEndpoint } : {}),
    },
    servers: v.spec.servers.map((s) => {
      const m = members.get(s.name)!;
      // The member's sidecar accepts tokens for its own audience: the delegated token is minted for it.
      const audience = m.spec.audience?.[0] ?? m.spec.resource;
      return { name: s.name, url: memberUrl(m), ...(audience ? { audience } : {}), ...(s.prefix === false ? { prefix: false } : {}) };
    }),
  };
  // The gateway would refuse to start on a config its schema rejects: refuse it here instead.
  validateGatewayConfig(cfg, `VirtualMCPServer ${v.metadata.namespace}/${v.metadata.name}`);
  return cfg;
}

export function virtualChildren(v: VirtualMcpServer, members: ReadonlyMap<string, McpServer>, mesh: MeshSettings): KubeManifest[] {
  const n = names(v);
  const cfg = gatewayConfig(v, members);
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(v, n.config), data: { 'gateway.yaml': stringify(cfg) } };
  const deployment: KubeManifest = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(v, n.config),
    spec: {
      replicas: v.spec.replicas ?? 1,
      selector: { matchLabels: n.selector },
      template: {
        metadata: {
          labels: n.selector,
          // A new configuration rolls the pods (the gateway reads it at start).
          annotations: { 'tollgate.dev/gateway-config-sha256': sha256(configMap.data['gateway.yaml']) },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'gateway',
            image: mesh.inject.authzImage ?? defaultAuthzImage(),
            args: ['gateway', '--config', `${CONFIG_DIR}/gateway.yaml`],
            ports: [{ name: 'mcp', containerPort: GATEWAY_PORT, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port: GATEWAY_PORT }, periodSeconds: 5 },
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
            securityContext: restrictedSecurityContext(AUTHZ_UID),
            volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }, { name: 'client-secret', mountPath: SECRET_DIR, readOnly: true }],
          }],
          volumes: [
            { name: 'config', configMap: { name: n.config } },
            { name: 'client-secret', secret: { secretName: v.spec.delegation.clientSecretRef.name } },
          ],
        },
      },
    },
  };
  const service: KubeManifest = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(v, v.metadata.name),
    spec: { selector: n.selector, ports: [{ name: 'mcp', port: v.spec.port ?? 80, targetPort: GATEWAY_PORT, protocol: 'TCP', appProtocol: 'http' }] },
  };
  return [configMap as unknown as KubeManifest, deployment, service];
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
