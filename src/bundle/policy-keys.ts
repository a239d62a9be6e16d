/**
 * The NATS KV pointer keys of policies published from MCPPolicy objects. The operator publishes
 * under them, the injector names a pod's key, authz follows it, and the operator's NATS
 * credential may write only under the prefix: one definition for all four.
 */

export const MCPPOLICY_POINTER_PREFIX = 'mcppolicy';

/** `nats_pointer_key: auto` in authz.yaml: follow the key the injector put in this environment variable. */
export const AUTO_POINTER_KEY = 'auto';
export const POINTER_KEY_ENV = 'TOLLGATE_POLICY_POINTER_KEY';

/** Where an MCPPolicy's own bundle is published (its `status.pointerKey`). */
export function policyPointerKey(namespace: string, policy: string): string {
  return `${MCPPOLICY_POINTER_PREFIX}.${namespace}.${policy}`;
}

/**
 * Where the policy in force for server `<namespace>/<server>` is published. `_server` cannot clash
 * with a policy's key: Kubernetes object names have no "_".
 */
export function serverPointerKey(namespace: string, server: string): string {
  return `${MCPPOLICY_POINTER_PREFIX}.${namespace}._server.${server}`;
}

/** The pointer key authz follows: `auto` becomes the injector's key, refused when there is none. */
export function resolvePointerKey(configured: string | undefined, env: Record<string, string | undefined>): string | undefined {
  if (configured !== AUTO_POINTER_KEY) return configured;
  const key = env[POINTER_KEY_ENV];
  if (!key) throw new Error(`policy.nats_pointer_key is "auto", but ${POINTER_KEY_ENV} is not set: it is set in pods injected by tollgate (webhook, inject, operator); elsewhere name the key`);
  return key;
}
