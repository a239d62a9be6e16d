import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KV } from '@nats-io/kv';
import { runPins } from '../../../src/cli/tools-pins.js';
import { UsageError } from '../../../src/cli/types.js';
import { PIN_SCHEMA, signStatement, type PinStatement } from '../../../src/pins/approval.js';
import { toolKey } from '../../../src/pins/buckets.js';
import { definitionHash, toolDefinition } from '../../../src/pins/definition.js';
import { MalformedEntryError, parsePinEntry, parseSeenEntry, pinStatementOf, readPinnedReport, readSeenReport } from '../../../src/pins/read.js';

const KEY = toolKey('s', 't');
const def = toolDefinition({ name: 't', description: 'Does t.' })!;
const seen = (over: Record<string, unknown> = {}) => JSON.stringify({
  server: 's', tool: 't', sha256: definitionHash(def), definition: def, findings: [], seen_at: '2026-01-01T00:00:00.000Z', instance: 'a1', ...over,
});
const statement = (over: Partial<PinStatement> = {}): PinStatement => ({
  schema: PIN_SCHEMA, action: 'approve', server: 's', tool: 't', sha256: definitionHash(def), approver: 'alice', at: 't0', accept_findings: false, ...over,
});
const signer = () => ({ key: generateKeyPairSync('ed25519').privateKey, kid: 'k', alg: 'EdDSA' });

/** Enough of a NATS KV for the listing functions: keys() and get() over fixed text values. */
function fakeKv(entries: Record<string, string>): KV {
  return {
    keys: async () => (async function* () { yield* Object.keys(entries); })(),
    get: async (k: string) => (k in entries ? { operation: 'PUT', string: () => entries[k]! } : null),
  } as unknown as KV;
}

const malformed = (bucket: string, re: RegExp) => (e: unknown) => e instanceof MalformedEntryError
  && e.message.startsWith(`${bucket} entry ${KEY} (server "s", tool "t") is malformed: `) && re.test(e.message) && !e.message.includes('\n');

describe('pins: reading KV entries through one parser', () => {
  it('a seen entry: reads what authz writes, and names the key and the problem of anything else', () => {
    assert.equal(parseSeenEntry(KEY, seen()).sha256, definitionHash(def));
    assert.throws(() => parseSeenEntry(KEY, 'not json'), malformed('tollgate_tools_seen', /: not JSON \(/));
    assert.throws(() => parseSeenEntry(KEY, '{"server":"s","tool":"t"}'), malformed('tollgate_tools_seen', /sha256: .*; definition: .*; findings: .*; seen_at: /));
    assert.throws(() => parseSeenEntry(KEY, 'null'), malformed('tollgate_tools_seen', /\(top level\): /));
    assert.throws(() => parseSeenEntry(KEY, seen({ definition: { name: 't', title: null, description: null, inputSchema: null, annotations: null } })), malformed('tollgate_tools_seen', /definition\.outputSchema: is required/));
    assert.throws(() => parseSeenEntry(KEY, seen({ server: 'other' })), malformed('tollgate_tools_seen', /about server "other", tool "t"/));
    assert.throws(() => parseSeenEntry(KEY, seen({ definition: { ...def, name: 'u' } })), malformed('tollgate_tools_seen', /definition\.name is "u"/));
    assert.throws(() => parseSeenEntry(KEY, seen({ findings: [{ kind: 1 }] })), malformed('tollgate_tools_seen', /findings\[0\]\.kind: /));
    assert.throws(() => parseSeenEntry('nokey', seen()), (e: unknown) => e instanceof MalformedEntryError && /tollgate_tools_seen entry nokey is malformed: the key is not/.test(e.message));
  });

  it('a pin entry: the JWS must be a compact JWS carrying a pin statement about the key it is stored under', async () => {
    assert.throws(() => parsePinEntry(KEY, '{"jws":5}'), malformed('tollgate_pins', /jws: Invalid input: expected string/));
    assert.throws(() => parsePinEntry(KEY, '{"jws":"a.b","definition":null}'), malformed('tollgate_pins', /jws: must be a compact JWS/));
    assert.throws(() => parsePinEntry(KEY, '{"jws":"a.b.c"}'), malformed('tollgate_pins', /definition: /));
    const bogus = parsePinEntry(KEY, JSON.stringify({ jws: `e30.${Buffer.from('{"x":1}').toString('base64url')}.c`, definition: null }));
    assert.throws(() => pinStatementOf(KEY, bogus), malformed('tollgate_pins', /payload is not a tollgate\.tool-pin\/v1 statement/));
    const elsewhere = parsePinEntry(KEY, JSON.stringify({ jws: await signStatement(statement({ tool: 'u' }), signer()), definition: null }));
    assert.throws(() => pinStatementOf(KEY, elsewhere), malformed('tollgate_pins', /statement is about server "s", tool "u"/));
    const good = parsePinEntry(KEY, JSON.stringify({ jws: await signStatement(statement(), signer()), definition: def }));
    assert.equal(pinStatementOf(KEY, good).sha256, definitionHash(def));
  });

  it('listings report malformed entries instead of leaving them out silently', async () => {
    const u = toolKey('s', 'u');
    const seenKv = fakeKv({ [KEY]: seen(), [u]: '{"server":"s","tool":"u"}', [toolKey('s', 'v')]: 'not json' });
    const s = await readSeenReport(seenKv);
    assert.deepEqual(s.tools.map((t) => t.tool), ['t']);
    assert.deepEqual(s.malformed.map((m) => [m.bucket, m.key]), [['tollgate_tools_seen', u], ['tollgate_tools_seen', toolKey('s', 'v')]]);
    assert.match(s.malformed[0]!.error, /^tollgate_tools_seen entry [^ ]+ \(server "s", tool "u"\) is malformed: sha256: /);

    const pinKv = fakeKv({ [KEY]: JSON.stringify({ jws: await signStatement(statement(), signer()), definition: def }), [u]: '{"jws":5}' });
    const p = await readPinnedReport(pinKv, null);
    assert.deepEqual(p.pins.map((x) => [x.tool, x.approver]), [['t', 'alice']]);
    assert.deepEqual(p.malformed.map((m) => m.key), [u]);
  });
});

describe('tools pending|diff|approve|revoke: flags before NATS', () => {
  // Nothing listens on port 1: reaching NATS would be "cannot connect", not a usage error.
  const nats = ['--nats', 'nats://127.0.0.1:1'];
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-pins-flags-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing --server, --tool, --key, --approver or --nats is a usage error without connecting', async () => {
    const usage = (flag: string) => (e: unknown) => e instanceof UsageError && e.message === `--${flag} is required`;
    await assert.rejects(runPins('diff', [...nats, '--tool', 't']), usage('server'));
    await assert.rejects(runPins('diff', [...nats, '--server', 's']), usage('tool'));
    await assert.rejects(runPins('approve', [...nats, '--server', 's', '--tool', 't', '--approver', 'a']), usage('key'));
    await assert.rejects(runPins('revoke', [...nats, '--server', 's', '--tool', 't', '--key', 'k.pem']), usage('approver'));
    await assert.rejects(runPins('pending', []), (e: unknown) => e instanceof UsageError && /--nats URL is required/.test(e.message));
    await assert.rejects(runPins('approve', ['--server', 's', '--tool', 't', '--key', 'k.pem', '--approver', 'a']), (e: unknown) => e instanceof UsageError && /--nats URL is required/.test(e.message));
  });

  it('an unreadable signing key is reported before connecting', async () => {
    const key = join(dir, 'bad.pem');
    writeFileSync(key, 'not a key');
    await assert.rejects(runPins('approve', [...nats, '--server', 's', '--tool', 't', '--key', key, '--approver', 'a']), (e: unknown) => e instanceof Error && !/connect/i.test(e.message) && e.message.includes('bad.pem'));
  });
});
