import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AdsServer, type AdsStatus } from '../xds/server.js';
import { SnapshotCache } from '../xds/cache.js';
import { parseHostPort } from '../util/net.js';
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
  /** Watched YAML file of sidecar defaults; a change is pushed to every sidecar. */
  configFile?: string;
  log?: (msg: string) => void;
}

/** The control plane's xDS side: ADS server + one snapshot per sidecar from its node metadata. */
export class SidecarXds {
  private constructor(readonly ads: AdsServer, readonly registry: SidecarRegistry, private readonly configFile: string | undefined) {}

  static async start(o: SidecarXdsOptions): Promise<SidecarXds> {
    const log = o.log ?? (() => undefined);
    const base = o.defaults;
    const initial = o.configFile ? parseSidecarConfig(readFileSync(o.configFile, 'utf8'), o.configFile, base) : base;
    const cache = new SnapshotCache();
    const registry = new SidecarRegistry(cache, initial, (node, msg) => log(`xds: no config for ${node}: ${msg}`));
    const ads = await AdsServer.start({
      host: o.host, port: o.port, cache, onNode: registry.onNode,
      logger: { info: () => undefined, warn: (obj, msg) => log(`${msg} ${JSON.stringify(obj)}`) },
    });
    const x = new SidecarXds(ads, registry, o.configFile);
    if (o.configFile) {
      const file = o.configFile;
      // Polling, not fs.watch: editors replace files by rename, which inode watches lose.
      watchFile(file, { interval: 500 }, () => {
        try {
          registry.update(parseSidecarConfig(readFileSync(file, 'utf8'), file, base));
          log(`xds: ${file} changed; pushed to ${ads.status().streams.length} sidecar(s)`);
        } catch (e) {
          log(`xds: ${(e as Error).message}; keeping the previous sidecar config`);
        }
      });
    }
    log(`xds: ADS listening on ${ads.address}`);
    return x;
  }

  get port(): number { return this.ads.port; }
  status(): AdsStatus { return this.ads.status(); }

  async stop(): Promise<void> {
    if (this.configFile) unwatchFile(this.configFile);
    await this.ads.stop();
  }
}
