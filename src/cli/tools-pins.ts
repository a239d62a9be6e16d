import { openNats, type NatsLink } from '../nats/connect.js';
import { NATS_FLAGS, natsSettingsFromFlags, type NatsFlagValues } from './nats-flags.js';
import { Kvm, type KV } from '@nats-io/kv';
import { loadSigningKey, loadVerificationKeys } from '../bundle/keys.js';
import { PIN_SCHEMA, signStatement, type PinEntry, type PinStatement } from '../pins/approval.js';
import { PINS_BUCKET, SEEN_BUCKET, toolKey } from '../pins/buckets.js';
import { definitionHash, type ToolDefinition } from '../pins/definition.js';
import { definitionDiff, pendingTools, visible, type PinnedTool, type SeenTool } from '../pins/review.js';
import { getPinEntry, getSeen, readPinnedReport, readSeenReport, type MalformedEntry } from '../pins/read.js';
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

  --nats URL            NATS server holding the buckets (tollgate up prints its URL)
  --nats-ca FILE, --nats-cert FILE, --nats-key FILE
                        TLS and client certificate for a NATS with per-component credentials:
                        the operator's may write pins, the reviewer's may read them (docs/security.md)
  --verify-key FILE     (pending, diff) approver public key(s): pins that do not verify are shown as such
  -h, --help            this text

A bucket entry that is not what authz or an approver writes is reported with its bucket and key;
pending lists the readable tools, reports each malformed entry on stderr and exits 1.

Each approval is a JWS signed with the approver's private key (--key, PEM or JWK; e.g. made with
tollgate controlplane keys); authz trusts it only if its --pin-approver-key verifies it, and writes an
administrative record of it to its decision log.
`;

interface Opened { link: NatsLink; pins: KV; seen: KV }

async function open(flags: NatsFlagValues): Promise<Opened> {
  const settings = natsSettingsFromFlags(flags);
  if (!settings) throw new UsageError('--nats URL is required');
  const link = await openNats(settings, { name: 'tollgate-tools', firstConnectMs: 5000 });
  const kvm = new Kvm(link.nc);
  try {
    const pins = await kvm.open(PINS_BUCKET);
    await pins.status();
    return { link, pins, seen: await kvm.open(SEEN_BUCKET) };
  } catch (e) {
    await link.close();
    throw new Error(`no tool-pinning buckets on ${settings.servers.join(',')} (${(e as Error).message}): the control plane creates them; start it (tollgate controlplane serve, or tollgate up --pins)`);
  }
}

async function pinned(kv: KV, verifyKey: string | undefined, server?: string): Promise<{ pins: PinnedTool[]; malformed: MalformedEntry[] }> {
  const keys = verifyKey ? (await loadVerificationKeys(verifyKey)).map((k) => ({ key: k.key, kid: k.kid, alg: k.alg })) : null;
  return readPinnedReport(kv, keys, server);
}

function required(v: string | undefined, flag: string): string {
  if (!v) throw new UsageError(`--${flag} is required`);
  return v;
}

type Out = (s: string) => void;

async function pending(o: Opened, v: Record<string, unknown>, out: Out, err: Out): Promise<number> {
  const server = v.server as string | undefined;
  const seen = await readSeenReport(o.seen, server);
  const pins = await pinned(o.pins, v['verify-key'] as string | undefined, server);
  const list = pendingTools(seen.tools, pins.pins);
  // Entries that are not what authz or an approver wrote: reported (each one line, naming its key)
  // and the command fails, since a tool behind one of them may await review unseen.
  const malformed = [...seen.malformed, ...pins.malformed];
  const report = (): number => {
    for (const m of malformed) err(`tollgate tools pending: ${visible(m.error)}\n`);
    return malformed.length ? 1 : 0;
  };
  if (v.json) { out(JSON.stringify(list, null, 2) + '\n'); return report(); }
  if (list.length === 0) {
    out(malformed.length ? `No readable tool awaits review, but ${malformed.length} entr${malformed.length === 1 ? 'y is' : 'ies are'} malformed (below).\n` : 'No tool awaits review: every tool the servers offer matches its pin.\n');
    return report();
  }
  for (const t of list) {
    out(`${t.server}/${visible(t.tool)}  ${t.status.toUpperCase()}  sha256 ${t.sha256}${t.approved_sha256 ? ` (pinned ${t.approved_sha256})` : ''}  seen ${visible(t.seen_at)}\n`);
    for (const f of t.findings) out(`    finding: ${visible(f.kind)}: ${visible(f.detail)}\n`);
  }
  out(`\n${list.length} tool(s) await review. Show one: tollgate tools diff --server S --tool T; approve: tollgate tools approve ...\n`);
  return report();
}

async function findSeen(o: Opened, server: string, tool: string): Promise<SeenTool> {
  const s = await getSeen(o.seen, server, tool);
  if (!s) throw new Error(`no authz has seen server ${server} offer a tool named ${tool} (list its tools through the mesh first)`);
  return s;
}

async function diff(o: Opened, v: Record<string, unknown>, out: Out): Promise<number> {
  const server = v.server as string;
  const tool = v.tool as string;
  const s = await findSeen(o, server, tool);
  const pins = await pinned(o.pins, v['verify-key'] as string | undefined, server);
  const pin = pins.pins.find((p) => p.server === server && p.tool === tool) ?? null;
  const bad = pins.malformed.find((m) => m.key === toolKey(server, tool));
  if (bad) throw new Error(`${bad.error} (authz does not put it in force; tools approve replaces it)`);
  out(`${server}/${visible(tool)}: ${pin ? (pin.sha256 === s.sha256 ? 'matches its pin' : `changed since approved by ${pin.approver} at ${pin.at}`) : 'new (never approved)'}\n`);
  out(`  offered sha256 ${s.sha256}${pin ? `\n  pinned  sha256 ${pin.sha256}` : ''}\n`);
  for (const l of definitionDiff(pin?.definition ?? null, s.definition)) out(visible(l) + '\n');
  for (const f of s.findings) out(`finding: ${visible(f.kind)}: ${visible(f.detail)}\n`);
  return 0;
}

type SigningKey = Awaited<ReturnType<typeof loadSigningKey>>;

async function sign(o: Opened, v: Record<string, unknown>, action: 'approve' | 'revoke', key: SigningKey, out: Out): Promise<number> {
  const server = v.server as string;
  const tool = v.tool as string;
  const approver = v.approver as string;
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
    const cur = await getPinEntry(o.pins, server, tool);
    if (!cur) throw new Error(`${server}/${tool} has no pin to revoke`);
    sha256 = cur.statement.sha256;
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
    ...NATS_FLAGS, server: { type: 'string' }, tool: { type: 'string' }, key: { type: 'string' }, approver: { type: 'string' },
    sha256: { type: 'string' }, 'accept-findings': { type: 'boolean' }, json: { type: 'boolean' }, 'verify-key': { type: 'string' },
  });
  if (v.help) { process.stdout.write(PINS_USAGE); return 0; }
  // Usage first: a missing flag is a usage error whether or not NATS is up.
  if (!natsSettingsFromFlags(v)) throw new UsageError('--nats URL is required');
  if (sub !== 'pending') { required(v.server, 'server'); required(v.tool, 'tool'); }
  let key: SigningKey | null = null;
  if (sub === 'approve' || sub === 'revoke') {
    required(v.key, 'key');
    required(v.approver, 'approver');
    key = await loadSigningKey(v.key!);
  }
  const o = await open(v);
  const out: Out = (s) => { process.stdout.write(s); };
  const err: Out = (s) => { process.stderr.write(s); };
  try {
    if (sub === 'pending') return await pending(o, v, out, err);
    if (sub === 'diff') return await diff(o, v, out);
    return await sign(o, v, sub, key!, out);
  } finally {
    await o.link.close();
  }
}
