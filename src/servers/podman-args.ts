import type { PermissionProfile } from './profile.js';

export interface ContainerLimits { memory: string; cpus: string; pids: number }
export const DEFAULT_LIMITS: ContainerLimits = { memory: '512m', cpus: '1', pids: 256 };

/** The unprivileged user of the base image (images/build-base.sh). */
export const CONTAINER_USER = '65532:65532';
/** Where the egress relay's unix socket is mounted inside the container. */
export const EGRESS_SOCKET_DIR = '/run/tollgate-egress';
export const EGRESS_PROXY_PORT = 3128;

/**
 * `podman run` arguments for one server session. Locked down by default: no network at all
 * (loopback only), read-only root, no new privileges, every capability dropped, non-root,
 * memory/CPU/pid limits, a small private /tmp. The profile adds exactly its mounts; outbound
 * access goes only through the egress proxy's socket, never a network interface. Variable values
 * are neither in the arguments nor in podman's environment: they come from a root-only env file
 * (src/servers/container-env.ts). The image and the command come after "--", so neither is ever
 * read as a podman option.
 */
export function podmanRunArgs(o: {
  image: string; command: string[]; envFile: string | null; profile: PermissionProfile; limits?: ContainerLimits;
  name: string; egressSocketDir: string | null; relayScript: string | null;
}): string[] {
  const l = o.limits ?? DEFAULT_LIMITS;
  const args = [
    'run', '--rm', '-i', '--pull=never', '--network', 'none', '--read-only', '--read-only-tmpfs=false',
    '--security-opt', 'no-new-privileges', '--cap-drop', 'all', '--user', CONTAINER_USER,
    '--memory', l.memory, '--cpus', l.cpus, '--pids-limit', String(l.pids),
    '--tmpfs', '/tmp:rw,size=64m,mode=1777', '--tmpfs', '/home/tollgate:rw,size=64m,mode=1777',
    '--label', `tollgate.server=${o.name}`, '--log-driver', 'none',
  ];
  for (const m of o.profile.mounts) args.push('--mount', `type=bind,source=${m.host},target=${m.container}${m.writable ? '' : ',readonly'}`);
  if (o.envFile) args.push('--env-file', o.envFile);
  let command = o.command;
  if (o.egressSocketDir && o.relayScript) {
    const proxy = `http://127.0.0.1:${EGRESS_PROXY_PORT}`;
    args.push('--mount', `type=bind,source=${o.egressSocketDir},target=${EGRESS_SOCKET_DIR}`,
      '--mount', `type=bind,source=${o.relayScript},target=/opt/tollgate/egress-relay.mjs,readonly`,
      '--env', `HTTP_PROXY=${proxy}`, '--env', `HTTPS_PROXY=${proxy}`, '--env', `http_proxy=${proxy}`, '--env', `https_proxy=${proxy}`);
    command = ['node', '/opt/tollgate/egress-relay.mjs', ...o.command];
  }
  // "--" ends podman's options: whatever the image name is, podman reads it as the image, never as
  // an option such as --user=0, --privileged or -v /:/host.
  if (!o.image || o.image.startsWith('-')) throw new Error(`"${o.image}" is not an image name`);
  args.push('--', o.image, ...command);
  return args;
}
