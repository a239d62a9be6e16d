import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isObject } from '../util/object.js';

/**
 * Permission profile of a server Tollgate runs, in ToolHive's JSON format so existing profiles
 * carry over: `read` and `write` mounts ("/host/path" or "/host/path:/container/path"), and
 * `network.outbound` with `allow_host`, `allow_port` and `insecure_allow_all`. The default opens
 * nothing: no mounts, no network.
 */
export interface Mount { host: string; container: string; writable: boolean }
export interface PermissionProfile {
  mounts: Mount[];
  outbound: { allowAll: boolean; hosts: string[]; ports: number[] };
}

export const DEFAULT_PROFILE: PermissionProfile = Object.freeze({ mounts: [], outbound: { allowAll: false, hosts: [], ports: [] } }) as PermissionProfile;

function mount(spec: unknown, writable: boolean, at: string): Mount {
  if (typeof spec !== 'string' || !spec) throw new Error(`${at} must be a path or "host:container"`);
  const i = spec.indexOf(':');
  const host = i < 0 ? spec : spec.slice(0, i);
  const container = i < 0 ? spec : spec.slice(i + 1);
  if (!isAbsolute(host) || !isAbsolute(container)) throw new Error(`${at}: "${spec}" must use absolute paths`);
  if (host.includes(',') || container.includes(',')) throw new Error(`${at}: "${spec}" may not contain commas`);
  return { host, container, writable };
}

export function parseProfile(doc: unknown, where = 'profile'): PermissionProfile {
  if (!isObject(doc)) throw new Error(`${where}: must be a JSON object`);
  for (const k of Object.keys(doc)) {
    if (!['read', 'write', 'network', 'privileged', 'name'].includes(k)) throw new Error(`${where}: unknown field "${k}" (known: read, write, network)`);
  }
  if (doc.privileged === true) throw new Error(`${where}: privileged containers are never run by Tollgate`);
  const list = (k: 'read' | 'write'): unknown[] => {
    const v = doc[k] ?? [];
    if (!Array.isArray(v)) throw new Error(`${where}: ${k} must be a list of paths`);
    return v;
  };
  const mounts = [...list('read').map((m, i) => mount(m, false, `${where}: read[${i}]`)), ...list('write').map((m, i) => mount(m, true, `${where}: write[${i}]`))];
  const out = { allowAll: false, hosts: [] as string[], ports: [] as number[] };
  if (doc.network !== undefined) {
    if (!isObject(doc.network)) throw new Error(`${where}: network must be an object`);
    const o = doc.network.outbound;
    if (o !== undefined) {
      if (!isObject(o)) throw new Error(`${where}: network.outbound must be an object`);
      out.allowAll = o.insecure_allow_all === true;
      const hosts = o.allow_host ?? [];
      const ports = o.allow_port ?? [];
      if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== 'string' || !/^\.?[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:]+\]$/.test(h))) throw new Error(`${where}: network.outbound.allow_host must list host names or addresses`);
      if (!Array.isArray(ports) || ports.some((p) => !Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535)) throw new Error(`${where}: network.outbound.allow_port must list ports 1-65535`);
      out.hosts = (hosts as string[]).map((h) => h.toLowerCase());
      out.ports = ports as number[];
    }
  }
  return { mounts, outbound: out };
}

export function loadProfile(path: string): PermissionProfile {
  let doc: unknown;
  try { doc = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new Error(`cannot read permission profile ${path}: ${(e as Error).message}`); }
  return parseProfile(doc, path);
}

/**
 * Whether the profile lets the server open host:port. A host entry matches exactly, or, starting
 * with a dot, any subdomain (ToolHive's ".example.com"). No ports listed: none are allowed.
 */
export function egressAllowed(p: PermissionProfile, host: string, port: number): boolean {
  if (p.outbound.allowAll) return true;
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  const hostOk = p.outbound.hosts.some((a) => {
    const x = a.replace(/^\[|\]$/g, '');
    return x.startsWith('.') ? h.endsWith(x) || h === x.slice(1) : h === x;
  });
  return hostOk && p.outbound.ports.includes(port);
}
