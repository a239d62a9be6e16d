import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify as toYaml } from 'yaml';
import { ManagedProcess } from '../../util/process.js';
import { freePort } from '../../util/net.js';
import { toolPath } from '../../util/tools.js';
import { ACCESS_TOKEN_KEY_SET, NEXT_KEY_SET } from './rotate.js';

export interface HydraOptions {
  /** Directory for Hydra's config file (and its sqlite database when `database` is "file"). */
  stateDir: string;
  /** Public port (authorize, token, discovery, JWKS, registration); 0 picks a free one. */
  publicPort?: number;
  /** Admin port (login/consent API, introspection, keys); 0 picks a free one. */
  adminPort?: number;
  /** Where Hydra sends the browser to log in and to consent (our login app). */
  loginUrl: string;
  consentUrl: string;
  /** "jwt": RFC 9068-style signed access tokens; "opaque": random strings, checked by introspection (RFC 7662). */
  accessTokenStrategy?: 'jwt' | 'opaque';
  /** Access token lifetime, e.g. "5m" (Hydra duration syntax). */
  accessTokenTtl?: string;
  /** Session claims the consent app sets that Hydra copies to the top level of JWT access tokens. */
  topLevelClaims?: string[];
  /** "memory" (default) forgets everything when Hydra stops; "file" keeps clients and keys under stateDir. */
  database?: 'memory' | 'file';
  echo?: boolean;
}

/** The Hydra configuration Tollgate runs: dev mode (plain HTTP on loopback), DCR on, PKCE required. */
export function hydraConfig(o: HydraOptions, ports: { public: number; admin: number }, systemSecret: string): Record<string, unknown> {
  const issuer = `http://127.0.0.1:${ports.public}`;
  return {
    serve: {
      public: { host: '127.0.0.1', port: ports.public },
      admin: { host: '127.0.0.1', port: ports.admin },
      cookies: { same_site_mode: 'Lax' },
    },
    urls: { self: { issuer, public: issuer }, login: o.loginUrl, consent: o.consentUrl },
    secrets: { system: [systemSecret] },
    strategies: { access_token: o.accessTokenStrategy ?? 'jwt', jwt: { scope_claim: 'list' } },
    ttl: { access_token: o.accessTokenTtl ?? '10m', refresh_token: '24h' },
    oauth2: {
      // MCP clients are public clients (no secret): PKCE is what binds the code to them.
      pkce: { enforced: true },
      allowed_top_level_claims: o.topLevelClaims ?? ['team', 'groups'],
      mirror_top_level_claims: false,
    },
    oidc: {
      dynamic_client_registration: { enabled: true, default_scope: ['openid', 'offline_access', 'offline'] },
    },
    // Hydra advertises registration_endpoint only when told where it is (RFC 8414 / RFC 7591).
    // The JWKS also carries the announced next access-token key (rotate.ts).
    webfinger: { jwks: { broadcast_keys: ['hydra.openid.id-token', ACCESS_TOKEN_KEY_SET, NEXT_KEY_SET] }, oidc_discovery: { supported_scope: ['openid', 'offline_access', 'offline'], client_registration_url: `${issuer}/oauth2/register` } },
    log: { level: 'warn', format: 'json' },
  };
}

/**
 * A real Ory Hydra (built by `make hydra`) on loopback: the authorization server the MCP login
 * flow, introspection and key rotation are tested against, and that `tollgate up --idp hydra` runs.
 */
export class HydraServer {
  private constructor(readonly issuer: string, readonly adminUrl: string, private readonly proc: ManagedProcess) {}

  get publicUrl(): string { return this.issuer; }

  static async start(o: HydraOptions): Promise<HydraServer> {
    mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    const ports = {
      public: o.publicPort ? o.publicPort : await freePort(),
      admin: o.adminPort ? o.adminPort : await freePort(),
    };
    // Hydra encrypts its stored keys with this: a memory database gets a fresh one, a file database
    // keeps its own beside it (0600), or a restart could not read its keys.
    const secret = (o.database ?? 'memory') === 'memory' ? randomBytes(32).toString('base64url') : systemSecret(join(o.stateDir, 'hydra-system-secret'));
    const cfg = hydraConfig(o, ports, secret);
    const cfgFile = join(o.stateDir, 'hydra.yaml');
    writeFileSync(cfgFile, toYaml(cfg), { mode: 0o600 });
    const bin = toolPath('hydra');
    const dsn = (o.database ?? 'memory') === 'memory' ? 'memory' : `sqlite://${join(o.stateDir, 'hydra.sqlite')}?_fk=true`;
    const env = { ...process.env, DSN: dsn };
    if (dsn !== 'memory') {
      const mig = await ManagedProcess.start('hydra-migrate', bin, ['migrate', 'sql', 'up', '-e', '--yes', '-c', cfgFile], { env, timeoutMs: 60_000 });
      const code = await mig.exited;
      if (code !== 0) throw new Error(`hydra migrate failed (code ${code}):\n${mig.output.slice(-2000)}`);
    }
    const issuer = `http://127.0.0.1:${ports.public}`;
    const adminUrl = `http://127.0.0.1:${ports.admin}`;
    const proc = await ManagedProcess.start('hydra', bin, ['serve', 'all', '--dev', '-c', cfgFile], {
      env, echo: o.echo, timeoutMs: 60_000,
      ready: () => waitReady([`${issuer}/health/ready`, `${adminUrl}/health/ready`]),
    });
    // Hydra makes its signing keys (RSA) on first use, which takes seconds here: do it now, so the
    // first login and the first token check do not pay for it inside someone's timeout.
    try {
      await waitReady([`${issuer}/.well-known/openid-configuration`, `${issuer}/.well-known/jwks.json`]);
    } catch (e) {
      await proc.stop();
      throw new Error(`Hydra started but does not serve its keys: ${(e as Error).message}\n${proc.output.slice(-2000)}`);
    }
    return new HydraServer(issuer, adminUrl, proc);
  }

  get output(): string { return this.proc.output; }

  stop(): Promise<void> { return this.proc.stop(); }
}

function systemSecret(path: string): string {
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('base64url'), { mode: 0o600 });
  const s = readFileSync(path, 'utf8').trim();
  if (s.length < 16) throw new Error(`${path}: Hydra's system secret must be at least 16 characters`);
  return s;
}

async function waitReady(urls: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const url of urls) {
    for (;;) {
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
        await r.body?.cancel();
        if (r.status === 200) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
