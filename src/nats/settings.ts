/**
 * How a process reaches NATS: one list of seed URLs and, in a secured mesh, the TLS files that are
 * also its credential (the NATS server maps the client certificate's SPIFFE ID to a user with its
 * permissions; see docs/security.md "NATS"). Pure parsing and checks, no I/O besides none.
 */

export interface NatsTlsFiles {
  /** CA the server certificate must chain to. */
  ca: string;
  /** Client certificate: the credential. Its URI SAN names the NATS user. */
  cert: string;
  key: string;
}

export interface NatsSettings {
  /** Seed URLs; the client learns the rest of a cluster from the server. */
  servers: string[];
  /** null: plain TCP (a NATS without TLS, for tests and single-user development only). */
  tls: NatsTlsFiles | null;
}

export class NatsSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatsSettingsError';
  }
}

const URL_FORMS = /^(nats|tls):\/\/[^\s/,]+$|^[^\s/:,]+:\d{1,5}$/;

/** "nats://a:4222, nats://b:4222" → the seed list; every entry must be a NATS URL. */
export function parseServers(text: string, field = 'NATS URL'): string[] {
  const servers = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (servers.length === 0) throw new NatsSettingsError(`${field} is empty: give nats://HOST:PORT (several comma-separated for a cluster)`);
  for (const s of servers) {
    if (!URL_FORMS.test(s)) throw new NatsSettingsError(`${field}: "${s}" is not a NATS URL (e.g. nats://127.0.0.1:4222, or tls://HOST:PORT)`);
  }
  return servers;
}

/** The three TLS files go together: a certificate without its key (or CA) is a mistake, not a choice. */
export function tlsFiles(given: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined }, names = { ca: '--nats-ca', cert: '--nats-cert', key: '--nats-key' }): NatsTlsFiles | null {
  const { ca, cert, key } = given;
  if (ca === undefined && cert === undefined && key === undefined) return null;
  const missing = (['ca', 'cert', 'key'] as const).filter((k) => !given[k]).map((k) => names[k]);
  if (missing.length) throw new NatsSettingsError(`NATS TLS needs a CA, a client certificate and its key together; missing ${missing.join(', ')}`);
  return { ca: ca!, cert: cert!, key: key! };
}

/** Same servers, same TLS: the one-connection-per-process rule compares settings with this. */
export function sameSettings(a: NatsSettings, b: NatsSettings): boolean {
  const norm = (s: NatsSettings): string => JSON.stringify([[...s.servers].sort(), s.tls]);
  return norm(a) === norm(b);
}

export function describeServers(s: NatsSettings): string {
  return s.servers.join(',');
}

/** host:port of a seed, whatever its scheme: nats://h:4222 and tls://h:4222 are the same server. */
function seedKey(s: string): string {
  return s.replace(/^[a-z]+:\/\//, '');
}

export interface UrlClaim {
  /** The setting that gave it, for the error message (e.g. "--nats", "budgets file nats.url"). */
  field: string;
  url: string | null | undefined;
}

/**
 * The process's one NATS setting from every place that may name servers. All that name some must
 * name the same servers: a process holds one connection, so two URLs are a mistake to report, not
 * a choice to make silently. Returns null when nothing names NATS.
 */
export function resolveProcessNats(claims: UrlClaim[], tls: NatsTlsFiles | null): NatsSettings | null {
  let chosen: { field: string; servers: string[] } | null = null;
  for (const c of claims) {
    if (c.url === null || c.url === undefined || c.url === '') continue;
    const servers = parseServers(c.url, c.field);
    if (!chosen) { chosen = { field: c.field, servers }; continue; }
    const a = [...chosen.servers].map(seedKey).sort().join(',');
    const b = [...servers].map(seedKey).sort().join(',');
    if (a !== b) throw new NatsSettingsError(`one NATS connection per process: ${chosen.field} names ${chosen.servers.join(',')} but ${c.field} names ${servers.join(',')}; give one --nats URL`);
  }
  if (!chosen) {
    if (tls) throw new NatsSettingsError('NATS TLS files are set but no NATS URL is: give --nats URL (or nats.url in the config file)');
    return null;
  }
  // With a client certificate every seed is dialled with TLS, whatever scheme it was written with.
  return { servers: chosen.servers, tls };
}
