import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, policy, scratch, write } from './support.js';

/** #13: the policy, as its author would run the toolkit on it. */
const USER_POLICY = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/listing/user.rego'), 'utf8');

const SCENARIOS = `defaults:
  server: demo
  identity: {sub: alice, team: math}
cases:
  - name: math sees add in tools/list
    request: {listed: add}
    expect: {allow: true}
  - name: art does not see add
    identity: {sub: bob, team: art}
    request: {listed: add}
    expect: {allow: false}
  - name: math may add small numbers, not large ones
    request: {tool: add, arguments: {a: 5000}}
    expect: {allow: false}
`;

describe('listings in the policy toolkit (tollgate policy check / test)', function () {
  this.timeout(120_000);
  after(cleanup);

  it('policy check says which allow rule is judged without its argument checks in tools/list, and where', async () => {
    const dir = write(scratch(), { 'user.rego': USER_POLICY });
    const r = await policy(['check', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /user\.rego:10: note: this allow rule reads the call's arguments; tools\/list judges it without `input\.mcp\.arguments\.a < 1000`/);
  });

  it('policy check is quiet about policies that handle listings themselves (the example policy)', async () => {
    const r = await policy(['check', 'policies']);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.out, /note:/);
  });

  it('scenario files test listings with `listed: TOOL`, and a malformed one is refused with its place', async () => {
    const dir = write(scratch(), { 'user.rego': USER_POLICY, 'scenarios/list.yaml': SCENARIOS });
    const ok = await policy(['test', dir]);
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /3 passed, 0 failed/);
    write(dir, { 'scenarios/list.yaml': SCENARIOS.replace('request: {listed: add}', 'request: {listed: add, arguments: {a: 1}}') });
    const bad = await policy(['test', dir]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out + bad.err, /listed asks whether a tool is shown in tools\/list, so it takes no arguments/);
  });
});
