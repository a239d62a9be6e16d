import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { DEFAULT_NATS_SETTINGS, parseBudgetConfig } from '../../../src/budget/config.js';
import { NatsBudgetAdmin, publishBudgetDefinitions } from '../../../src/budget/nats-store.js';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import { readStreamRecords } from '../../../src/decisionlog/nats-reader.js';
import { openNats } from '../../../src/nats/connect.js';
import { LocalPki, spiffeId } from '../../../src/pki/index.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { writePolicy } from '../controlplane/support.js';
import { SecureNats } from '../../support/secure-nats.js';
import { assertAuthzNatsDuties } from '../../support/authz-nats-duties.js';

/**
 * The NATS a secured mesh runs: TLS, a client certificate per component mapped to a user, and
 * least-privilege permissions (src/nats/permissions.ts). Each credential does its job end to end
 * through the real capabilities, and is refused what it must not do.
 */

const PERMISSION = /permission/i;
const enc = new TextEncoder();

const budgets = parseBudgetConfig(`
nats: {}
budgets:
  - name: payments-daily
    scope: { team: payments }
    limit: 100000
    window: day
`);

describe('NATS with TLS and per-component credentials', function () {
  this.timeout(90000);
  let nats: SecureNats;
  let work: string;
  let keys: Awaited<ReturnType<typeof keyPair>>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-nats-perms-'));
    keys = await keyPair('EdDSA');
    nats = await SecureNats.start();
    // The control plane creates every stream and bucket, publishes a bundle and the budgets.
    const cp = await nats.link('controlplane').ready();
    await provisionStreams(cp);
    writePolicy(join(work, 'p'), ['a']);
    const files = await readBundle(await buildPolicyBundle(join(work, 'p')));
    await (await BundlePublisher.open(cp)).publish(files, keys.signing);
    await publishBudgetDefinitions(cp, DEFAULT_NATS_SETTINGS, budgets.budgets);
  });
  after(async () => {
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('each component does its job with its own credential', async () => {
    // authz: follows signed bundles, takes a budget lease, replicates its decision records.
    const authz = nats.link('authz-demo');
    await assertAuthzNatsDuties({ link: authz, natsUrl: nats.url, verification: keys.verification, budgets, work, record: { server: 'demo' } });

    // reviewer: reads the records (with the writer's identity in the subject) and budget state.
    const reviewer = nats.link('reviewer');
    const got = [];
    for await (const r of readStreamRecords({ link: reviewer, stream: 'TOLLGATE_DECISIONS', subjectPrefix: 'tollgate.decisions' })) got.push(r);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.subject, 'tollgate.decisions.default.demo.default~authz-demo');
    const status = await NatsBudgetAdmin.open(budgets.nats!, null, reviewer);
    try {
      assert.deepEqual((await status.status(Date.now())).map((r) => r.name), ['payments-daily']);
    } finally {
      await status.close();
    }

    // operator: changes a limit.
    const admin = await NatsBudgetAdmin.open(budgets.nats!, null, nats.link('operator'));
    try {
      await admin.setLimit('payments-daily', 5000);
      assert.equal((await admin.status(Date.now()))[0]!.limit, 5000);
    } finally {
      await admin.close();
    }
  });

  /** A JetStream publish (request + ack) that the server must refuse. */
  async function refusedPublish(nc: NatsConnection, subject: string, what: string): Promise<void> {
    await assert.rejects(jetstream(nc, { timeout: 2000 }).publish(subject, enc.encode('{"forged":true}')), PERMISSION, what);
  }

  it('authz may not move the pointer, write another writer\'s log, create streams or change budgets', async () => {
    const nc = await nats.link('authz-demo').ready();
    const pointer = await new Kvm(nc).open('tollgate_policy');
    const before = await pointer.get('current');
    await assert.rejects(pointer.put('current', enc.encode('{"revision":1}')), PERMISSION, 'pointer write');
    await refusedPublish(nc, 'tollgate.decisions.default.demo.default~authz-other', "another authz's log subject");
    await refusedPublish(nc, 'tollgate.decisions.default.demo', 'a log subject without its writer token');
    await refusedPublish(nc, '$KV.tollgate_budget_config.limits', 'budget limits');
    await refusedPublish(nc, '$O.tollgate_bundles.M.current', 'bundle metadata');
    await refusedPublish(nc, '$KV.tollgate_pins.ZGVtbw.dG9vbA', 'a tool pin (approvals are the operator\'s)');
    const jsm = await jetstreamManager(nc);
    await assert.rejects(jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }), PERMISSION, 'stream create');
    await assert.rejects(jsm.streams.purge('KV_tollgate_policy'), PERMISSION, 'pointer purge');
    await assert.rejects(jsm.streams.delete('TOLLGATE_DECISIONS'), PERMISSION, 'log stream delete');
    const bundles = await new Objm(nc).open('tollgate_bundles');
    const [stored] = await bundles.list();
    await assert.rejects(bundles.delete(stored!.name), PERMISSION, 'bundle delete');
    // The server lets a reader create a push consumer with any deliver subject; what matters is
    // that its deliveries never land in a stream: not in the pointer, not in another writer's log.
    const logBefore = (await jsm.streams.info('TOLLGATE_DECISIONS')).state.messages;
    for (const deliver of ['$KV.tollgate_policy.current', 'tollgate.decisions.default.demo.default~authz-other']) {
      await jsm.consumers.add('OBJ_tollgate_bundles', { deliver_subject: deliver, deliver_policy: DeliverPolicy.All, ack_policy: AckPolicy.None }).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await jsm.streams.info('TOLLGATE_DECISIONS')).state.messages, logBefore, 'no record was injected');
    const after = await pointer.get('current');
    assert.equal(after?.revision, before?.revision, 'the pointer did not move');
  });

  it('the reviewer reads only; the operator cannot touch policy; the control plane writes no records', async () => {
    const reviewer = await nats.link('reviewer').ready();
    await refusedPublish(reviewer, '$KV.tollgate_budgets.w.payments-daily.x', 'budget usage');
    await refusedPublish(reviewer, '$KV.tollgate_policy.current', 'the pointer');
    await refusedPublish(reviewer, 'tollgate.decisions.default.demo.default~reviewer', 'a decision record');
    await assert.rejects(jetstreamManager(reviewer).then((j) => j.consumers.add('TOLLGATE_DECISIONS', {
      deliver_subject: 'tollgate.decisions.default.demo.default~authz-demo', deliver_policy: DeliverPolicy.All, ack_policy: AckPolicy.None,
    })), /permission|not (permitted|allowed)|deliver/i, 'replaying records into a writer subject');

    await refusedPublish(reviewer, '$KV.tollgate_pins.ZGVtbw.dG9vbA', 'a tool pin');

    const operator = await nats.link('operator').ready();
    // The operator writes signed pins (authz verifies them); it cannot touch policy.
    await (await new Kvm(operator).open('tollgate_pins')).put('ZGVtbw.dG9vbA', enc.encode('{}'));
    await refusedPublish(operator, '$KV.tollgate_policy.current', 'the pointer');
    await refusedPublish(operator, '$KV.tollgate_budget_config.specs', 'budget definitions');

    const cp = await nats.link('controlplane').ready();
    await refusedPublish(cp, 'tollgate.decisions.default.demo.default~authz-demo', 'a decision record');
    await refusedPublish(cp, '$KV.tollgate_budgets.w.payments-daily.x', 'budget usage');
  });

  it('refuses, with a clear error, clients without TLS, without a certificate, or with an unknown one', async () => {
    await assert.rejects(openNats({ servers: [nats.url], tls: null }, { name: 'plain', firstConnectMs: 3000 }),
      /NATS at tls:\/\/127\.0\.0\.1:\d+ .*(requires TLS|--nats-ca)/);

    // Same CA, an identity the server has no user for.
    const stranger = await nats.pki.issue('stranger', { commonName: 'stranger', uris: [spiffeId({ trustDomain: 'tollgate.local', namespace: 'default', serviceAccount: 'stranger' })], usage: 'client' });
    await assert.rejects(openNats({ servers: [nats.url], tls: { ca: stranger.ca, cert: stranger.cert, key: stranger.key } }, { name: 'stranger', firstConnectMs: 3000 }),
      /refused this client's credential/);

    // A certificate from another CA.
    const foreign = await (await LocalPki.open(join(work, 'foreign-pki'))).issue('authz', {
      commonName: 'authz', uris: [nats.creds.clients.get('authz-demo')!.spiffeId], usage: 'client',
    });
    await assert.rejects(openNats({ servers: [nats.url], tls: { ca: nats.tlsOf('authz-demo').ca, cert: foreign.cert, key: foreign.key } }, { name: 'foreign', firstConnectMs: 3000 }),
      /NATS at tls:\/\/127\.0\.0\.1:\d+/);

    // No client certificate at all (the raw client: Tollgate's own always presents one).
    await assert.rejects(connect({ servers: nats.url, tls: { caFile: nats.tlsOf('authz-demo').ca }, timeout: 3000, maxReconnectAttempts: 0 }));
  });
});
