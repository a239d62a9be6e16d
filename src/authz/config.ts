import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseYaml } from '../util/yaml-lazy.js';
import type { IdentityConfig } from '../identity/types.js';
import { parseIdentityExtras, parseUpstreamCredentials } from '../identity/config-schema.js';
import type { UpstreamCredentialsConfig } from '../identity/upstream-credentials.js';
import { DEFAULT_BODY_LIMITS, type BodyLimits } from '../mcp/jsonrpc.js';
import type { ServerProvenance } from '../contract/policy.js';
import { parseHostPort } from '../util/net.js';
import { DEFAULT_TRUST_DOMAIN } from '../pki/identity.js';
import type { NatsTlsFiles } from '../nats/settings.js';
import { NAMESPACE_NAME } from '../budget/config.js';

/**
 * authz configuration. Every field is documented in docs/configuration.md; the YAML file uses the
 * snake_case names shown there, and command-line flags override the file.
 */
export interface AuthzConfig {
  listen: { host: string; port: number };
  instanceId: string;
  server: { name: string; namespace: string; provenance?: ServerProvenance | null };
  resourceMetadataUrl: string;
  identity: IdentityConfig;
  policy: {
    dir: string | null;
    bundleUrl: string | null;
    /** Signed bundles from NATS; url null: the process's NATS (`nats.url`). pointerKey: the policy set to follow (an MCPPolicy's is mcppolicy.<namespace>.<name>). */
    nats: { url: string | null; verificationKey: string; pointerKey?: string } | null;
    /** Public key(s) to verify bundles from bundleUrl; unset: unsigned bundles are accepted. */
    bundleKey: string | null;
    entrypoint: 'tollgate' | 'envoy';
    watch: boolean;
  };
  limits: BodyLimits;
  denyStatus: number;
  upstreamAuthorization: string | null;
  /** Per-caller short-lived upstream credentials minted with Tollgate's key (instead of upstreamAuthorization). */
  upstreamCredentials?: UpstreamCredentialsConfig | null;
  stateDir: string;
  decisionLogDir: string | null;
  /** The one NATS connection every capability uses: seed URLs and the client certificate (credential). */
  nats: { url: string | null; tls: NatsTlsFiles | null };
  /** Replicate decision records to NATS JetStream (local files stay the source of truth). */
  decisionLogReplicate: boolean;
  /** Older form: replicate to this URL (must name the same servers as nats.url when both are set). */
  decisionLogNatsUrl: string | null;
  /** Append-only checkpoint witness outside the log directory; unset: `<decision log dir>.witness.jsonl`, null: none. */
  decisionLogWitness?: string | null;
  budgetsFile: string | null;
  /**
   * The Kubernetes namespace this authz serves (`budget_namespace`, `--budget-namespace`; the
   * injector sets it to the pod's namespace): becomes the budgets file's `nats.namespace`, and a
   * file naming another namespace is refused. null: the file decides.
   */
  budgetNamespace?: string | null;
  /** Tool pinning (docs/tool-pinning.md): pins from NATS KV, trusted when signed by an approver key. */
  pins: { natsUrl: string; approverKey: string } | null;
  metricsListen: { host: string; port: number } | null;
  /** Serve gRPC over mTLS (authz reached across pods); null: plaintext, for the pod's loopback. */
  tls: AuthzTls | null;
}

export interface AuthzTls {
  cert: string;
  key: string;
  /** CA that Envoy's workload certificate must chain to. */
  clientCa: string;
  /** SPIFFE trust domain of the callers. */
  trustDomain: string;
  /** SPIFFE IDs allowed to call; empty: any workload of the trust domain with a mesh certificate. */
  allowedPeers: string[];
}

/** identity fields parsed by the zod schema in src/identity/config-schema.ts. */
const IDENTITY_EXTRA_FIELDS = ['profile', 'introspection'];

export const DEFAULT_RESOURCE = 'http://127.0.0.1:10000/mcp';

export function defaultConfig(): AuthzConfig {
  const stateDir = process.env.TOLLGATE_STATE_DIR ?? '.state';
  return {
    listen: { host: '127.0.0.1', port: 9191 },
    instanceId: `${hostname()}-${process.pid}`,
    server: { name: 'default', namespace: 'default' },
    resourceMetadataUrl: 'http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp',
    identity: {
      issuer: 'http://127.0.0.1:5556',
      audience: [DEFAULT_RESOURCE],
      algorithms: ['ES256', 'RS256', 'EdDSA', 'PS256', 'ES384'],
      clockToleranceSec: 30,
      claims: { team: 'team', groups: 'groups', agent: 'agent' },
    },
    policy: { dir: null, bundleUrl: null, nats: null, bundleKey: null, entrypoint: 'tollgate', watch: false },
    limits: { ...DEFAULT_BODY_LIMITS },
    denyStatus: 200,
    upstreamAuthorization: null,
    stateDir,
    decisionLogDir: `${stateDir}/decisions`,
    nats: { url: null, tls: null },
    decisionLogReplicate: false,
    decisionLogNatsUrl: null,
    budgetsFile: null,
    pins: null,
    metricsListen: null,
    tls: null,
  };
}

type Obj = Record<string, unknown>;

export class ConfigError extends Error {
  constructor(file: string, field: string, problem: string) {
    super(`${file}: ${field}: ${problem}`);
    this.name = 'ConfigError';
  }
}

function isObj(v: unknown): v is Obj { return typeof v === 'object' && v !== null && !Array.isArray(v); }

/** Reads a YAML config file on top of the defaults; unknown keys are errors (typos must not pass silently). */
export function loadConfigFile(path: string, base: AuthzConfig = defaultConfig()): AuthzConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(path, '(file)', (e as Error).message);
  }
  if (doc == null) return base;
  if (!isObj(doc)) throw new ConfigError(path, '(top level)', 'must be a mapping');
  const c = structuredClone(base);
  const err = (f: string, p: string): never => { throw new ConfigError(path, f, p); };
  const str = (f: string, v: unknown): string => (typeof v === 'string' && v.length > 0 ? v : err(f, 'must be a non-empty string'));
  const num = (f: string, v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : err(f, 'must be a non-negative number'));
  const strList = (f: string, v: unknown): string[] => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : typeof v === 'string' ? [v] : err(f, 'must be a string or a list of strings'));
  const known = (f: string, o: Obj, keys: string[]): void => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) err(`${f}${f ? '.' : ''}${k}`, `unknown field (known: ${keys.join(', ')})`);
  };
  known('', doc, ['listen', 'instance', 'server', 'resource_metadata_url', 'identity', 'policy', 'limits', 'deny_status', 'upstream_authorization', 'upstream_credentials', 'state_dir', 'decision_log_dir', 'decision_log_nats_url', 'decision_log_replicate', 'decision_log_witness', 'nats', 'budgets_file', 'budget_namespace', 'pins', 'metrics_listen', 'tls']);
  if (doc.nats !== undefined) {
    if (!isObj(doc.nats)) err('nats', 'must be a mapping (url, ca_file, cert_file, key_file)');
    const n = doc.nats as Obj;
    known('nats', n, ['url', 'ca_file', 'cert_file', 'key_file']);
    if (n.url !== undefined) c.nats.url = str('nats.url', n.url);
    const files = [n.ca_file, n.cert_file, n.key_file];
    if (files.some((f) => f !== undefined)) {
      if (files.some((f) => f === undefined)) err('nats', 'ca_file, cert_file and key_file go together (the client certificate is the NATS credential)');
      c.nats.tls = { ca: str('nats.ca_file', n.ca_file), cert: str('nats.cert_file', n.cert_file), key: str('nats.key_file', n.key_file) };
    }
  }
  if (doc.listen !== undefined) c.listen = parseHostPort(str('listen', doc.listen));
  if (doc.instance !== undefined) c.instanceId = str('instance', doc.instance);
  if (doc.server !== undefined) {
    if (!isObj(doc.server)) err('server', 'must be a mapping');
    const s = doc.server as Obj;
    known('server', s, ['name', 'namespace', 'provenance']);
    if (s.name !== undefined) c.server.name = str('server.name', s.name);
    if (s.namespace !== undefined) c.server.namespace = str('server.namespace', s.namespace);
    if (s.provenance !== undefined) c.server.provenance = parseProvenance(s.provenance, 'server.provenance');
  }
  if (doc.resource_metadata_url !== undefined) c.resourceMetadataUrl = str('resource_metadata_url', doc.resource_metadata_url);
  if (doc.identity !== undefined) {
    if (!isObj(doc.identity)) err('identity', 'must be a mapping');
    const i = doc.identity as Obj;
    known('identity', i, ['issuer', 'audience', 'algorithms', 'jwks_uri', 'clock_tolerance_sec', 'jwks_cooldown_sec', 'jwks_cache_max_age_sec', 'claims', ...IDENTITY_EXTRA_FIELDS]);
    let extras;
    try {
      extras = parseIdentityExtras(Object.fromEntries(IDENTITY_EXTRA_FIELDS.filter((k) => i[k] !== undefined).map((k) => [k, i[k]])));
    } catch (e) {
      throw new ConfigError(path, 'identity', (e as Error).message);
    }
    if (extras.profile !== undefined) c.identity.profile = extras.profile;
    if (extras.introspection !== undefined) {
      const t = extras.introspection;
      c.identity.introspection = {
        endpoint: t.endpoint, cacheMaxEntries: t.cache_max_entries, cacheTtlSec: t.cache_ttl_sec, timeoutMs: t.timeout_ms,
        ...(t.client_id !== undefined ? { clientId: t.client_id, clientSecretFile: t.client_secret_file! } : {}),
      };
    }
    if (i.issuer !== undefined) c.identity.issuer = str('identity.issuer', i.issuer);
    if (i.audience !== undefined) c.identity.audience = strList('identity.audience', i.audience);
    if (i.algorithms !== undefined) {
      c.identity.algorithms = strList('identity.algorithms', i.algorithms);
      if (c.identity.algorithms.some((a) => a.toLowerCase() === 'none')) err('identity.algorithms', '"none" is never accepted');
    }
    if (i.jwks_uri !== undefined) c.identity.jwksUri = str('identity.jwks_uri', i.jwks_uri);
    if (i.clock_tolerance_sec !== undefined) c.identity.clockToleranceSec = num('identity.clock_tolerance_sec', i.clock_tolerance_sec);
    if (i.jwks_cooldown_sec !== undefined) c.identity.jwksCooldownSec = num('identity.jwks_cooldown_sec', i.jwks_cooldown_sec);
    if (i.jwks_cache_max_age_sec !== undefined) c.identity.jwksCacheMaxAgeSec = num('identity.jwks_cache_max_age_sec', i.jwks_cache_max_age_sec);
    if (i.claims !== undefined) {
      if (!isObj(i.claims)) err('identity.claims', 'must be a mapping');
      const cl = i.claims as Obj;
      known('identity.claims', cl, ['team', 'groups', 'agent']);
      for (const k of ['team', 'groups', 'agent'] as const) if (cl[k] !== undefined) c.identity.claims[k] = str(`identity.claims.${k}`, cl[k]);
    }
  }
  if (doc.policy !== undefined) {
    if (!isObj(doc.policy)) err('policy', 'must be a mapping');
    const p = doc.policy as Obj;
    known('policy', p, ['dir', 'bundle_url', 'bundle_verification_key', 'nats_url', 'from_nats', 'verification_key', 'nats_pointer_key', 'entrypoint', 'watch']);
    if (p.dir !== undefined) c.policy.dir = str('policy.dir', p.dir);
    if (p.bundle_url !== undefined) c.policy.bundleUrl = str('policy.bundle_url', p.bundle_url);
    if (p.bundle_verification_key !== undefined) c.policy.bundleKey = str('policy.bundle_verification_key', p.bundle_verification_key);
    if (p.nats_url !== undefined) c.policy.nats = { url: str('policy.nats_url', p.nats_url), verificationKey: str('policy.verification_key', p.verification_key) };
    else if (p.from_nats === true) c.policy.nats = { url: null, verificationKey: str('policy.verification_key', p.verification_key) };
    if (p.nats_pointer_key !== undefined) {
      if (!c.policy.nats) err('policy.nats_pointer_key', 'only applies with policy.nats_url or policy.from_nats');
      const key = str('policy.nats_pointer_key', p.nats_pointer_key);
      if (!/^[-/_=.a-zA-Z0-9]+$/.test(key)) err('policy.nats_pointer_key', `"${key}" is not a NATS KV key (letters, digits, - / _ = .)`);
      c.policy.nats!.pointerKey = key;
    }
    if (p.entrypoint !== undefined) {
      if (p.entrypoint !== 'tollgate' && p.entrypoint !== 'envoy') err('policy.entrypoint', 'must be "tollgate" or "envoy"');
      c.policy.entrypoint = p.entrypoint as 'tollgate' | 'envoy';
    }
    if (p.watch !== undefined) c.policy.watch = p.watch === true;
  }
  if (doc.limits !== undefined) {
    if (!isObj(doc.limits)) err('limits', 'must be a mapping');
    const l = doc.limits as Obj;
    known('limits', l, ['max_body_bytes', 'max_depth', 'max_batch']);
    if (l.max_body_bytes !== undefined) c.limits.maxBytes = num('limits.max_body_bytes', l.max_body_bytes);
    if (l.max_depth !== undefined) c.limits.maxDepth = num('limits.max_depth', l.max_depth);
    if (l.max_batch !== undefined) c.limits.maxBatch = num('limits.max_batch', l.max_batch);
  }
  if (doc.deny_status !== undefined) {
    const s = num('deny_status', doc.deny_status);
    if (s < 200 || s > 599) err('deny_status', 'must be an HTTP status (200-599)');
    c.denyStatus = s;
  }
  if (doc.upstream_authorization !== undefined) c.upstreamAuthorization = str('upstream_authorization', doc.upstream_authorization);
  if (doc.upstream_credentials !== undefined && doc.upstream_credentials !== null) {
    if (doc.upstream_authorization !== undefined) err('upstream_credentials', 'give upstream_credentials or upstream_authorization, not both');
    try { c.upstreamCredentials = parseUpstreamCredentials(doc.upstream_credentials); } catch (e) { err('upstream_credentials', (e as Error).message); }
  }
  if (doc.state_dir !== undefined) c.stateDir = str('state_dir', doc.state_dir);
  if (doc.decision_log_dir !== undefined) c.decisionLogDir = doc.decision_log_dir === null ? null : str('decision_log_dir', doc.decision_log_dir);
  if (doc.decision_log_nats_url !== undefined) {
    c.decisionLogNatsUrl = str('decision_log_nats_url', doc.decision_log_nats_url);
    c.decisionLogReplicate = true;
  }
  if (doc.decision_log_replicate !== undefined) c.decisionLogReplicate = doc.decision_log_replicate === true;
  if (doc.decision_log_witness !== undefined) c.decisionLogWitness = doc.decision_log_witness === null ? null : str('decision_log_witness', doc.decision_log_witness);
  if (doc.budgets_file !== undefined) c.budgetsFile = str('budgets_file', doc.budgets_file);
  if (doc.budget_namespace !== undefined && doc.budget_namespace !== null) {
    const ns = str('budget_namespace', doc.budget_namespace);
    if (!NAMESPACE_NAME.test(ns)) err('budget_namespace', `"${ns}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)`);
    c.budgetNamespace = ns;
  }
  if (doc.pins !== undefined) {
    if (!isObj(doc.pins)) err('pins', 'must be a mapping');
    const pn = doc.pins as Obj;
    known('pins', pn, ['nats_url', 'approver_key']);
    c.pins = { natsUrl: str('pins.nats_url', pn.nats_url), approverKey: str('pins.approver_key', pn.approver_key) };
  }
  if (doc.metrics_listen !== undefined) c.metricsListen = parseHostPort(str('metrics_listen', doc.metrics_listen));
  if (doc.tls !== undefined && doc.tls !== null) {
    if (!isObj(doc.tls)) err('tls', 'must be a mapping');
    const t = doc.tls as Obj;
    known('tls', t, ['cert', 'key', 'client_ca', 'trust_domain', 'allowed_peers']);
    c.tls = {
      cert: str('tls.cert', t.cert), key: str('tls.key', t.key), clientCa: str('tls.client_ca', t.client_ca),
      trustDomain: t.trust_domain === undefined ? DEFAULT_TRUST_DOMAIN : str('tls.trust_domain', t.trust_domain),
      allowedPeers: t.allowed_peers === undefined ? [] : strList('tls.allowed_peers', t.allowed_peers),
    };
  }
  return c;
}

/** server.provenance (or --server-provenance JSON): where a server Tollgate runs came from. */
export function parseProvenance(v: unknown, where: string): ServerProvenance {
  const fail = (m: string): never => { throw new Error(`${where}: ${m}`); };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('must be a mapping with source, registry, entry, version, verified');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['source', 'registry', 'entry', 'version', 'verified'].includes(k)) fail(`unknown field "${k}"`);
  const optStr = (k: string): string | null => {
    if (o[k] === undefined || o[k] === null) return null;
    return typeof o[k] === 'string' ? o[k] as string : fail(`${k} must be a string or null`);
  };
  if (typeof o.source !== 'string' || !o.source) fail('source must be a non-empty string');
  if (typeof o.verified !== 'boolean') fail('verified must be true or false');
  return { source: o.source as string, registry: optStr('registry'), entry: optStr('entry'), version: optStr('version'), verified: o.verified as boolean };
}
