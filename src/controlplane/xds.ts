import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AdsServer, type AdsStatus } from '../xds/server.js';
import { SnapshotCache } from '../xds/cache.js';
import { parseHostPort } from '../util/net.js';
import type { CertFiles } from '../pki/index.js';
import { parseRegistrations } from './registrations.js';
import { SidecarRegistry, type SidecarDefaults } from './sidecars.js';

export class SidecarConfigError extends Error {
  constructor(file: string, field: string, problem: string) {
    super(`${file}: ${field}: ${problem}`);
    this.name = 'SidecarConfigError';
  }
}

/**
 * Pure: the sidecar defaults file (docs/xds.md), applied over `base`. Fields:
 * authz (host:port), authz_timeout_ms, max_request_bytes, issuer, ext_proc, listen_host.
 */
export function parseSidecarConfig(text: string, file: string, base: SidecarDefaults): SidecarDefaults {
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new SidecarConfigError(file, '(file)', (e as Error).message); }
  if (doc == null) return base;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new SidecarConfigError(file, '(top level)', 'must be a mapping');
  const d = doc as Record<string, unknown>;
  const out = { ...base };
  const known = ['authz', 'authz_timeout_ms', 'max_request_bytes', 'issuer', 'ext_proc', 'listen_host'];
  for (const k of Object.keys(d)) if (!known.includes(k)) throw new SidecarConfigError(file, k, `unknown field (known: ${known.join(', ')})`);
  const posInt = (k: string): number => {
    const v = d[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new SidecarConfigError(file, k, 'must be a positive integer');
    return v;
  };
  const text_ = (k: string): string => {
    const v = d[k];
    if (typeof v !== 'string' || !v) throw new SidecarConfigError(file, k, 'must be a non-empty string');
    return v;
  };
  if (d.authz !== undefined) out.authz = parseHostPort(text_('authz'));
  if (d.authz_timeout_ms !== undefined) out.authzTimeoutMs = posInt('authz_timeout_ms');
  if (d.max_request_bytes !== undefined) out.maxRequestBytes = posInt('max_request_bytes');
  if (d.issuer !== undefined) out.issuer = text_('issuer');
  if (d.listen_host !== undefined) out.listenHost = text_('listen_host');
  if (d.ext_proc !== undefined) {
    if (typeof d.ext_proc !== 'boolean') throw new SidecarConfigError(file, 'ext_proc', 'must be true or false');
    out.extProc = d.ext_proc;
  }
  return out;
}

export interface SidecarXdsOptions {
  host: string;
  port: number;
  defaults: SidecarDefaults;
  /** The control plane's certificate and the mesh CA: every sidecar must present a mesh certificate. */
  tls: CertFiles;
  /** Trust domain of the SPIFFE IDs sidecars must carry. */
  trustDomain: string;
  /**
   * Watched YAML of sidecar registrations (controlplane/registrations.ts). Unset: the caller feeds
   * `registry.setRegistrations` (registrations derived from the API server); until then none.
   */
  registrationsFile?: string;
  /** Watched YAML file of sidecar defaults; a change is pushed to every sidecar. */
  configFile?: string;
  /** How long a disconnected sidecar's snapshot is kept (default 60 s). */
  forgetAfterMs?: number;
  log?: (msg: string) => void;
}

/** Polling, not fs.watch: editors and `tollgate up` replace files by rename, which inode watches lose. */
function watchYaml(file: string, apply: (text: string) => void, log: (msg: string) => void, what: string): void {
  watchFile(file, { interval: 500 }, () => {
    try {
      apply(readFileSync(file, 'utf8'));
      log(`xds: ${file} changed; ${what} updated`);
    } catch (e) {
      log(`xds: ${(e as Error).message}; keeping the previous ${what}`);
    }
  });
}

/**
 * The control plane's xDS side: an ADS server that admits only sidecars with a mesh certificate
 * whose identity is registered, and serves each the snapshot built from its registration.
 */
export class SidecarXds {
  private constructor(readonly ads: AdsServer, readonly registry: SidecarRegistry, private readonly files: string[]) {}

  static async start(o: SidecarXdsOptions): Promise<SidecarXds> {
    const log = o.log ?? (() => undefined);
    const base = o.defaults;
    const initial = o.configFile ? parseSidecarConfig(readFileSync(o.configFile, 'utf8'), o.configFile, base) : base;
    const file = o.registrationsFile;
    const regs = file ? parseRegistrations(readFileSync(file, 'utf8'), file) : [];
    const cache = new SnapshotCache();
    let ads: AdsServer | null = null;
    const registry = new SidecarRegistry(cache, initial, {
      forgetAfterMs: o.forgetAfterMs,
      onError: (key, msg) => log(`xds: no config for ${key}: ${msg}`),
      onForget: (key) => log(`xds: forgot ${key}`),
      onWithdraw: (key) => { ads?.endStreams(key, `the registration of node "${key}" was withdrawn`); },
    });
    registry.setRegistrations(regs);
    ads = await AdsServer.start({
      host: o.host, port: o.port, cache, tls: { ...o.tls, trustDomain: o.trustDomain },
      admit: registry.admit, onStreamEnd: registry.streamEnded,
      logger: { info: () => undefined, warn: (obj, msg) => log(`${msg} ${JSON.stringify(obj)}`) },
    });
    const files: string[] = [];
    if (file) {
      files.push(file);
      watchYaml(file, (t) => registry.setRegistrations(parseRegistrations(t, file)), log, 'sidecar registrations');
    }
    if (o.configFile) {
      const cfg = o.configFile;
      files.push(cfg);
      watchYaml(cfg, (t) => registry.update(parseSidecarConfig(t, cfg, base)), log, 'sidecar defaults');
    }
    log(`xds: ADS (mTLS, ${regs.length} registered sidecar(s)) listening on ${ads.address}`);
    return new SidecarXds(ads, registry, files);
  }

  get port(): number { return this.ads.port; }
  status(): AdsStatus { return this.ads.status(); }

  async stop(): Promise<void> {
    for (const f of this.files) unwatchFile(f);
    await this.ads.stop();
    this.registry.close();
  }
}
