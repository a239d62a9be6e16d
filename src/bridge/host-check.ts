/** Host names a loopback bridge answers to; anything else is a DNS-rebinding attempt. */
export const LOOPBACK_HOSTNAMES = ['localhost', '127.0.0.1', '[::1]'];

function hostnameOf(hostHeader: string): string | null {
  try { return new URL(`http://${hostHeader}`).hostname.toLowerCase(); } catch { return null; }
}

/**
 * Why a request's Host/Origin is refused, or null if it may pass. Both headers are checked by host
 * name only (ports differ behind a proxy); a missing Origin is fine (not a browser).
 */
export function refuseHost(host: string | undefined, origin: string | undefined, allowed: readonly string[]): string | null {
  const ok = (name: string | null): boolean => name !== null && allowed.includes(name);
  if (!host || !ok(hostnameOf(host))) return `Host "${host ?? ''}" is not one this MCP server answers to`;
  if (origin !== undefined) {
    let name: string | null;
    try { name = new URL(origin).hostname.toLowerCase(); } catch { name = null; }
    if (!ok(name)) return `Origin "${origin}" is not allowed`;
  }
  return null;
}
