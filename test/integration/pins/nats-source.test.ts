import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { ensurePinBuckets } from '../../../src/controlplane/pins.js';
import { PIN_SCHEMA, signStatement, type ApproverKey, type PinStatement } from '../../../src/pins/approval.js';
import { PINS_BUCKET, SEEN_BUCKET, toolKey } from '../../../src/pins/buckets.js';
import { definitionHash, toolDefinition } from '../../../src/pins/definition.js';
import { NatsPinSource, type PinEvent } from '../../../src/pins/nats-source.js';
import { PinStore } from '../../../src/pins/store.js';
import { NatsServer } from '../../../src/nats/server.js';

const until = async <T>(probe: () => T | null | undefined | false, what: string, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

function approver(kid: string): { sign: ApproverKey; verify: ApproverKey } {
  const pair = generateKeyPairSync('ed25519');
  return { sign: { key: pair.privateKey, kid, alg: 'EdDSA' }, verify: { key: pair.publicKey, kid, alg: 'EdDSA' } };
}

/** The authz side of pinning against a real nats-server, with buckets the control plane created. */
describe('NatsPinSource with real nats-server', function () {
  this.timeout(60_000);
  let srv: NatsServer;
  let nc: NatsConnection;
  let pins: KV;
  let seen: KV;
  const alice = approver('alice');
  const def = toolDefinition({ name: 'search_docs', description: 'Search.' })!;
  const statement = (action: 'approve' | 'revoke'): PinStatement => ({
    schema: PIN_SCHEMA, action, server: 'demo', tool: 'search_docs', sha256: definitionHash(def), approver: 'alice', at: 't', accept_findings: false,
  });

  before(async () => {
    srv = await NatsServer.start();
    nc = await connect({ servers: srv.url });
    await ensurePinBuckets(nc);
    pins = await new Kvm(nc).open(PINS_BUCKET);
    seen = await new Kvm(nc).open(SEEN_BUCKET);
  });
  after(async () => {
    await nc?.close();
    await srv?.stop();
  });

  it('applies verified approvals and revocations, refuses forgeries, records each, and publishes what servers offer', async () => {
    const store = new PinStore();
    const events: PinEvent[] = [];
    const source = new NatsPinSource({ store, keys: [alice.verify], nats: { servers: srv.url }, instance: 'a1', onEvent: (e) => events.push(e) });
    store.observe('demo', [{ name: 'search_docs', description: 'Search.' }]);
    await source.start();
    try {
      // Observations made before the bucket was reachable are published once it is.
      await until(() => source.stats.published > 0, 'the observation to be published');
      const s = await seen.get(toolKey('demo', 'search_docs'));
      assert.equal(s?.json<{ sha256: string }>().sha256, definitionHash(def));

      await pins.put(toolKey('demo', 'search_docs'), JSON.stringify({ jws: await signStatement(statement('approve'), alice.sign), definition: def }));
      await until(() => store.inputFor('demo', 'search_docs').status === 'approved', 'the approval');
      const mallory = approver('alice'); // same kid, other key
      await pins.put(toolKey('demo', 'search_docs'), JSON.stringify({ jws: await signStatement(statement('approve'), mallory.sign), definition: def }));
      await until(() => store.inputFor('demo', 'search_docs').status === 'new', 'the forged entry to withdraw the pin');
      await pins.put(toolKey('demo', 'search_docs'), JSON.stringify({ jws: await signStatement(statement('approve'), alice.sign), definition: def }));
      await until(() => store.inputFor('demo', 'search_docs').status === 'approved', 'the re-approval');
      await pins.put(toolKey('demo', 'search_docs'), JSON.stringify({ jws: await signStatement(statement('revoke'), alice.sign), definition: null }));
      await until(() => store.inputFor('demo', 'search_docs').status === 'new', 'the revocation');
      assert.deepEqual(events.map((e) => e.action), ['approve', 'rejected', 'approve', 'revoke']);
      assert.match(events[1]!.note!, /does not verify/);
    } finally {
      await source.stop();
    }
  });

  it('never enforces an approval it could not record', async () => {
    const store = new PinStore();
    let asked = 0;
    const source = new NatsPinSource({
      store, keys: [alice.verify], nats: { servers: srv.url }, instance: 'a2',
      onEvent: () => { asked++; throw new Error('decision log unavailable'); },
    });
    await pins.put(toolKey('demo', 'search_docs'), JSON.stringify({ jws: await signStatement(statement('approve'), alice.sign), definition: def }));
    await source.start();
    try {
      store.observe('demo', [{ name: 'search_docs', description: 'Search.' }]);
      await until(() => asked > 0, 'the verified approval to be offered to the log');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(store.inputFor('demo', 'search_docs').status, 'new');
      assert.equal(source.stats.applied, 0);
    } finally {
      await source.stop();
    }
  });
});
