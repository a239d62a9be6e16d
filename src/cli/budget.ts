import { existsSync } from 'node:fs';
import { DEFAULT_NATS_SETTINGS, loadBudgetConfig, type BudgetConfig, type NatsBudgetSettings } from '../budget/config.js';
import { openNats } from '../nats/connect.js';
import { NATS_FLAGS, natsSettingsFromFlags } from './nats-flags.js';
import { LocalBudgetAdmin } from '../budget/local-store.js';
import { NatsBudgetAdmin } from '../budget/nats-store.js';
import { localStateDir } from '../budget/open.js';
import type { BudgetAdmin, BudgetStatusRow } from '../budget/store.js';
import { findMesh, noMeshHint } from '../mesh/mesh-file.js';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';
import { unknownSubcommand } from './subcommands.js';

const USAGE = `Usage: tollgate budget <command> [flags]

Shows and changes token budget state: the in-process state of a standalone authz (a state
directory) or the state authz replicas share in NATS JetStream KV.

Commands:
  status [--team T] [--agent A] [--server S] [--tool X] [--json]
                     used / limit / remaining and reset time of every budget in its current
                     window (day, hour or month), optionally only budgets whose scope names T, ...
  set NAME --limit N override the declared limit of budget NAME (tokens per window) for the
                     current and later windows; running authz picks it up within seconds
  reset NAME         set the usage of budget NAME in its current window back to 0

Where the state is (one of; default: --state):
  --state DIR        authz state directory; budget state is in DIR/budgets/
                     (default: $TOLLGATE_STATE_DIR, else ./.state). When \`tollgate up\` runs
                     there, its --budgets file is read from DIR/mesh.json
  --nats URL         NATS server holding the shared state (e.g. nats://127.0.0.1:4222)
  --nats-ca FILE, --nats-cert FILE, --nats-key FILE
                     TLS and client certificate for a NATS with per-component credentials:
                     the reviewer's for status, the operator's for set/reset (docs/security.md)
  --bucket B         KV bucket with usage and leases (default ${DEFAULT_NATS_SETTINGS.bucket})
  --config-bucket B  KV bucket with limit overrides and declarations (default ${DEFAULT_NATS_SETTINGS.configBucket})

Other flags:
  --budgets FILE     the budgets file: its declarations are listed even before authz ran, and its
                     nats section is used when neither --state nor --nats is given
  --json             (status) print JSON instead of a table
  -h, --help         this help

Examples:
  tollgate budget status --team payments
  tollgate budget set payments-daily --limit 300000 --nats nats://127.0.0.1:4222
  tollgate budget reset payments-daily --state /var/lib/tollgate
`;

const FLAGS = {
  state: { type: 'string' },
  ...NATS_FLAGS,
  bucket: { type: 'string' },
  'config-bucket': { type: 'string' },
  budgets: { type: 'string' },
  team: { type: 'string' },
  agent: { type: 'string' },
  server: { type: 'string' },
  tool: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof FLAGS>>['values'];

/** Nothing to show budgets from: exit 1, unlike a bad flag (2). */
class NoBudgetsError extends Error {}

async function openAdmin(v: Values): Promise<{ admin: BudgetAdmin; where: string }> {
  if (v.state !== undefined && v.nats !== undefined) throw new UsageError('give either --state or --nats, not both');
  let config: BudgetConfig | null = null;
  // The mesh `tollgate up` runs says where its budgets file is (--budgets still overrides).
  const found = v.nats === undefined ? findMesh(v.state, process.env) : null;
  const budgetsFile = v.budgets ?? found?.mesh?.budgets ?? undefined;
  if (found && !found.mesh && v.budgets === undefined && !existsSync(localStateDir(found.stateDir))) {
    throw new NoBudgetsError(`${noMeshHint(found.stateDir, found.explicit)}; or read budgets from NATS with --nats URL, or list a file's budgets with --budgets FILE`);
  }
  if (budgetsFile !== undefined) config = loadBudgetConfig(budgetsFile);
  const specs = config?.budgets ?? null;
  const natsUrl = v.nats ?? (v.state === undefined ? config?.nats?.url : undefined);
  if (natsUrl !== undefined) {
    const base: NatsBudgetSettings = config?.nats ?? { ...DEFAULT_NATS_SETTINGS, url: natsUrl };
    const settings: NatsBudgetSettings = {
      ...base, url: natsUrl, bucket: v.bucket ?? base.bucket, configBucket: v['config-bucket'] ?? base.configBucket,
    };
    const nats = natsSettingsFromFlags(v, natsUrl);
    // With a credential (TLS flags) the connection carries it; reviewers may read, operators set.
    const link = nats?.tls ? await openNats(nats, { name: 'tollgate budget', firstConnectMs: settings.timeoutMs + 3000 }) : null;
    return { admin: await NatsBudgetAdmin.open(settings, specs, link, true), where: `NATS ${natsUrl} (bucket ${settings.bucket})` };
  }
  if (v.bucket !== undefined || v['config-bucket'] !== undefined) throw new UsageError('--bucket and --config-bucket go with --nats');
  const dir = localStateDir(found?.stateDir ?? v.state ?? '.state');
  return { admin: new LocalBudgetAdmin(dir, specs), where: dir };
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function inWords(ms: number): string {
  if (ms <= 0) return 'now';
  const m = Math.round(ms / 60_000);
  if (m < 60) return `in ${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `in ${h}h ${m % 60}m`;
  return `in ${Math.floor(h / 24)}d ${h % 24}h`;
}

function table(rows: BudgetStatusRow[], now: number): string {
  const head = ['BUDGET', 'SCOPE', 'WINDOW', 'USED', 'LIMIT', 'REMAINING', 'ACTION', 'RESETS'];
  const body = rows.map((r) => [
    r.name,
    Object.entries(r.scope).map(([k, v]) => `${k}=${v}`).join(',') || '(all calls)',
    `${r.window} ${r.windowKey}`,
    fmt(r.used) + (r.leased ? ` (+${fmt(r.leased)} leased)` : ''),
    fmt(r.limit) + (r.limit !== r.declaredLimit ? ` (set; declared ${fmt(r.declaredLimit)})` : ''),
    fmt(r.remaining),
    r.action,
    `${r.resetsAt} (${inWords(Date.parse(r.resetsAt) - now)})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n') + '\n';
}

function matches(r: BudgetStatusRow, v: Values): boolean {
  for (const f of ['team', 'agent', 'server', 'tool'] as const) {
    if (v[f] !== undefined && r.scope[f] !== v[f]) return false;
  }
  return true;
}

function oneName(positionals: string[], cmd: string): string {
  if (positionals.length !== 1) throw new UsageError(`budget ${cmd} takes exactly one budget name`);
  return positionals[0]!;
}

const SUBCOMMANDS: readonly string[] = ['status', 'set', 'reset'];

export const budgetCommand: Command = {
  name: 'budget',
  summary: 'Show, set and reset token budgets',
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, FLAGS, true);
    if (values.help) { process.stdout.write(USAGE); return 0; }
    const [sub, ...rest] = positionals;
    // Flags may come before the subcommand here, so it is looked up after parsing (same wording as dispatch).
    if (!sub) throw new UsageError(`name a subcommand (one of: ${SUBCOMMANDS.join(', ')})`);
    if (!SUBCOMMANDS.includes(sub)) throw new UsageError(unknownSubcommand(sub, SUBCOMMANDS));
    if (sub === 'status' && rest.length) throw new UsageError('budget status takes no names; filter with --team, --agent, --server, --tool');
    let limit = 0;
    if (sub === 'set') {
      if (values.limit === undefined) throw new UsageError('budget set needs --limit N (tokens per window)');
      limit = Number(values.limit.replace(/[_,]/g, ''));
      if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number of tokens ≥ 1, got "${values.limit}"`);
    } else if (values.limit !== undefined) throw new UsageError('--limit goes with budget set');
    const name = sub === 'status' ? '' : oneName(rest, sub);

    let opened;
    try {
      opened = await openAdmin(values);
    } catch (e) {
      if (!(e instanceof NoBudgetsError)) throw e;
      process.stderr.write(`tollgate budget: ${e.message}\n`);
      return 1;
    }
    const { admin, where } = opened;
    try {
      const now = Date.now();
      if (sub === 'status') {
        const rows = (await admin.status(now)).filter((r) => matches(r, values));
        if (values.json) process.stdout.write(JSON.stringify({ source: where, budgets: rows }, null, 2) + '\n');
        else if (rows.length === 0) {
          process.stderr.write(`tollgate budget: no budgets found in ${where}${values.budgets ? '' : ' (the mesh runs without --budgets, or pass --budgets FILE to list declared budgets before authz has run)'}\n`);
          return 1;
        } else process.stdout.write(table(rows, now));
        return 0;
      }
      if (sub === 'set') {
        await admin.setLimit(name, limit);
        process.stdout.write(`budget "${name}": limit set to ${fmt(limit)} tokens per window in ${where}; running authz applies it within seconds\n`);
        return 0;
      }
      await admin.reset(name, now);
      process.stdout.write(`budget "${name}": usage of the current window reset to 0 in ${where}\n`);
      return 0;
    } finally {
      await admin.close();
    }
  },
};
