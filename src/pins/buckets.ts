/** NATS KV names and keys for pins and observed tool definitions (docs/tool-pinning.md). */

export const PINS_BUCKET = 'tollgate_pins';
export const SEEN_BUCKET = 'tollgate_tools_seen';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
const unb64 = (s: string): string => Buffer.from(s, 'base64url').toString('utf8');

/** KV keys allow only [-/_=.A-Za-z0-9]: server and tool names are base64url-encoded, joined by a dot. */
export function toolKey(server: string, tool: string): string {
  return `${b64(server)}.${b64(tool)}`;
}

export function parseToolKey(key: string): { server: string; tool: string } | null {
  const parts = key.split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return null;
  return { server: unb64(parts[0]), tool: unb64(parts[1]) };
}

/** Key prefix of one server's tools, for watches and listings. */
export const serverKeys = (server: string): string => `${b64(server)}.>`;
