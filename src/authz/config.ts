import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseYaml } from '../util/yaml-lazy.js';
import type { IdentityConfig } from '../identity/types.js';
import { z } from 'zod';
import { IdentityExtrasSchema, UpstreamCredentialsSchema, toUpstreamCredentials } from '../identity/config-schema.js';
import { PROFILES } from '../identity/profiles.js';
import { fieldDoc as doc, firstProblem, strictMapping as mapping } from '../config/schema.js';
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

export class ConfigError extends Error {
  constructor(file: string, field: string, problem: string) {
    super(`${file}: ${field}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const NON_EMPTY = 'must be a non-empty string';
const str = () => z.string({ error: NON_EMPTY }).min(1, NON_EMPTY);
const NON_NEGATIVE = 'must be a non-negative number';
const num = () => z.number({ error: NON_NEGATIVE }).min(0, NON_NEGATIVE);
const bool = () => z.boolean({ error: 'must be true or false' });
/** YAML lets a one-element list be written as the element itself. */
const strList = () => z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' })
  .transform((v) => (typeof v === 'string' ? [v] : v));
/** host:port (or a bare port on 127.0.0.1), with parseHostPort's reason when it is not one. */
const hostPort = () => str().transform((v, ctx) => {
  try {
    return parseHostPort(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** server.provenance and --server-provenance (docs/servers.md): where a server Tollgate runs came from. */
export const provenanceSchema = mapping({
  source: str().meta(doc('required', 'package or image the server runs from')),
  registry: z.string({ error: 'must be a string or null' }).nullable().optional().meta(doc('null', 'registry it was taken from')),
  entry: z.string({ error: 'must be a string or null' }).nullable().optional().meta(doc('null', 'registry entry name')),
  version: z.string({ error: 'must be a string or null' }).nullable().optional().meta(doc('null', 'entry version')),
  verified: z.boolean({ error: 'must be true or false' }).meta(doc('required', 'signatures were checked against a pinned key')),
}, 'must be a mapping with source, registry, entry, version, verified');

const identitySchema = mapping({
  issuer: str().optional().meta(doc('`http://127.0.0.1:5556`', 'tokens must have this `iss`; discovery at `<issuer>/.well-known/openid-configuration`')),
  audience: strList().optional().meta(doc('`[http://127.0.0.1:10000/mcp]`', 'accepted `aud` values: the governed MCP endpoint URL (RFC 8707); a string or a list')),
  algorithms: strList().superRefine((v, ctx) => {
    if (v.some((a) => a.toLowerCase() === 'none')) ctx.addIssue({ code: 'custom', message: '"none" is never accepted' });
  }).optional().meta(doc('`[ES256, RS256, EdDSA, PS256, ES384]`', 'JWS allow-list; `none` is refused here, HMAC (`HS*`) when the verifier starts')),
  jwks_uri: str().optional().meta(doc('discovery', 'skip discovery and use this key set')),
  clock_tolerance_sec: num().optional().meta(doc('30', 'leeway for `exp` / `nbf` / `iat`')),
  jwks_cooldown_sec: num().optional().meta(doc('30', 'least time between two key-set refetches on an unknown `kid`')),
  jwks_cache_max_age_sec: num().optional().meta(doc('600', 'the key set is refetched after this long')),
  claims: mapping({
    team: str().optional().meta(doc('`team`', 'claim read as `input.identity.team`')),
    groups: str().optional().meta(doc('`groups`', 'claim read as `input.identity.groups`')),
    agent: str().optional().meta(doc('`agent`', 'claim read as `input.identity.agent`; falls back to the profile\'s client claims (`azp`, `client_id`, …)')),
  }).optional().meta(doc('—', 'claim names mapped into `input.identity`')),
  profile: IdentityExtrasSchema.shape.profile.meta(doc('`generic`', `claim shapes of an identity provider: ${PROFILES.map((p) => `\`${p}\``).join(', ')} (docs/identity.md)`)),
  introspection: IdentityExtrasSchema.shape.introspection.meta(doc('none', 'opaque tokens via RFC 7662 (JWTs still verify locally; docs/identity.md)')),
});

const POINTER_KEY = /^[-/_=.a-zA-Z0-9]+$/;

const policySchema = mapping({
  dir: str().optional().meta(doc('none', 'local mode: build this directory with opa and enforce it')),
  bundle_url: str().optional().meta(doc('none', 'poll an OPA bundle server (ETag)')),
  bundle_verification_key: str().optional().meta(doc('none (unsigned accepted)', 'public key(s) that bundles from `bundle_url` must be signed with; refused without `bundle_url` (nothing else would read it)')),
  from_nats: bool().optional().meta(doc('`false`', 'follow the signed bundles the control plane publishes, over `nats.url`')),
  nats_url: str().optional().meta(doc('none', 'older form of `from_nats` naming the URL; must name `nats.url`\'s servers; refused next to `from_nats: false`')),
  verification_key: str().optional().meta(doc('—', 'public key for signed bundles from NATS; required with `from_nats` or `nats_url`, refused without them (a `dir` is never signed; `bundle_url` uses `bundle_verification_key`)')),
  nats_pointer_key: str().superRefine((v, ctx) => {
    if (!POINTER_KEY.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a NATS KV key (letters, digits, - / _ = .)` });
  }).optional().meta(doc('`current`', 'from NATS: the policy set to follow (an MCPPolicy\'s is `mcppolicy.<namespace>.<name>`); `auto`: the key in `$TOLLGATE_POLICY_POINTER_KEY`, which the injector sets (docs/kubernetes.md)')),
  entrypoint: z.enum(['tollgate', 'envoy'], { error: 'must be "tollgate" or "envoy"' }).optional()
    .meta(doc('`tollgate`', '`tollgate` (`tollgate.authz.decision`) or `envoy` (opa-envoy-plugin\'s `envoy.authz.allow`)')),
  watch: bool().optional().meta(doc('`false`', 'local mode: rebuild when files under `dir` change; refused without `dir`')),
});

/**
 * The authz YAML file (`tollgate authz --config`), snake_case as docs/configuration.md shows it;
 * the table there is generated from this schema. Every field is optional: what is absent keeps the
 * value of the base config (defaults, then flags). Cross-field rules live in loadConfigFile.
 */
export const authzConfigSchema = mapping({
  listen: hostPort().optional().meta(doc('`127.0.0.1:9191`', 'gRPC address for ext_authz and ext_proc')),
  instance: str().optional().meta(doc('`<hostname>-<pid>`', 'recorded in every decision')),
  server: mapping({
    name: str().optional().meta(doc('`default`', 'server name')),
    namespace: str().optional().meta(doc('`default`', 'server namespace')),
    provenance: provenanceSchema.optional().meta(doc('null', 'servers Tollgate runs: `input.mcp.provenance` (docs/servers.md)')),
  }).optional().meta(doc('—', 'used when the sidecar route does not name the server (Envoy passes it as the ext_authz context extension `server`)')),
  resource_metadata_url: str().optional().meta(doc('`http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp`', 'RFC 9728 URL in 401 challenges (the route\'s `resource_metadata` context extension wins when set)')),
  identity: identitySchema.optional().meta(doc('—', 'token verification')),
  nats: mapping({
    url: str().optional().meta(doc('none', 'seed URLs, comma-separated: `tls://n1:4222,tls://n2:4222`')),
    ca_file: str().optional().meta(doc('none', 'CA of the NATS server certificate')),
    cert_file: str().optional().meta(doc('none', 'client certificate: this component\'s NATS credential')),
    key_file: str().optional().meta(doc('none', 'its key; `ca_file`, `cert_file` and `key_file` go together')),
  }, 'must be a mapping (url, ca_file, cert_file, key_file)').optional().meta(doc('—', 'the one NATS connection of this process (see [NATS](#nats-one-connection-per-process))')),
  policy: policySchema.optional().meta(doc('—', 'where policy comes from: exactly one of `dir`, `bundle_url`, `from_nats` (or `nats_url`); with none or several authz refuses to start')),
  limits: mapping({
    max_body_bytes: num().optional().meta(doc(String(DEFAULT_BODY_LIMITS.maxBytes), 'larger request bodies are refused with 413 (keep equal to the sidecar\'s `max_request_bytes`)')),
    max_depth: num().optional().meta(doc(String(DEFAULT_BODY_LIMITS.maxDepth), 'JSON nesting deeper than this is refused with 400')),
    max_batch: num().optional().meta(doc(String(DEFAULT_BODY_LIMITS.maxBatch), 'JSON-RPC batches longer than this are refused with 400')),
  }).optional().meta(doc('—', 'request body limits')),
  deny_status: num().min(200, 'must be an HTTP status (200-599)').max(599, 'must be an HTTP status (200-599)').optional()
    .meta(doc('200', 'HTTP status of a policy denial of a JSON-RPC request (docs/policy-input.md)')),
  upstream_authorization: str().optional().meta(doc('none (header removed)', 'sent to the MCP server instead of the caller\'s token')),
  upstream_credentials: UpstreamCredentialsSchema.nullable().optional().meta(doc('none', 'instead: a short-lived credential per caller (docs/identity.md); not with `upstream_authorization`')),
  state_dir: str().optional().meta(doc('`$TOLLGATE_STATE_DIR`, else `.state`', 'issuer keys, decision-log signing key (`decision-log-key.pem`), budget and policy state')),
  decision_log_dir: str().nullable().optional().meta(doc('`$TOLLGATE_STATE_DIR/decisions`, else `.state/decisions`', 'decision log directory (not moved by `state_dir` in the file, only by `--state`); null: no decision log (not for production)')),
  decision_log_replicate: bool().optional().meta(doc('`false`', 'also replicate decision records to NATS JetStream (over `nats.url`); refused when `decision_log_dir` is null')),
  decision_log_nats_url: str().optional().meta(doc('none', 'older form naming the URL (turns replication on); must name `nats.url`\'s servers; refused next to `decision_log_replicate: false`')),
  decision_log_witness: str().nullable().optional().meta(doc('`<decision_log_dir>.witness.jsonl`', 'append-only checkpoint copies outside the log directory; null: none (docs/decision-log.md); a path is refused when `decision_log_dir` is null')),
  budgets_file: str().optional().meta(doc('none', 'token budgets (docs/budgets.md)')),
  budget_namespace: str().superRefine((v, ctx) => {
    if (!NAMESPACE_NAME.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)` });
  }).nullable().optional().meta(doc('none', 'the Kubernetes namespace this authz serves (the injector passes `--budget-namespace`): becomes the budgets file\'s `nats.namespace`; a budgets file naming another namespace is refused')),
  pins: mapping({
    nats_url: str().meta(doc('required', 'NATS holding the `tollgate_pins` and `tollgate_tools_seen` KV buckets')),
    approver_key: str().meta(doc('required', 'public key(s) (PEM, JWK or JWK set) whose signed approvals are trusted')),
  }).optional().meta(doc('off (no `input.mcp.pin`)', 'tool pinning (docs/tool-pinning.md)')),
  metrics_listen: hostPort().optional().meta(doc('off with `--config`; `127.0.0.1:9464` without', 'admin endpoints `/metrics` `/healthz` `/readyz` `/status` (docs/observability.md)')),
  tls: mapping({
    cert: str().meta(doc('required', 'server certificate')),
    key: str().meta(doc('required', 'its key')),
    client_ca: str().meta(doc('required', 'CA that Envoy\'s workload certificate must chain to')),
    trust_domain: str().optional().meta(doc(`\`${DEFAULT_TRUST_DOMAIN}\``, 'SPIFFE trust domain of callers')),
    allowed_peers: strList().optional().meta(doc('any workload of the trust domain', 'SPIFFE IDs allowed to call')),
  }).nullable().optional().meta(doc('plaintext', 'serve gRPC over mTLS (authz reached across pods; docs/security.md); omit for the pod\'s loopback only')),
}, 'must be a mapping');

export type AuthzConfigFile = z.output<typeof authzConfigSchema>;

/** Reads a YAML config file on top of `base` (defaults, or flags); unknown keys are errors. */
export function loadConfigFile(path: string, base: AuthzConfig = defaultConfig()): AuthzConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(path, '(file)', (e as Error).message);
  }
  if (doc == null) return base;
  const r = authzConfigSchema.safeParse(doc);
  if (!r.success) {
    const [field, problem] = firstProblem(r.error);
    throw new ConfigError(path, field || '(top level)', problem);
  }
  return applyConfigFile(r.data, base, (field, problem) => { throw new ConfigError(path, field, problem); });
}

/** The checked file on a copy of `base`, with the rules that tie fields together. */
function applyConfigFile(f: AuthzConfigFile, base: AuthzConfig, err: (field: string, problem: string) => never): AuthzConfig {
  const c = structuredClone(base);
  if (f.nats) {
    const n = f.nats;
    if (n.url !== undefined) c.nats.url = n.url;
    const files = [n.ca_file, n.cert_file, n.key_file];
    if (files.some((x) => x !== undefined)) {
      if (n.ca_file === undefined || n.cert_file === undefined || n.key_file === undefined) err('nats', 'ca_file, cert_file and key_file go together (the client certificate is the NATS credential)');
      c.nats.tls = { ca: n.ca_file, cert: n.cert_file, key: n.key_file };
    }
  }
  if (f.listen) c.listen = f.listen;
  if (f.instance !== undefined) c.instanceId = f.instance;
  if (f.server) {
    if (f.server.name !== undefined) c.server.name = f.server.name;
    if (f.server.namespace !== undefined) c.server.namespace = f.server.namespace;
    if (f.server.provenance) c.server.provenance = toProvenance(f.server.provenance);
  }
  if (f.resource_metadata_url !== undefined) c.resourceMetadataUrl = f.resource_metadata_url;
  if (f.identity) {
    const i = f.identity;
    if (i.profile !== undefined) c.identity.profile = i.profile;
    if (i.introspection !== undefined) {
      const t = i.introspection;
      c.identity.introspection = {
        endpoint: t.endpoint, cacheMaxEntries: t.cache_max_entries, cacheTtlSec: t.cache_ttl_sec, timeoutMs: t.timeout_ms,
        ...(t.client_id !== undefined && t.client_secret_file !== undefined ? { clientId: t.client_id, clientSecretFile: t.client_secret_file } : {}),
      };
    }
    if (i.issuer !== undefined) c.identity.issuer = i.issuer;
    if (i.audience !== undefined) c.identity.audience = i.audience;
    if (i.algorithms !== undefined) c.identity.algorithms = i.algorithms;
    if (i.jwks_uri !== undefined) c.identity.jwksUri = i.jwks_uri;
    if (i.clock_tolerance_sec !== undefined) c.identity.clockToleranceSec = i.clock_tolerance_sec;
    if (i.jwks_cooldown_sec !== undefined) c.identity.jwksCooldownSec = i.jwks_cooldown_sec;
    if (i.jwks_cache_max_age_sec !== undefined) c.identity.jwksCacheMaxAgeSec = i.jwks_cache_max_age_sec;
    if (i.claims) for (const k of ['team', 'groups', 'agent'] as const) if (i.claims[k] !== undefined) c.identity.claims[k] = i.claims[k];
  }
  if (f.policy) {
    const p = f.policy;
    if (p.dir !== undefined) c.policy.dir = p.dir;
    if (p.bundle_url !== undefined) c.policy.bundleUrl = p.bundle_url;
    if (p.bundle_verification_key !== undefined) c.policy.bundleKey = p.bundle_verification_key;
    // The older URL form turns NATS on; saying from_nats: false next to it leaves one of the two unheeded.
    if (p.nats_url !== undefined && p.from_nats === false) err('policy.from_nats', 'is false, but policy.nats_url turns policy from NATS on: remove one of the two');
    if (p.nats_url !== undefined || p.from_nats === true) {
      if (p.verification_key === undefined) err('policy.verification_key', `${NON_EMPTY} (signed bundles from NATS are always verified)`);
      c.policy.nats = { url: p.nats_url ?? null, verificationKey: p.verification_key };
    } else if (p.verification_key !== undefined) {
      // Whoever sets a key expects bundles to be verified with it; no other source reads this one.
      err('policy.verification_key', p.bundle_url !== undefined
        ? 'verifies bundles from NATS only (from_nats); bundles from bundle_url are verified with policy.bundle_verification_key'
        : 'verifies bundles from NATS only: set policy.from_nats: true (a policy dir is built locally and never signed)');
    }
    if (p.nats_pointer_key !== undefined) {
      if (!c.policy.nats) err('policy.nats_pointer_key', 'only applies with policy.nats_url or policy.from_nats');
      c.policy.nats.pointerKey = p.nats_pointer_key;
    }
    if (p.entrypoint !== undefined) c.policy.entrypoint = p.entrypoint;
    if (p.watch !== undefined) c.policy.watch = p.watch;
  }
  if (f.limits) {
    if (f.limits.max_body_bytes !== undefined) c.limits.maxBytes = f.limits.max_body_bytes;
    if (f.limits.max_depth !== undefined) c.limits.maxDepth = f.limits.max_depth;
    if (f.limits.max_batch !== undefined) c.limits.maxBatch = f.limits.max_batch;
  }
  if (f.deny_status !== undefined) c.denyStatus = f.deny_status;
  if (f.upstream_authorization !== undefined) c.upstreamAuthorization = f.upstream_authorization;
  if (f.upstream_credentials) {
    if (f.upstream_authorization !== undefined) err('upstream_credentials', 'give upstream_credentials or upstream_authorization, not both');
    c.upstreamCredentials = toUpstreamCredentials(f.upstream_credentials);
  }
  if (f.state_dir !== undefined) c.stateDir = f.state_dir;
  if (f.decision_log_dir !== undefined) c.decisionLogDir = f.decision_log_dir;
  if (f.decision_log_nats_url !== undefined && f.decision_log_replicate === false) {
    err('decision_log_replicate', 'is false, but decision_log_nats_url turns replication on: remove one of the two');
  }
  if (f.decision_log_nats_url !== undefined) {
    c.decisionLogNatsUrl = f.decision_log_nats_url;
    c.decisionLogReplicate = true;
  }
  if (f.decision_log_replicate !== undefined) c.decisionLogReplicate = f.decision_log_replicate;
  if (f.decision_log_witness !== undefined) c.decisionLogWitness = f.decision_log_witness;
  if (f.budgets_file !== undefined) c.budgetsFile = f.budgets_file;
  if (f.budget_namespace) c.budgetNamespace = f.budget_namespace;
  if (f.pins) c.pins = { natsUrl: f.pins.nats_url, approverKey: f.pins.approver_key };
  if (f.metrics_listen) c.metricsListen = f.metrics_listen;
  if (f.tls) {
    const t = f.tls;
    c.tls = { cert: t.cert, key: t.key, clientCa: t.client_ca, trustDomain: t.trust_domain ?? DEFAULT_TRUST_DOMAIN, allowedPeers: t.allowed_peers ?? [] };
  }
  return c;
}

/**
 * A setting of the resolved config (file, then flags) that nothing configured would read: whoever
 * set it expects it to act (a key to verify bundles, a replica of the log), so the config is
 * refused rather than the setting dropped. Returns [field, problem], or null when every setting is used.
 */
export function unusedSetting(c: AuthzConfig): [field: string, problem: string] | null {
  const p = c.policy;
  if (p.bundleKey !== null && p.bundleUrl === null) {
    return ['policy.bundle_verification_key (--verification-key)', `verifies bundles from policy.bundle_url only, and none is set${p.nats ? ' (bundles from NATS are verified with policy.verification_key)' : ''}`];
  }
  if (p.watch && p.dir === null) return ['policy.watch (--watch)', 'rebuilds policy.dir (--policies) only, and none is set'];
  if (c.decisionLogDir === null) {
    const off = 'the decision log is off (decision_log_dir: null, --no-decision-log)';
    if (c.decisionLogReplicate) return ['decision_log_replicate (--replicate-decisions)', `replicates the local decision log, but ${off}`];
    if (c.decisionLogWitness) return ['decision_log_witness (--decision-log-witness)', `copies the decision log's checkpoints, but ${off}`];
  }
  return null;
}

function toProvenance(p: z.output<typeof provenanceSchema>): ServerProvenance {
  return { source: p.source, registry: p.registry ?? null, entry: p.entry ?? null, version: p.version ?? null, verified: p.verified };
}

/** server.provenance as given to --server-provenance (JSON); the message starts with `where`. */
export function parseProvenance(v: unknown, where: string): ServerProvenance {
  const r = provenanceSchema.safeParse(v);
  if (r.success) return toProvenance(r.data);
  const [field, problem] = firstProblem(r.error);
  throw new Error(`${where}: ${field ? `${field}: ` : ''}${problem}`);
}
