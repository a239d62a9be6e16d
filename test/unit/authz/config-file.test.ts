import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfigFile, parseProvenance, type AuthzConfig } from '../../../src/authz/config.js';

describe('authz config file (one schema)', () => {
  let dir: string;
  let n = 0;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-authzcfg-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (yaml: string): string => {
    const f = join(dir, `authz${n++}.yaml`);
    writeFileSync(f, yaml);
    return f;
  };
  const load = (yaml: string, base?: AuthzConfig): AuthzConfig => loadConfigFile(write(yaml), base);
  /** The message without the temporary file name, which every error starts with. */
  const problem = (yaml: string): string => {
    const f = write(yaml);
    try {
      loadConfigFile(f);
    } catch (e) {
      const m = (e as Error).message;
      assert.ok(m.startsWith(`${f}: `), m);
      return m.slice(f.length + 2);
    }
    return assert.fail(`accepted: ${yaml}`);
  };

  it('refuses an unknown field, at the top and nested, naming it and the known ones', () => {
    assert.match(problem('listn: 127.0.0.1:9191\n'), /^listn: unknown field \(known: listen, instance, server, resource_metadata_url, identity, nats, policy, limits, deny_status, upstream_authorization, upstream_credentials, state_dir, decision_log_dir, decision_log_replicate, decision_log_nats_url, decision_log_witness, budgets_file, budget_namespace, pins, metrics_listen, tls\)$/);
    assert.equal(problem('policy:\n  entrypiont: envoy\n'), 'policy.entrypiont: unknown field (known: dir, bundle_url, bundle_verification_key, from_nats, nats_url, verification_key, nats_pointer_key, entrypoint, watch)');
    assert.equal(problem('identity:\n  claims:\n    tenant: tid\n'), 'identity.claims.tenant: unknown field (known: team, groups, agent)');
    assert.equal(problem('identity:\n  introspection:\n    endpoint: https://idp/i\n    client_secret: s3cret\n'), 'identity.introspection.client_secret: unknown field (known: endpoint, client_id, client_secret_file, cache_max_entries, cache_ttl_sec, timeout_ms)');
    assert.equal(problem('server:\n  provenance:\n    source: npx:x\n    verified: true\n    signed: true\n'), 'server.provenance.signed: unknown field (known: source, registry, entry, version, verified)');
  });

  it('says what a wrong type should have been', () => {
    const cases: [string, string][] = [
      ['- a\n', '(top level): must be a mapping, got a list'],
      ['listen: 9191.5\n', 'listen: must be a non-empty string'],
      ['listen: "localhost"\n', 'listen: expected host:port, got "localhost"'],
      ['instance: ""\n', 'instance: must be a non-empty string'],
      ['policy: [a]\n', 'policy: must be a mapping, got a list'],
      ['policy:\n  watch: "yes"\n', 'policy.watch: must be true or false'],
      ['policy:\n  entrypoint: opa\n', 'policy.entrypoint: must be "tollgate" or "envoy"'],
      ['deny_status: "403"\n', 'deny_status: must be a non-negative number'],
      ['deny_status: 700\n', 'deny_status: must be an HTTP status (200-599)'],
      ['limits:\n  max_depth: -1\n', 'limits.max_depth: must be a non-negative number'],
      ['identity:\n  audience: [a, 3]\n', 'identity.audience: must be a string or a list of strings'],
      ['identity:\n  algorithms: [ES256, NONE]\n', 'identity.algorithms: "none" is never accepted'],
      ['nats: tls://n:4222\n', 'nats: must be a mapping (url, ca_file, cert_file, key_file), got "tls://n:4222"'],
      ['nats:\n  ca_file: ca.crt\n', 'nats: ca_file, cert_file and key_file go together (the client certificate is the NATS credential)'],
      ['pins:\n  nats_url: nats://n:4222\n', 'pins.approver_key: must be a non-empty string'],
      ['tls:\n  cert: c\n  key: k\n', 'tls.client_ca: must be a non-empty string'],
      ['server:\n  provenance:\n    source: npx:x\n    verified: "yes"\n', 'server.provenance.verified: must be true or false'],
      ['policy:\n  from_nats: true\n', 'policy.verification_key: must be a non-empty string (signed bundles from NATS are always verified)'],
      ['policy:\n  dir: p\n  verification_key: k.pem\n', 'policy.verification_key: verifies bundles from NATS only: set policy.from_nats: true (a policy dir is built locally and never signed)'],
      ['policy:\n  bundle_url: https://b/x.tar.gz\n  verification_key: k.pem\n', 'policy.verification_key: verifies bundles from NATS only (from_nats); bundles from bundle_url are verified with policy.bundle_verification_key'],
      ['policy:\n  from_nats: false\n  verification_key: k.pem\n', 'policy.verification_key: verifies bundles from NATS only: set policy.from_nats: true (a policy dir is built locally and never signed)'],
      ['policy:\n  nats_url: nats://n:4222\n  from_nats: false\n  verification_key: k.pem\n', 'policy.from_nats: is false, but policy.nats_url turns policy from NATS on: remove one of the two'],
      ['decision_log_nats_url: nats://n:4222\ndecision_log_replicate: false\n', 'decision_log_replicate: is false, but decision_log_nats_url turns replication on: remove one of the two'],
      ['policy:\n  dir: p\n  nats_pointer_key: current\n', 'policy.nats_pointer_key: only applies with policy.nats_url or policy.from_nats'],
      ['policy:\n  from_nats: true\n  verification_key: k\n  nats_pointer_key: "a b"\n', 'policy.nats_pointer_key: "a b" is not a NATS KV key (letters, digits, - / _ = .)'],
      ['upstream_authorization: Bearer x\nupstream_credentials:\n  key_file: k\n  issuer: t\n  audience: a\n', 'upstream_credentials: give upstream_credentials or upstream_authorization, not both'],
      ['upstream_credentials:\n  key_file: k\n  issuer: t\n  audience: a\n  ttl_sec: 60\n  renew_before_sec: 120\n', 'upstream_credentials: ttl_sec must be longer than renew_before_sec'],
    ];
    for (const [yaml, want] of cases) assert.equal(problem(yaml), want, yaml);
  });

  it('a YAML syntax error names the file', () => {
    assert.match(problem('listen: [\n'), /^\(file\): /);
  });

  it('keeps the base for what the file leaves out, and fills the documented defaults of what it gives', () => {
    const base = defaultConfig();
    assert.deepEqual(load(''), base);
    const flags = { ...defaultConfig(), denyStatus: 403, budgetsFile: 'flag-budgets.yaml' };
    const c = load('server:\n  name: payments\nidentity:\n  audience: https://mcp/x\ntls:\n  cert: c\n  key: k\n  client_ca: ca\n', flags);
    assert.equal(c.denyStatus, 403);
    assert.equal(c.budgetsFile, 'flag-budgets.yaml');
    assert.deepEqual(c.server, { name: 'payments', namespace: 'default' });
    assert.deepEqual(c.identity, { ...base.identity, audience: ['https://mcp/x'] });
    assert.deepEqual(c.tls, { cert: 'c', key: 'k', clientCa: 'ca', trustDomain: 'tollgate.local', allowedPeers: [] });
    assert.deepEqual(flags.server, { name: 'default', namespace: 'default' }, 'the base is not modified');
    const r = load('decision_log_nats_url: nats://n:4222\ndecision_log_dir: null\ndecision_log_witness: null\nupstream_credentials: null\ntls: null\n');
    assert.equal(r.decisionLogReplicate, true, 'the older URL form turns replication on');
    assert.equal(r.decisionLogDir, null);
    assert.equal(r.decisionLogWitness, null);
    assert.equal(r.upstreamCredentials, undefined);
    assert.equal(r.tls, null);
  });

  it('loads the example of docs/configuration.md to the config it describes', () => {
    const md = readFileSync(join(import.meta.dirname, '../../../docs/configuration.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const base = defaultConfig();
    assert.deepEqual(load(yaml), {
      ...base,
      listen: { host: '127.0.0.1', port: 9191 },
      instanceId: 'authz-1',
      server: { name: 'default', namespace: 'default', provenance: { source: 'npx:@modelcontextprotocol/server-time@1.0.0', registry: 'registry/index.json', entry: 'io.example/time', version: '1.0.0', verified: true } },
      resourceMetadataUrl: 'http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp',
      identity: {
        issuer: 'http://127.0.0.1:5556', audience: ['http://127.0.0.1:10000/mcp'], algorithms: ['ES256', 'RS256', 'EdDSA', 'PS256', 'ES384'],
        jwksUri: 'https://idp/keys', clockToleranceSec: 30, jwksCooldownSec: 30, jwksCacheMaxAgeSec: 600,
        claims: { team: 'team', groups: 'groups', agent: 'agent' }, profile: 'generic',
        introspection: { endpoint: 'https://idp/oauth2/introspect', clientId: 'tollgate', clientSecretFile: '/var/run/secrets/tollgate/introspection', cacheMaxEntries: 10000, cacheTtlSec: 30, timeoutMs: 5000 },
      },
      nats: { url: 'tls://127.0.0.1:4222', tls: { ca: '.state/pki/ca.crt', cert: '.state/pki/nats-authz.crt', key: '.state/pki/nats-authz.key' } },
      policy: {
        dir: 'policies', bundleUrl: 'https://bundles/b.tar.gz', bundleKey: null, entrypoint: 'tollgate', watch: false,
        nats: { url: 'nats://127.0.0.1:4222', verificationKey: 'keys/bundle.pub.jwk', pointerKey: 'current' },
      },
      limits: { maxBytes: 1048576, maxDepth: 64, maxBatch: 64 },
      denyStatus: 200,
      upstreamAuthorization: null,
      upstreamCredentials: { keyFile: '/var/run/secrets/tollgate/upstream-signing.key', alg: 'ES256', issuer: 'tollgate-authz', audience: 'https://payments-mcp.internal/mcp', ttlSec: 300, renewBeforeSec: 60, cacheMaxEntries: 10000 },
      stateDir: '.state',
      decisionLogDir: '.state/decisions',
      decisionLogReplicate: true,
      decisionLogNatsUrl: 'nats://…',
      decisionLogWitness: '.state/decisions.witness.jsonl',
      budgetsFile: 'budgets.yaml',
      budgetNamespace: 'mcp-demo',
      pins: { natsUrl: 'nats://127.0.0.1:4222', approverKey: 'keys/approvers.jwks' },
      metricsListen: { host: '127.0.0.1', port: 9464 },
      tls: { cert: '/etc/tollgate/tls/tls.crt', key: '/etc/tollgate/tls/tls.key', clientCa: '/etc/tollgate/tls/ca.crt', trustDomain: 'tollgate.local', allowedPeers: ['spiffe://tollgate.local/ns/default/sa/demo'] },
    });
  });

  it('--server-provenance JSON goes through the same schema', () => {
    assert.deepEqual(parseProvenance({ source: 'oci://x', verified: false }, '--server-provenance'), { source: 'oci://x', registry: null, entry: null, version: null, verified: false });
    assert.throws(() => parseProvenance({ verified: true }, '--server-provenance'), /^Error: --server-provenance: source: must be a non-empty string$/);
    assert.throws(() => parseProvenance('x', '--server-provenance'), /--server-provenance: must be a mapping with source, registry, entry, version, verified/);
    assert.throws(() => parseProvenance({ source: 's', verified: true, registry: 3 }, '--server-provenance'), /registry: must be a string or null/);
  });
});
