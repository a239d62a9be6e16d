import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { budgetCommand } from '../../../src/cli/budget.js';
import { parseBudgetConfig } from '../../../src/budget/config.js';
import { createBudgetGate } from '../../../src/budget/gate.js';
import { LocalBudgetAdmin, LocalBudgetStore, STATE_FILE } from '../../../src/budget/local-store.js';
import { openBudgetGate } from '../../../src/budget/open.js';
import type { ChargeSubject } from '../../../src/budget/types.js';

const YAML = `
budgets:
  - { name: payments-daily, scope: { team: payments }, limit: 1000, window: day, timezone: Europe/Berlin }
  - { name: payments-monthly-cl100k, scope: { team: payments }, limit: 100000, window: month, tokenizer: cl100k_base }
  - { name: search-hourly, scope: { tool: search }, limit: 50, window: hour, action: warn }
`;
const config = parseBudgetConfig(YAML, 'budgets.yaml');
const alice: ChargeSubject = { team: 'payments', agent: null, sub: 'alice', server: 'docs', tool: 'search' };

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const orig = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array): boolean => { out += chunk.toString(); return true; }) as typeof process.stdout.write;
  try {
    const code = await budgetCommand.run(argv);
    return { code, out };
  } finally {
    process.stdout.write = orig;
  }
}

describe('local budget store and gate', () => {
  let dir: string;
  const clock = { now: Date.parse('2025-06-10T10:00:00Z') };
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-budget-')); clock.now = Date.parse('2025-06-10T10:00:00Z'); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = () => LocalBudgetStore.open(config.budgets, { dir, clock: () => clock.now, persistDelayMs: 10, adminPollMs: 0 });

  it('charges every applicable budget and denies once a deny budget is used up', async () => {
    const store = open();
    const gate = createBudgetGate(config, store, { clock: () => clock.now });
    assert.deepEqual(gate.check(alice, 10).entries.map((e) => e.name), ['payments-daily', 'payments-monthly-cl100k', 'search-hourly']);
    gate.charge(alice, { tokens: 600, byEncoding: { cl100k_base: 650 } });
    let r = gate.check(alice, 10);
    assert.equal(r.exhausted, null);
    assert.deepEqual(r.entries.map((e) => e.used), [600, 650, 600]);
    assert.deepEqual(r.warnings?.map((w) => w.name), ['search-hourly']);
    gate.charge(alice, 400);
    r = gate.check(alice, 0);
    assert.equal(r.exhausted?.name, 'payments-daily');
    assert.match(r.reason!, /1000 of 1000 tokens used this day; it resets at 2025-06-10T22:00:00.000Z/);
    assert.equal(gate.metrics.denials.get('payments-daily'), 1);
    assert.equal(gate.metrics.chargedTokens.get('payments-monthly-cl100k'), 1050);
    // Someone outside the scope is not affected.
    assert.equal(gate.check({ ...alice, team: 'growth', tool: 'x' }, 5).entries.length, 0);
    // The next day (Berlin midnight) starts from zero; the month goes on.
    clock.now = Date.parse('2025-06-10T22:00:00Z');
    r = gate.check(alice, 0);
    assert.equal(r.exhausted, null);
    assert.deepEqual(r.entries.map((e) => e.used), [0, 1050, 0]);
    await gate.close();
  });

  it('keeps usage across a restart (atomic file, reloaded on open)', async () => {
    const gate = createBudgetGate(config, open(), { clock: () => clock.now });
    gate.charge(alice, 700);
    await gate.close();
    assert.deepEqual(readdirSync(join(dir)).filter((f) => f.endsWith('.tmp')), []);
    const saved = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8'));
    assert.equal(saved.usage['payments-daily'].used, 700);
    const again = createBudgetGate(config, open(), { clock: () => clock.now });
    assert.equal(again.check(alice, 0).entries[0]!.used, 700);
    again.charge(alice, 300);
    assert.equal(again.check(alice, 0).exhausted?.name, 'payments-daily');
    await again.close();
  });

  it('saves shortly after a change without waiting for close', async () => {
    const store = open();
    const gate = createBudgetGate(config, store, { clock: () => clock.now });
    gate.charge(alice, 5);
    await store.flush();
    assert.equal(JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')).usage['payments-daily'].used, 5);
    await gate.close();
  });

  it('applies `budget set` and `budget reset` written while it runs', async () => {
    const store = open();
    const gate = createBudgetGate(config, store, { clock: () => clock.now });
    gate.charge(alice, 1000);
    await store.flush();
    const admin = new LocalBudgetAdmin(dir);
    await admin.setLimit('payments-daily', 1500);
    store.pollAdmin();
    let r = gate.check(alice, 0);
    assert.equal(r.exhausted, null);
    assert.equal(r.entries[0]!.limit, 1500);
    assert.equal(r.entries[0]!.remaining, 500);
    await admin.reset('payments-daily', clock.now);
    store.pollAdmin();
    r = gate.check(alice, 0);
    assert.equal(r.entries[0]!.used, 0);
    assert.equal(r.entries[1]!.used, 1000, 'other budgets untouched');
    await assert.rejects(admin.reset('nope', clock.now), /no budget named "nope".*known: payments-daily/);
    await gate.close();
    // A reset is applied once: after a restart the admin file is read again, but not re-applied.
    const again = createBudgetGate(config, open(), { clock: () => clock.now });
    assert.equal(again.check(alice, 0).entries[0]!.used, 0);
    again.charge(alice, 10);
    await again.close();
    const third = createBudgetGate(config, open(), { clock: () => clock.now });
    assert.equal(third.check(alice, 0).entries[0]!.used, 10);
    assert.equal(third.check(alice, 0).entries[0]!.limit, 1500);
    await third.close();
  });

  it('tollgate budget status / set / reset work against the state directory', async () => {
    const stateDir = dir;
    // The CLI reads the real clock, so this authz does too.
    const { gate, mode } = await openBudgetGate(config, { stateDir });
    assert.equal(mode, 'local');
    gate.charge(alice, 250);
    await gate.close();
    const json = await capture(['status', '--state', stateDir, '--json']);
    assert.equal(json.code, 0);
    const rows = JSON.parse(json.out).budgets as Array<{ name: string; used: number; limit: number; remaining: number }>;
    // (The hourly budget is left out: an hour could turn between charge and status.)
    assert.deepEqual(rows.slice(0, 2).map((r) => [r.name, r.used, r.limit, r.remaining]), [
      ['payments-daily', 250, 1000, 750], ['payments-monthly-cl100k', 250, 100000, 99750],
    ]);
    assert.equal(rows[2]!.limit, 50);

    const set = await capture(['set', 'payments-daily', '--limit', '5000', '--state', stateDir]);
    assert.equal(set.code, 0);
    assert.match(set.out, /limit set to 5,000/);
    const table = await capture(['status', '--state', stateDir, '--team', 'payments']);
    assert.match(table.out, /^BUDGET\s+SCOPE\s+WINDOW\s+USED\s+LIMIT/);
    assert.match(table.out, /payments-daily\s+team=payments\s+day \d{4}-\d{2}-\d{2}\s+\d+\s+5,000 \(set; declared 1,000\)/);
    assert.doesNotMatch(table.out, /search-hourly/);
    const reset = await capture(['reset', 'payments-daily', '--state', stateDir]);
    assert.equal(reset.code, 0);
    const after = JSON.parse((await capture(['status', '--state', stateDir, '--json'])).out).budgets as Array<{ used: number }>;
    assert.equal(after[0]!.used, 0);

    const help = await capture(['--help']);
    for (const flag of ['--state', '--nats', '--bucket', '--config-bucket', '--budgets', '--team', '--agent', '--server', '--tool', '--limit', '--json']) {
      assert.ok(help.out.includes(flag), `--help documents ${flag}`);
    }
    await assert.rejects(budgetCommand.run(['set', 'payments-daily', '--state', stateDir]), /needs --limit/);
    await assert.rejects(budgetCommand.run(['frobnicate']), /unknown subcommand "frobnicate" \(one of: status, set, reset\)/);
    await assert.rejects(budgetCommand.run(['reset', 'nope', '--state', stateDir]), /no budget named "nope"/);
  });

  it('budget status checks the recorded declarations with the budget schema and names the bad ones', async () => {
    const stateDir = join(dir, 'budgets');
    const now = Date.parse('2025-06-10T10:00:00Z');
    const record = (specs: unknown[]): void => {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(join(stateDir, STATE_FILE), JSON.stringify({ version: 1, specs, usage: {}, appliedResets: {} }));
    };
    // Half a budget, a timezone that is none: refused by name and field, not "Cannot read properties of undefined".
    record([
      { name: 'x' },
      { name: 'ok', scope: { team: 'payments' }, limit: 10, window: 'day', timezone: 'UTC', action: 'deny', tokenizer: 'o200k_base' },
      { name: 'mars', scope: {}, limit: 10, window: 'day', timezone: 'Mars/X', action: 'deny' },
      'not a budget',
    ]);
    const admin = new LocalBudgetAdmin(stateDir);
    const refused = (e: unknown): boolean => {
      const m = (e as Error).message;
      assert.ok(m.startsWith(`${join(stateDir, STATE_FILE)} records budgets this version cannot read`), m);
      assert.match(m, /\n {2}specs\[0\] \("x"\): limit: is required \(tokens per window\)\n/);
      assert.match(m, /\n {2}specs\[2\] \("mars"\): timezone: "Mars\/X" is not an IANA time zone/);
      assert.match(m, /\n {2}specs\[3\]: must be a mapping with name, scope, limit, window, got "not a budget"\n/);
      assert.doesNotMatch(m, /specs\[1\]/);
      assert.match(m, /--budgets FILE/);
      return true;
    };
    await assert.rejects(admin.status(now), refused);
    await assert.rejects(admin.reset('ok', now), refused);
    await assert.rejects(budgetCommand.run(['status', '--state', dir]), refused);

    // What the schema fills in is filled in: a null scope is every call, a missing action deny.
    record([{ name: 'x', scope: null, limit: 5, window: 'day' }]);
    const rows = await new LocalBudgetAdmin(stateDir).status(now);
    assert.deepEqual(rows.map((r) => [r.name, r.scope, r.action, r.timezone, r.limit]), [['x', {}, 'deny', 'UTC', 5]]);
    const table = await capture(['status', '--state', dir]);
    assert.equal(table.code, 0);
    assert.match(table.out, /x\s+\(all calls\)\s+day 2\d{3}-\d{2}-\d{2}\s+0\s+5\s+5\s+deny/);

    // authz itself does not read them back: bad recorded specs never keep it from starting.
    record([{ name: 'x' }]);
    const store = LocalBudgetStore.open(config.budgets, { dir: stateDir, persistDelayMs: 10, adminPollMs: 0 });
    await store.close();
    assert.deepEqual((await new LocalBudgetAdmin(stateDir).status(now)).map((r) => r.name), config.budgets.map((b) => b.name));
  });

  it('lists declared budgets from --budgets before authz ever ran', async () => {
    const file = join(dir, 'budgets.yaml');
    writeFileSync(file, YAML);
    const r = await capture(['status', '--state', join(dir, 'fresh'), '--budgets', file, '--json']);
    const rows = JSON.parse(r.out).budgets as Array<{ name: string; used: number }>;
    assert.deepEqual(rows.map((x) => [x.name, x.used]), [['payments-daily', 0], ['payments-monthly-cl100k', 0], ['search-hourly', 0]]);
  });
});
