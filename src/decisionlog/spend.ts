import { isAccounting, type ChainedLogEntry } from './types.js';

/**
 * Spend per group of calls (`tollgate logs stats --by team,tool`): calls from the decision
 * records, tokens in and out from the accounting records (written when a response has flowed
 * back), cost from a price table per server and tool, per 1,000 tokens. Pure.
 */

export const SPEND_DIMENSIONS = ['team', 'tool', 'server', 'namespace', 'sub', 'agent', 'method'] as const;
export type SpendDimension = typeof SPEND_DIMENSIONS[number];

export interface Price {
  /** Per 1,000 tokens of arguments (into the tool). */
  inputPer1k: number;
  /** Per 1,000 tokens of results (out of the tool, into the model). */
  outputPer1k: number;
}

export interface PriceRule extends Price {
  /** Exact server name, or "*" / absent for any. */
  server: string | null;
  tool: string | null;
}

export interface PriceTable {
  currency: string;
  rules: PriceRule[];
}

export class PriceTableError extends Error {
  constructor(where: string, problem: string) {
    super(`price table ${where}: ${problem}`);
    this.name = 'PriceTableError';
  }
}

/**
 * Reads a price table document:
 * `{currency: USD, prices: [{server?, tool?, input_per_1k, output_per_1k}, ...]}`.
 * A rule without server or tool (or "*") matches any; the most specific rule wins
 * (server and tool, then tool, then server, then the default).
 */
export function parsePriceTable(doc: unknown, source = 'document'): PriceTable {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PriceTableError(source, 'must be a mapping with `currency` and `prices`');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'currency' && k !== 'prices') throw new PriceTableError(source, `unknown field "${k}" (expected currency, prices)`);
  const currency = o.currency ?? 'USD';
  if (typeof currency !== 'string' || currency.length === 0) throw new PriceTableError(source, '`currency` must be a string such as USD');
  if (!Array.isArray(o.prices)) throw new PriceTableError(source, '`prices` must be a list of {server, tool, input_per_1k, output_per_1k}');
  const rules = o.prices.map((raw, i): PriceRule => {
    const where = `${source}: prices[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PriceTableError(where, 'must be a mapping');
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!['server', 'tool', 'input_per_1k', 'output_per_1k'].includes(k)) throw new PriceTableError(where, `unknown field "${k}" (expected server, tool, input_per_1k, output_per_1k)`);
    }
    const name = (k: 'server' | 'tool'): string | null => {
      const v = r[k];
      if (v === undefined || v === null || v === '*') return null;
      if (typeof v !== 'string' || v.length === 0) throw new PriceTableError(where, `${k} must be a name or "*"`);
      return v;
    };
    const price = (k: 'input_per_1k' | 'output_per_1k'): number => {
      const v = r[k] ?? 0;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new PriceTableError(where, `${k} must be a number ≥ 0 (price per 1,000 tokens), got ${JSON.stringify(v)}`);
      return v;
    };
    return { server: name('server'), tool: name('tool'), inputPer1k: price('input_per_1k'), outputPer1k: price('output_per_1k') };
  });
  return { currency, rules };
}

const FREE: Price = { inputPer1k: 0, outputPer1k: 0 };

/** The most specific rule for a call; no rule: free (and `priced` false). */
export function priceFor(t: PriceTable | null, server: string, tool: string | null): Price & { priced: boolean } {
  let best: PriceRule | null = null;
  let bestScore = -1;
  for (const r of t?.rules ?? []) {
    if ((r.server !== null && r.server !== server) || (r.tool !== null && r.tool !== tool)) continue;
    const score = (r.tool !== null ? 2 : 0) + (r.server !== null ? 1 : 0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best ? { inputPer1k: best.inputPer1k, outputPer1k: best.outputPer1k, priced: true } : { ...FREE, priced: false };
}

export interface SpendRow {
  group: Record<SpendDimension, string> | Record<string, string>;
  calls: number;
  allowed: number;
  denied: number;
  tokensIn: number;
  tokensOut: number;
  cost: number;
}

export interface SpendReport {
  by: SpendDimension[];
  currency: string;
  rows: SpendRow[];
  total: Omit<SpendRow, 'group'>;
  /** Accounting records for calls no price rule covers (their cost counts as 0). */
  unpriced: number;
}

interface Common {
  identity: { sub: string | null; team: string | null; agent: string | null };
  mcp: { server: string; namespace: string; method: string | null; tool: string | null };
}

function dimension(e: Common, d: SpendDimension): string {
  const v = d === 'team' ? e.identity.team : d === 'sub' ? e.identity.sub : d === 'agent' ? e.identity.agent
    : d === 'tool' ? e.mcp.tool ?? e.mcp.method : d === 'server' ? e.mcp.server : d === 'namespace' ? e.mcp.namespace : e.mcp.method;
  return v ?? '(none)';
}

export function parseDimensions(s: string): SpendDimension[] {
  const dims = s.split(',').map((x) => x.trim()).filter(Boolean);
  if (dims.length === 0) throw new Error(`--by needs one or more of ${SPEND_DIMENSIONS.join(', ')}`);
  for (const d of dims) if (!(SPEND_DIMENSIONS as readonly string[]).includes(d)) throw new Error(`--by: unknown dimension "${d}" (use ${SPEND_DIMENSIONS.join(', ')})`);
  return dims as SpendDimension[];
}

export class SpendBuilder {
  private readonly rows = new Map<string, SpendRow>();
  private unpriced = 0;

  constructor(private readonly by: SpendDimension[], private readonly prices: PriceTable | null) {}

  add(e: ChainedLogEntry): void {
    const key = this.by.map((d) => dimension(e, d));
    const id = key.join('\u0000');
    let row = this.rows.get(id);
    if (!row) {
      row = { group: Object.fromEntries(this.by.map((d, i) => [d, key[i]!])), calls: 0, allowed: 0, denied: 0, tokensIn: 0, tokensOut: 0, cost: 0 };
      this.rows.set(id, row);
    }
    if (isAccounting(e)) {
      const p = priceFor(this.prices, e.mcp.server, e.mcp.tool);
      if (!p.priced) this.unpriced++;
      row.tokensIn += e.tokens.request;
      row.tokensOut += e.tokens.response;
      row.cost += (e.tokens.request / 1000) * p.inputPer1k + (e.tokens.response / 1000) * p.outputPer1k;
      return;
    }
    row.calls++;
    if (e.result.allow) row.allowed++;
    else row.denied++;
  }

  result(): SpendReport {
    const rows = [...this.rows.values()].sort((a, b) => b.cost - a.cost || b.calls - a.calls || (Object.values(a.group).join() < Object.values(b.group).join() ? -1 : 1));
    const total = { calls: 0, allowed: 0, denied: 0, tokensIn: 0, tokensOut: 0, cost: 0 };
    for (const r of rows) for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
    return { by: this.by, currency: this.prices?.currency ?? 'USD', rows, total, unpriced: this.unpriced };
  }
}

/** Cost as text: up to 6 decimals, no float noise. */
export function money(n: number): string {
  let s = (Math.round(n * 1e6) / 1e6).toFixed(6);
  let end = s.length;
  while (s[end - 1] === '0') end--;
  if (s[end - 1] === '.') end--;
  s = s.slice(0, end);
  return s === '-0' ? '0' : s;
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
function csvField(s: string): string {
  const quote = s.includes('"') || s.includes(',') || s.includes('\n') || s.includes('\r');
  return quote ? `"${s.split('"').join('""')}"` : s;
}

export function spendCsv(r: SpendReport): string {
  const head = [...r.by, 'calls', 'allowed', 'denied', 'tokens_in', 'tokens_out', `cost_${r.currency.toLowerCase()}`];
  const lines = [head.join(',')];
  for (const row of r.rows) {
    lines.push([...r.by.map((d) => csvField((row.group as Record<string, string>)[d] ?? '')), row.calls, row.allowed, row.denied, row.tokensIn, row.tokensOut, money(row.cost)].join(','));
  }
  return lines.join('\r\n') + '\r\n';
}
