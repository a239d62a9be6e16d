import { isAbsolute, join } from 'node:path';
import { STATUS_SCHEMA, statusDocSchema, type BudgetStatusEntry, type StatusDoc } from '../metrics/status.js';
import { describeValue, fieldPath } from '../config/schema.js';
import { policyBuildStatusSchema, type PolicyBuildStatus } from '../controlplane/build-status.js';
import { findMesh } from '../mesh/mesh-file.js';
import { parseCommandArgs, parseDuration } from './args.js';
import { UsageError, type Command } from './types.js';

const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9464';

const USAGE = `Usage: tollgate status [--authz URL] [--json] [--timeout 5s]

Asks a running authz for its state over its admin endpoint (the one that serves /metrics):
whether it is ready, the policy revision in force and when it was loaded, the last policy bundle
it rejected and why, the decision log and its NATS replication, and token budgets. For a mesh
\`tollgate up\` runs, also the control plane's builds: the last policy edit it refused to build
(file:line), which never reaches authz, and whether its Envoy is live (admin /ready).

Exits 0 when authz is ready (and, for a mesh the mesh file names, its Envoy is live), 1 when not
or when it cannot be reached.

  --authz URL     authz admin address (default $TOLLGATE_AUTHZ_ADMIN, else the one in the mesh
                  file <state>/mesh.json that \`tollgate up\` writes, else ${DEFAULT_ADMIN_URL});
                  it is authz's metrics_listen setting
  --state DIR     the state directory of the mesh (default $TOLLGATE_STATE_DIR, else ./.state)
  --json          print the status document (GET /status) as JSON
  --timeout D     give up after D (default 5s)
  -h, --help      this help
`;

export interface StatusIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  now: () => number;
}

const FLAGS = {
  authz: { type: 'string' },
  state: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
} as const;

/**
 * The document checked against the schema the server builds it from (metrics/status.ts), or what
 * is wrong with it (the first fields that do not fit, named as paths: `notReady[0]: ...`) and
 * whether it claims to be a status document at all (else: another service on that port).
 */
export function checkStatusDoc(x: unknown): { doc: StatusDoc } | { claimed: boolean; problem: string } {
  const r = statusDocSchema.safeParse(x, {
    error: (iss) => {
      if (iss.input === undefined) return 'is missing';
      if (iss.code === 'invalid_type') return `must be ${iss.expected === 'object' ? 'a mapping' : iss.expected === 'array' ? 'a list' : `a ${iss.expected}`}, got ${describeValue(iss.input)}`;
      if (iss.code === 'invalid_value') return `must be ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(iss.input)}`;
      if (iss.code === 'too_small') return `must be at least ${String(iss.minimum)}, got ${describeValue(iss.input)}`;
      return undefined;
    },
  });
  if (r.success) return { doc: r.data };
  const claimed = typeof x === 'object' && x !== null && (x as { schema?: unknown }).schema === STATUS_SCHEMA;
  const shown = r.error.issues.slice(0, 3).map((i) => (i.path.length ? `${fieldPath(i.path)}: ${i.message}` : i.message));
  const more = r.error.issues.length - shown.length;
  return { claimed, problem: `${shown.join('; ')}${more > 0 ? ` (and ${more} more)` : ''}` };
}

const num = (n: number): string => n.toLocaleString('en-US');

function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function when(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${iso} (${span((now - t) / 1000)} ago)` : iso;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function budgetTable(rows: BudgetStatusEntry[]): string[] {
  const head = ['BUDGET', 'WINDOW', 'ACTION', 'LIMIT', 'REMAINING', 'CHARGED', 'DENIED'];
  const body = rows.map((b) => [
    b.name, b.window, b.action, num(b.limit), b.remaining === null ? '-' : num(b.remaining), num(b.chargedTokens), num(b.denials),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)];
}

/** What to look at for each thing that keeps authz from being ready. */
function hints(doc: StatusDoc): string[] {
  const out: string[] = [];
  if (!doc.policy.revision) {
    switch (doc.policy.source) {
      case 'nats':
        out.push('the control plane is running and has published a bundle (tollgate controlplane), NATS is reachable, and authz\'s --verification-key matches the key bundles are signed with');
        break;
      case 'http':
        out.push('the bundle server URL (--bundle-url) answers with a bundle, and its signature verifies with --verification-key if one is set');
        break;
      case 'dir':
        out.push('the policy directory (--policies) compiles: opa check DIR');
        break;
      default:
        out.push('authz\'s log (stderr) for policy source errors');
    }
  }
  if (!doc.grpc.up) out.push('authz\'s log: the gRPC server is still starting, failed to bind, or is shutting down');
  const rejected = doc.policy.lastRejection;
  if (doc.policy.revision && rejected && (!doc.policy.loadedAt || rejected.at > doc.policy.loadedAt)) {
    out.push(`the newest policy bundle was refused and revision ${doc.policy.revision} still serves: fix what the rejection above names, then publish again`);
  }
  const log = doc.decisionLog;
  if (log && log.writeErrors > 0) out.push(`free space and permissions of ${log.dir}: decision records failed to write, and calls that could not be recorded were refused`);
  if (log?.replication && !log.replication.healthy) out.push('that NATS is reachable from authz: decision records wait in the local spool and are sent once it is back');
  return out;
}

/** Multi-line messages (opa's error lists) keep the column they start in. */
function hang(text: string, indent: string): string {
  return text.replace(/\n/g, `\n${indent}`);
}

function render(doc: StatusDoc, url: string, now: number, builds: CpBuilds | null, envoy: EnvoyCheck | null): string {
  const L: string[] = [];
  const pad = (k: string): string => `  ${k.padEnd(10)} `;
  const more = ' '.repeat(13);
  L.push(`authz ${doc.instance} (tollgate ${doc.version}) at ${url}: ${doc.ready ? 'READY' : 'NOT READY'}, up ${span(doc.uptimeSeconds)}`);
  if (!doc.ready) for (const r of doc.notReady) L.push(`  ! ${hang(r, '    ')}`);
  if (envoy) L.push(`${pad('envoy')}${envoy.admin}: ${envoy.problem ? `NOT READY: ${envoy.problem}` : 'LIVE'}`);

  L.push(`${pad('gRPC')}${doc.grpc.listen ?? '(address unknown)'}, ${doc.grpc.up ? 'accepting calls' : 'NOT accepting calls'}`);

  const p = doc.policy;
  const from = p.source ? ` from ${p.source}` : '';
  L.push(p.revision
    ? `${pad('policy')}revision ${p.revision}${from}, loaded ${p.loadedAt ? when(p.loadedAt, now) : '(time unknown)'}; ${num(p.swaps)} loaded, ${num(p.rejections)} rejected since start`
    : `${pad('policy')}NONE LOADED${from}: every call is refused (fail closed); ${num(p.rejections)} rejected since start`);
  if (p.lastRejection) {
    const r = p.lastRejection;
    L.push(`${more}last rejection ${when(r.at, now)}${r.revision ? `, revision ${r.revision}` : ''}: ${hang(r.message, `${more}  `)}`);
  } else {
    L.push(`${more}no bundle rejected since start`);
  }
  if (p.sourceError) L.push(`${more}source trouble: ${hang(p.sourceError, `${more}  `)}`);

  const log = doc.decisionLog;
  if (!log) {
    L.push(`${pad('decisions')}decision log OFF (not for production)`);
  } else {
    L.push(`${pad('decisions')}${num(log.records)} records written since start, ${num(log.writeErrors)} write errors; ${isAbsolute(log.file) ? log.file : join(log.dir, log.file)} (seq ${num(log.seq)})`);
    const r = log.replication;
    if (r) {
      const state = r.healthy ? 'healthy' : r.connected ? 'connected, NOT healthy' : 'DISCONNECTED';
      L.push(`${more}NATS replication ${state}: ${num(r.pending)} records pending, ${bytes(r.spooledBytes)} spooled, ${num(r.dropped)} dropped${r.lastError ? `; last error: ${r.lastError}` : ''}`);
    } else {
      L.push(`${more}local log only (no NATS replication)`);
    }
  }

  const b = doc.budgets;
  if (!b) {
    L.push(`${pad('budgets')}none enforced`);
  } else {
    L.push(`${pad('budgets')}${b.budgets.length} budget${b.budgets.length === 1 ? '' : 's'}, ${b.mode === 'nats' ? 'shared through NATS' : 'local state'} (remaining as this instance last saw it)`);
    if (b.budgets.length) for (const line of budgetTable(b.budgets)) L.push(`${more}${line}`);
  }

  if (builds) L.push(...renderBuilds(builds, now));

  const h = hints(doc);
  if (envoy?.problem) h.push('Envoy, the governed MCP endpoint: calls cannot get through. tollgate up\'s output says why it stopped (up then stops the whole mesh); start the mesh again');
  if (builds?.policy?.failing) h.push('the policy sources: the last edit did not compile (file:line above) and was not published; fix it and save');
  if (h.length) {
    L.push('', 'What to check:');
    for (const x of h) L.push(`  - ${x}`);
  }
  return `${L.join('\n')}\n`;
}

/** The control plane's policy builds, as its /status "policy" section says (null: not reachable). */
type CpBuilds = { url: string; policy: PolicyBuildStatus | null; problem: string | null };

async function fetchBuilds(url: string, timeoutMs: number): Promise<CpBuilds> {
  try {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (res.status !== 200) return { url, policy: null, problem: `HTTP ${res.status}` };
    const doc = (await res.json()) as { policy?: unknown };
    if (doc.policy === undefined) return { url, policy: null, problem: 'no policy build status in its /status' };
    const checked = policyBuildStatusSchema.safeParse(doc.policy);
    if (checked.success) return { url, policy: checked.data, problem: null };
    const i = checked.error.issues[0]!;
    return { url, policy: null, problem: `its policy build status does not fit this version (version skew?): ${fieldPath(['policy', ...i.path])}: ${i.message}` };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { url, policy: null, problem: err.cause?.code ?? err.message };
  }
}

/** The control plane's lines: the revision it published and the last refused edit, file:line included. */
function renderBuilds(b: CpBuilds, now: number): string[] {
  const pad = `  ${'builds'.padEnd(10)} `;
  const more = ' '.repeat(13);
  if (!b.policy) return [`${pad}control plane at ${b.url}: cannot read its status (${b.problem})`];
  const p = b.policy;
  const L = [`${pad}control plane at ${b.url}: ${p.revision !== null ? `revision ${p.revision} published${p.publishedAt ? ` ${when(p.publishedAt, now)}` : ''}` : 'nothing published yet'}; ${num(p.buildFailures)} build${p.buildFailures === 1 ? '' : 's'} refused since start`];
  if (p.lastFailure) {
    L.push(p.failing
      ? `${more}LAST POLICY EDIT REFUSED ${when(p.lastFailure.at, now)}${p.revision !== null ? `; revision ${p.revision} still serves` : ''}:`
      : `${more}last refused build ${when(p.lastFailure.at, now)} (fixed since):`);
    L.push(`${more}  ${hang(p.lastFailure.message, `${more}  `)}`);
  }
  return L;
}

/** The mesh's Envoy, from its admin /ready (problem null: LIVE). */
type EnvoyCheck = { admin: string; ready: boolean; problem: string | null };

async function checkEnvoy(admin: string, timeoutMs: number): Promise<EnvoyCheck> {
  try {
    const res = await fetch(`${admin}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim();
    if (res.status === 200 && body === 'LIVE') return { admin, ready: true, problem: null };
    return { admin, ready: false, problem: `${admin}/ready answered HTTP ${res.status} ${JSON.stringify(body.slice(0, 100))}` };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err.cause?.code ?? err.message;
    return { admin, ready: false, problem: `cannot reach Envoy's admin endpoint (${why}): Envoy is down or hung` };
  }
}

/** `raw`: the document as received (for --json, unknown fields of a newer authz included); `doc`: checked. */
async function fetchStatus(url: string, timeoutMs: number): Promise<{ ok: true; doc: StatusDoc; raw: unknown } | { ok: false; problem: string; skew?: true }> {
  let res: Response;
  try {
    res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err.cause?.code ?? err.cause?.message ?? err.message;
    return { ok: false, problem: `cannot reach the authz admin endpoint at ${url} (${why})` };
  }
  const body = await res.text();
  if (res.status !== 200) return { ok: false, problem: `${url}/status answered HTTP ${res.status}: is this a Tollgate authz admin address? ${body.slice(0, 200).trim()}` };
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { ok: false, problem: `${url}/status did not answer JSON: is this a Tollgate authz admin address?` };
  }
  const checked = checkStatusDoc(doc);
  if ('problem' in checked) {
    return {
      ok: false,
      ...(checked.claimed ? { skew: true as const } : {}),
      problem: checked.claimed
        ? `${url}/status is not a ${STATUS_SCHEMA} document (version skew?): ${checked.problem}. Use a tollgate of the same version as that authz`
        : `${url}/status is not a ${STATUS_SCHEMA} document: is this a Tollgate authz admin address, and the same Tollgate version?`,
    };
  }
  return { ok: true, doc: checked.doc, raw: doc };
}

const UNREACHABLE_HINT = `Check that authz is running, that its admin listener is on (metrics_listen in its config), and
that --authz (or $TOLLGATE_AUTHZ_ADMIN) names that address; in Kubernetes, port-forward port 9464 of
the pod first (kubectl port-forward pod/NAME 9464).
`;

export function createStatusCommand(io: Partial<StatusIo> = {}): Command {
  const out = io.out ?? ((s: string) => { process.stdout.write(s); });
  const err = io.err ?? ((s: string) => { process.stderr.write(s); });
  const env = io.env ?? process.env;
  const now = io.now ?? Date.now;
  return {
    name: 'status',
    summary: 'Show whether authz is ready: policy revision, rejected bundles, decision log, budgets',
    async run(argv) {
      const { values, positionals } = parseCommandArgs(argv, FLAGS, true);
      if (values.help) { out(USAGE); return 0; }
      if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      // An explicit --authz elsewhere is not the local mesh, unless --state says it is.
      const mesh = values.state !== undefined || !(values.authz ?? env.TOLLGATE_AUTHZ_ADMIN) ? findMesh(values.state, env).mesh : null;
      const raw = values.authz ?? env.TOLLGATE_AUTHZ_ADMIN ?? mesh?.endpoints.authzAdmin ?? DEFAULT_ADMIN_URL;
      let url: string;
      try {
        const u = new URL(raw);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
        url = u.href.replace(/\/+$/, '');
      } catch {
        throw new UsageError(`--authz must be an http:// URL such as ${DEFAULT_ADMIN_URL}, got "${raw}"`);
      }
      const timeoutMs = Math.round(parseDuration(values.timeout ?? '5s') * 1000);
      if (!(timeoutMs > 0)) throw new UsageError('--timeout must be more than 0, e.g. 5s');

      const got = await fetchStatus(url, timeoutMs);
      if (!got.ok) {
        // A status document of another version: the address is right, the hint would mislead.
        err(`tollgate status: ${got.problem}\n${got.skew ? '' : UNREACHABLE_HINT}`);
        return 1;
      }
      const cpUrl = mesh?.endpoints.controlPlaneAdmin;
      const builds = cpUrl ? await fetchBuilds(cpUrl, timeoutMs) : null;
      // authz being ready says nothing of the Envoy in front of it: the mesh file names its admin.
      const envoy = mesh?.endpoints.envoyAdmin ? await checkEnvoy(mesh.endpoints.envoyAdmin, timeoutMs) : null;
      if (values.json) out(`${JSON.stringify({ ...(got.raw as object), ...(builds ? { controlPlane: builds } : {}), ...(envoy ? { envoy } : {}) }, null, 2)}\n`);
      else out(render(got.doc, url, now(), builds, envoy));
      return got.doc.ready && !envoy?.problem ? 0 : 1;
    },
  };
}

export const statusCommand: Command = createStatusCommand();
