/**
 * How the cost of one Check grows with what it is given:
 *
 *   node --import tsx bench/scaling.ts [--quick] [--json FILE]
 *
 * In process, one call at a time: the Authorizer with the example policy compiled to WASM, the
 * input masker and the hash-chained decision log writing to a scratch directory, exactly as authz
 * wires them. Token verification is replaced by a fixed identity (in production a verified token
 * is cached, and its cost does not depend on any of the sizes below), and gRPC is left out (its
 * decoding grows with the body like any proxy's). Four sweeps, each against a base call
 * (create_ticket by team payments with a 1 KB body): argument size 1 KB-1 MB, JSON-RPC batch size
 * 1-64, tool catalogue in the policy data 10-10,000 tools, and sessions in flight 0-100,000.
 * Per case: the median and 90th percentile of the Check time, and the bytes of policy input
 * built for the whole request (linear growth is the point; times on a shared machine are noisy).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Authorizer, type CheckDeps } from '../src/authz/check.js';
import type { HttpRequestView } from '../src/authz/view.js';
import { SessionOwners } from '../src/authz/sessions.js';
import { createDecisionSink } from '../src/decisionlog/config.js';
import { createInputMasker } from '../src/decisionlog/mask.js';
import type { Identity, TokenVerifier } from '../src/identity/types.js';
import { PolicyHolder } from '../src/policy/holder.js';
import { loadPolicyFromDir, type WasmPolicy } from '../src/policy/engine.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../src/contract/policy.js';
import { projectRoot } from '../src/util/tools.js';

const payments: Identity = {
  sub: 'alice', iss: 'https://issuer.bench', aud: ['tollgate'], team: 'payments', groups: [], roles: [], tenant: null, agent: 'bench', scopes: [], delegation: [], expiresAt: 4e9, claims: { sub: 'alice' },
};
const verifier: TokenVerifier = { async verify() { return payments; } };

/** Counts the bytes of every input evaluated (what the WASM parses), around the real policy. */
class CountingPolicy implements PolicyEvaluator {
  inputBytes = 0;
  constructor(readonly inner: WasmPolicy) {}
  get revision(): string { return this.inner.revision; }
  evaluate(input: PolicyInput): Decision {
    this.inputBytes += JSON.stringify(input).length;
    return this.inner.evaluate(input);
  }
  evaluateMask(input: PolicyInput): unknown { return this.inner.evaluateMask(input); }
}

function ticket(id: number, bodyBytes: number): unknown {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'create_ticket', arguments: { title: 'Refund request', priority: 'normal', body: 'refund please '.repeat(Math.ceil(bodyBytes / 14)).slice(0, bodyBytes) } } };
}

function view(body: unknown, session: string | null): HttpRequestView {
  return {
    id: 'bench', method: 'POST', path: '/mcp', query: '', host: '127.0.0.1:10000', scheme: 'http', protocol: 'HTTP/2',
    headers: { authorization: 'Bearer bench', 'content-type': 'application/json', 'mcp-protocol-version': '2025-06-18', ...(session ? { 'mcp-session-id': session } : {}) },
    body: Buffer.from(JSON.stringify(body)), truncated: false, context: { server: 'demo', namespace: 'default' },
    source: { address: '127.0.0.1:5000', principal: '' }, destination: { address: '127.0.0.1:10000', principal: '' }, traceId: null,
  };
}

interface Case { sweep: string; value: string; medianUs: number; p90Us: number; inputBytes: number; allow: boolean }

async function timeChecks(authz: Authorizer, counting: CountingPolicy, req: HttpRequestView, iterations: number): Promise<Omit<Case, 'sweep' | 'value'>> {
  for (let i = 0; i < Math.min(10, iterations); i++) await authz.check(req);
  const times: number[] = [];
  let allow = false;
  counting.inputBytes = 0;
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    allow = (await authz.check(req)).allow;
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { medianUs: times[Math.floor(times.length / 2)]!, p90Us: times[Math.floor(times.length * 0.9)]!, inputBytes: Math.round(counting.inputBytes / iterations), allow };
}

/** A copy of the example policies whose demo server offers `tools` tools (the real five plus generated read tools). */
function policiesWithCatalogue(src: string, dir: string, tools: number): string {
  const out = join(dir, `policies-${tools}`);
  cpSync(src, out, { recursive: true, filter: (p) => !p.endsWith('_test.rego') && !p.includes('scenarios') });
  const file = join(out, 'data.json');
  const data = JSON.parse(readFileSync(file, 'utf8')) as { tollgate: { config: { servers: { demo: { tools: Record<string, unknown> } } } } };
  const catalogue = data.tollgate.config.servers.demo.tools;
  for (let i = Object.keys(catalogue).length; i < tools; i++) {
    catalogue[`generated_tool_${i}`] = { class: 'read', args: { query: { required: true, type: 'string', max_length: 500 } } };
  }
  writeFileSync(file, JSON.stringify(data));
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'string' }, policies: { type: 'string' } } });
  const quick = values.quick === true;
  const n = (full: number): number => (quick ? Math.max(5, Math.round(full / 5)) : full);
  const work = mkdtempSync(join(tmpdir(), 'tollgate-scaling-'));
  const cases: Case[] = [];
  const src = values.policies ?? join(projectRoot(), 'policies');
  try {
    const build = async (dir: string, sessions: SessionOwners | null): Promise<{ authz: Authorizer; counting: CountingPolicy; close: () => Promise<void> }> => {
      const counting = new CountingPolicy(await loadPolicyFromDir(dir));
      const holder = new PolicyHolder();
      holder.swap(counting);
      const sink = await createDecisionSink({ dir: mkdtempSync(join(work, 'log-')), signingKeyPath: join(work, `key-${cases.length}.pem`) });
      const deps: CheckDeps = {
        settings: {
          instanceId: 'bench', version: 'bench', defaultScope: { server: 'demo', namespace: 'default' }, resourceMetadataUrl: 'http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp',
          limits: { maxBytes: 2 * 1024 * 1024, maxDepth: 64, maxBatch: 64 }, denyStatus: 200, upstreamAuthorization: null,
        },
        verifier, policy: holder, budget: null, sink, pending: null, annotations: null, countTokens: null, mask: createInputMasker(),
        policyMask: (input) => counting.evaluateMask(input), clock: Date.now, sessions,
      };
      return { authz: new Authorizer(deps), counting, close: () => sink.close() };
    };

    const base = await build(src, null);
    for (const kb of [1, 10, 100, 1024]) {
      const r = await timeChecks(base.authz, base.counting, view(ticket(1, kb * 1024), null), n(kb >= 1024 ? 20 : kb >= 100 ? 50 : 200));
      cases.push({ sweep: 'argument size', value: kb >= 1024 ? '1 MB' : `${kb} KB`, ...r });
    }
    for (const size of [1, 4, 16, 64]) {
      const body = size === 1 ? ticket(0, 1024) : Array.from({ length: size }, (_, i) => ticket(i, 1024));
      const r = await timeChecks(base.authz, base.counting, view(body, null), n(size >= 64 ? 40 : 200));
      cases.push({ sweep: 'batch size', value: String(size), ...r });
    }
    await base.close();

    for (const sessionsInFlight of [0, 1_000, 10_000, 100_000]) {
      const owners = new SessionOwners();
      const now = Date.now();
      for (let i = 0; i < sessionsInFlight; i++) owners.bind(`session-${i}`, { iss: payments.iss, sub: `user-${i % 500}`, agent: null }, 'initialize', now);
      const mine = 'session-alice';
      owners.bind(mine, { iss: payments.iss, sub: payments.sub, agent: payments.agent }, 'initialize', now);
      const s = await build(src, owners);
      const r = await timeChecks(s.authz, s.counting, view(ticket(1, 1024), mine), n(200));
      cases.push({ sweep: 'sessions in flight', value: sessionsInFlight.toLocaleString('en'), ...r });
      await s.close();
    }

    for (const tools of [10, 100, 1_000, 10_000]) {
      const s = await build(policiesWithCatalogue(src, work, tools), null);
      const r = await timeChecks(s.authz, s.counting, view(ticket(1, 1024), null), n(200));
      cases.push({ sweep: 'tools in the catalogue', value: tools.toLocaleString('en'), ...r });
      await s.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  let sweep = '';
  for (const c of cases) {
    if (c.sweep !== sweep) {
      sweep = c.sweep;
      process.stdout.write(`\n| ${sweep} | Check p50 µs | p90 µs | policy input bytes | decision |\n| --- | --- | --- | --- | --- |\n`);
    }
    process.stdout.write(`| ${c.value} | ${Math.round(c.medianUs).toLocaleString('en')} | ${Math.round(c.p90Us).toLocaleString('en')} | ${c.inputBytes.toLocaleString('en')} | ${c.allow ? 'allow' : 'deny'} |\n`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), quick, cases }, null, 2) + '\n');
}

main().catch((e: Error) => { process.stderr.write(`scaling: ${e.stack ?? e.message}\n`); process.exit(1); });
