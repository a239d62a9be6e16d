import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { loadSigningKey, loadVerificationKeys } from '../controlplane/keys.js';
import { PIN_SCHEMA, signStatement, verifyEntry, type PinEntry, type PinStatement } from '../pins/approval.js';
import { PINS_BUCKET, SEEN_BUCKET, parseToolKey, toolKey } from '../pins/buckets.js';
import { definitionHash, type ToolDefinition } from '../pins/definition.js';
import { definitionDiff, pendingTools, visible, type PinnedTool, type SeenTool } from '../pins/review.js';
import { parseCommandArgs } from './args.js';
import { UsageError } from './types.js';

export const PINS_USAGE = `Usage: tollgate tools <pending|diff|approve|revoke> --nats URL [flags]

Tool pinning (docs/tool-pinning.md): authz enforcing pins hides and refuses a tool whose definition
(name, title, description, schemas, annotations) is not the one an approver signed.

  pending   tools servers now offer that are new or changed since their pin, with scanner findings
            [--server NAME] [--json]
  diff      what changed in one tool, pinned vs offered: --server NAME --tool NAME
  approve   sign the offered definition and pin it: --server NAME --tool NAME --key FILE --approver NAME
            [--sha256 HASH: refuse unless the offered definition still hashes to this]
            [--accept-findings: approve although the scanner flagged it]
  revoke    withdraw a pin (the tool becomes new): --server NAME --tool NAME --key FILE --approver NAME

  --nats URL            NATS server holding the buckets (tollgate up: nats://127.0.0.1:4222)
  --verify-key FILE     (pending, diff) approver public key(s): pins that do not verify are shown as such
  -h, --help            this text

Each approval is a JWS signed with the approver's private key (--key, PEM or JWK; e.g. made with
tollgate controlplane keys); authz trusts it only if its --pin-approver-key verifies it, and writes an
administrative record of it to its decision log.
`;

interface Opened { nc: NatsConnection; pins: KV; seen: KV }

async function open(url: string): Promise<Opened> {
  const nc = await connect({ servers: url, name: 'tollgate-tools', timeout: 5000 }).catch((e: Error) => {
    throw new Error(`cannot reach NATS at ${url}: ${e.message}`);
  });
  const kvm = new Kvm(nc);
  try {
    const pins = await kvm.open(PINS_BUCKET);
    await pins.status();
    return { nc, pins, seen: await kvm.open(SEEN_BUCKET) };
  } catch (e) {
    await nc.close();
    throw new Error(`no tool-pinning buckets on ${url} (${(e as Error).message}): the control plane creates them; start it (tollgate controlplane serve, or tollgate up --pins)`);
  }
}

async function entries<T>(kv: KV, parse: (key: string, value: unknown) => T | null): Promise<T[]> {
  const out: T[] = [];
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    let v: unknown;
    try { v = e.json(); } catch { continue; }
    const x = parse(key, v);
    if (x) out.push(x);
  }
  return out;
}

const seenOf = (_key: string, v: unknown): SeenTool | null => {
  const s = v as SeenTool;
  return s && typeof s.server === 'string' && typeof s.tool === 'string' && typeof s.sha256 === 'string' ? s : null;
};

async function pinned(kv: KV, verifyKey: string | undefined): Promise<PinnedTool[]> {
  const keys = verifyKey ? (await loadVerificationKeys(verifyKey)).map((k) => ({ key: k.key, kid: k.kid, alg: k.alg })) : null;
  const raw = await entries(kv, (key, v) => ({ key, v }));
  const out: PinnedTool[] = [];
  for (const { key, v } of raw) {
    const where = parseToolKey(key);
    if (!where) continue;
    const e = v as PinEntry;
    if (keys) {
      const r = await verifyEntry(e, where.server, where.tool, keys);
      if (!r.ok || !r.pin) continue; // does not verify, or a revocation: not a pin
      out.push({ server: where.server, tool: where.tool, sha256: r.pin.sha256, definition: r.pin.definition, approver: r.pin.approver, at: r.pin.approved_at });
    } else {
      // Without keys, read the statement unverified (display only; authz verifies before enforcing).
      try {
        const s = JSON.parse(Buffer.from(e.jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as PinStatement;
        if (s.action === 'approve') out.push({ server: where.server, tool: where.tool, sha256: s.sha256, definition: e.definition, approver: s.approver, at: s.at });
      } catch { /* unreadable entry: not a pin */ }
    }
  }
  return out;
}

function required(v: string | undefined, flag: string): string {
  if (!v) throw new UsageError(`--${flag} is required`);
  return v;
}

type Out = (s: string) => void;

async function pending(o: Opened, v: Record<string, unknown>, out: Out): Promise<number> {
  const seen = (await entries(o.seen, seenOf)).filter((s) => !v.server || s.server === v.server);
  const list = pendingTools(seen, await pinned(o.pins, v['verify-key'] as string | undefined));
  if (v.json) { out(JSON.stringify(list, null, 2) + '\n'); return 0; }
  if (list.length === 0) { out('No tool awaits review: every tool the servers offer matches its pin.\n'); return 0; }
  for (const t of list) {
    out(`${t.server}/${visible(t.tool)}  ${t.status.toUpperCase()}  sha256 ${t.sha256}${t.approved_sha256 ? ` (pinned ${t.approved_sha256})` : ''}  seen ${t.seen_at}\n`);
    for (const f of t.findings) out(`    finding: ${f.kind}: ${visible(f.detail)}\n`);
  }
  out(`\n${list.length} tool(s) await review. Show one: tollgate tools diff --server S --tool T; approve: tollgate tools approve ...\n`);
  return 0;
}

async function findSeen(o: Opened, server: string, tool: string): Promise<SeenTool> {
  const e = await o.seen.get(toolKey(server, tool));
  if (!e || e.operation !== 'PUT') throw new Error(`no authz has seen server ${server} offer a tool named ${tool} (list its tools through the mesh first)`);
  return e.json<SeenTool>();
}

async function diff(o: Opened, v: Record<string, unknown>, out: Out): Promise<number> {
  const server = required(v.server as string, 'server');
  const tool = required(v.tool as string, 'tool');
  const s = await findSeen(o, server, tool);
  const pin = (await pinned(o.pins, v['verify-key'] as string | undefined)).find((p) => p.server === server && p.tool === tool) ?? null;
  out(`${server}/${visible(tool)}: ${pin ? (pin.sha256 === s.sha256 ? 'matches its pin' : `changed since approved by ${pin.approver} at ${pin.at}`) : 'new (never approved)'}\n`);
  out(`  offered sha256 ${s.sha256}${pin ? `\n  pinned  sha256 ${pin.sha256}` : ''}\n`);
  for (const l of definitionDiff(pin?.definition ?? null, s.definition)) out(visible(l) + '\n');
  for (const f of s.findings) out(`finding: ${f.kind}: ${visible(f.detail)}\n`);
  return 0;
}

async function sign(o: Opened, v: Record<string, unknown>, action: 'approve' | 'revoke', out: Out): Promise<number> {
  const server = required(v.server as string, 'server');
  const tool = required(v.tool as string, 'tool');
  const key = await loadSigningKey(required(v.key as string, 'key'));
  const approver = required(v.approver as string, 'approver');
  let definition: ToolDefinition | null = null;
  let sha256: string;
  if (action === 'approve') {
    const s = await findSeen(o, server, tool);
    definition = s.definition;
    sha256 = definitionHash(definition);
    if (sha256 !== s.sha256) throw new Error(`the observed definition of ${server}/${tool} does not hash to what authz reported (${s.sha256}); refusing`);
    if (v.sha256 && v.sha256 !== sha256) throw new Error(`${server}/${tool} now hashes to ${sha256}, not ${String(v.sha256)}: it changed since you reviewed it; run tools diff again`);
    if (s.findings.length && !v['accept-findings']) {
      throw new Error(`the scanner flagged ${server}/${tool} (${s.findings.map((f) => f.kind).join(', ')}); review with tools diff, then pass --accept-findings to approve anyway`);
    }
  } else {
    const cur = await o.pins.get(toolKey(server, tool));
    if (!cur || cur.operation !== 'PUT') throw new Error(`${server}/${tool} has no pin to revoke`);
    sha256 = (JSON.parse(Buffer.from((cur.json<PinEntry>().jws.split('.')[1] ?? ''), 'base64url').toString('utf8')) as PinStatement).sha256;
  }
  const statement: PinStatement = {
    schema: PIN_SCHEMA, action, server, tool, sha256, approver, at: new Date().toISOString(), accept_findings: action === 'approve' && v['accept-findings'] === true,
  };
  const entry: PinEntry = { jws: await signStatement(statement, { key: key.key, kid: key.kid, alg: key.alg }), definition };
  await o.pins.put(toolKey(server, tool), JSON.stringify(entry));
  out(`${action === 'approve' ? 'approved' : 'revoked'} ${server}/${visible(tool)} sha256 ${sha256}, signed by ${approver} (key ${key.kid}); every authz enforcing pins applies it within seconds\n`);
  return 0;
}

export const PIN_SUBCOMMANDS = ['pending', 'diff', 'approve', 'revoke'] as const;

/** `tollgate tools pending|diff|approve|revoke`. */
export async function runPins(sub: (typeof PIN_SUBCOMMANDS)[number], rest: string[]): Promise<number> {
  const { values: v } = parseCommandArgs(rest, {
    nats: { type: 'string' }, server: { type: 'string' }, tool: { type: 'string' }, key: { type: 'string' }, approver: { type: 'string' },
    sha256: { type: 'string' }, 'accept-findings': { type: 'boolean' }, json: { type: 'boolean' }, 'verify-key': { type: 'string' },
  });
  if (v.help) { process.stdout.write(PINS_USAGE); return 0; }
  const o = await open(required(v.nats, 'nats'));
  const out: Out = (s) => { process.stdout.write(s); };
  try {
    if (sub === 'pending') return await pending(o, v, out);
    if (sub === 'diff') return await diff(o, v, out);
    return await sign(o, v, sub, out);
  } finally {
    await o.nc.close();
  }
}
