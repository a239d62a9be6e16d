import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfigFile } from '../../../src/authz/config.js';
import { startAuthz } from '../../../src/authz/runtime.js';
import { configFromArgs } from '../../../src/cli/authz.js';
import { DEFAULT_NATS_SETTINGS, parseBudgetConfig } from '../../../src/budget/config.js';
import { publishBudgetDefinitions, usageKey } from '../../../src/budget/nats-store.js';
import { windowAt } from '../../../src/budget/window.js';
import { publishDefinitions } from '../../../src/controlplane/budget-definitions.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import {
  clusterNatsAuthorization, clusterNatsUsers, issueClusterNatsCertificates, issueSidecarNatsCertificate, sidecarNatsIdentity, SIDECAR_NATS_DIR, SIDECAR_NATS_SECRET,
} from '../../../src/k8s/nats-cluster.js';
import { NatsLink, openNats } from '../../../src/nats/connect.js';
import { identityToken } from '../../../src/nats/identity.js';
import { LocalPki, type CertFiles } from '../../../src/pki/index.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { NatsServer } from '../../../src/nats/server.js';
import { freePort } from '../../../src/util/net.js';
import { runTollgate } from '../../support/cli.js';
import { kubeTool } from '../../support/kube-cluster.js';
import { assertAuthzNatsDuties } from '../../support/authz-nats-duties.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { mcpPod } from '../../unit/k8s/fixtures.js';
import { waitFor, writePolicy } from '../controlplane/support.js';

/**
 * The NATS credential of injected authz sidecars (issue 20, security issue): one identity per
 * labelled namespace, issued by `controlplane nats-certs --sidecar-namespace`, mounted by the
 * injector where the example authz.yaml looks for it. Against a real nats-server running the
 * users the cluster's authorization.conf lists, team-a's credential does exactly what authz needs
 * (bundles, a budget lease, its decision records) and is refused the rest.
 */

const PERMISSION = /permission/i;
const enc = new TextEncoder();
const budgets = parseBudgetConfig(`
nats: {}
budgets:
  - name: team-a_daily
    scope: { team: a }
    limit: 100000
    window: day
`);

describe('the NATS credential of injected authz sidecars', function () {
  this.timeout(90_000);
  const site = { namespace: 'tollgate-system', trustDomain: 'tollgate.local' };
  let work: string;
  let server: NatsServer;
  let cpCred: CertFiles;
  let opCred: CertFiles;
  let teamA: CertFiles;
  let teamB: CertFiles;
  let keys: Awaited<ReturnType<typeof keyPair>>;
  const links: NatsLink[] = [];
  const link = (cred: CertFiles, name: string): NatsLink => {
    const l = NatsLink.open({ servers: [server.url], tls: { ca: cred.ca, cert: cred.cert, key: cred.key } }, { name });
    links.push(l);
    return l;
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-nats-sidecar-'));
    const pki = await LocalPki.open(join(work, 'pki'), site.trustDomain);
    const certs = await issueClusterNatsCertificates(pki, site, { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
    cpCred = certs.clients.get('tollgate-nats-controlplane')!;
    opCred = certs.clients.get('tollgate-nats-operator')!;
    teamA = await issueSidecarNatsCertificate(pki, site.trustDomain, 'team-a');
    teamB = await issueSidecarNatsCertificate(pki, site.trustDomain, 'team-b');
    // The users of authorization.conf for a mesh with two sidecar namespaces.
    server = await NatsServer.start({ tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.server.ca }, users: clusterNatsUsers(site, ['team-a', 'team-b']), storeDir: join(work, 'nats') });
    keys = await keyPair('EdDSA');
    const cp = await link(cpCred, 'controlplane').ready(20_000);
    await provisionStreams(cp);
    writePolicy(join(work, 'p'), ['a']);
    await (await BundlePublisher.open(cp)).publish(await readBundle(await buildPolicyBundle(join(work, 'p'))), keys.signing);
    await publishBudgetDefinitions(cp, DEFAULT_NATS_SETTINGS, budgets.budgets);
  });
  after(async () => {
    for (const l of links.splice(0)) await l.close();
    await server?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is mounted by the injector where the example authz.yaml names it, and nats-certs issues it per namespace', async () => {
    const r = injectSidecars(mcpPod());
    assert.ok(r.injected);
    const authz = r.pod.spec!.initContainers!.find((c) => c.name === 'tollgate-authz')!;
    const mount = (authz.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.mountPath === SIDECAR_NATS_DIR);
    assert.ok(mount, 'the authz sidecar mounts the NATS credential');
    const volume = r.pod.spec!.volumes!.find((v) => v.name === mount.name) as { secret?: { secretName: string } };
    assert.equal(volume.secret?.secretName, SIDECAR_NATS_SECRET);

    const example = parseAllDocuments(readFileSync(resolve('manifests', 'examples', 'authz-config.yaml'), 'utf8')).map((d) => d.toJS() as { data?: Record<string, string> })[0]!;
    const file = join(work, 'authz.yaml');
    writeFileSync(file, example.data!['authz.yaml']!);
    const cfg = loadConfigFile(file);
    assert.deepEqual(cfg.nats.tls, { ca: `${SIDECAR_NATS_DIR}/ca.crt`, cert: `${SIDECAR_NATS_DIR}/tls.crt`, key: `${SIDECAR_NATS_DIR}/tls.key` });

    const out = join(work, 'out');
    const cli = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'cli-ca'), '--out', out, '--sidecar-namespace', 'team-a', '--sidecar-namespace', 'team-b',
      '--gateway-dns', 'nats-gateway.east.example.com']);
    assert.equal(cli.code, 0, cli.stderr);
    // (multi-region) the other region checks the gateway's certificate against its load balancer's name.
    assert.match(new X509Certificate(readFileSync(join(out, 'tollgate-nats-tls', 'tls.crt'))).subjectAltName!, /DNS:nats-gateway\.east\.example\.com/);
    assert.match(cli.stdout, new RegExp(`kubectl -n team-a create secret generic ${SIDECAR_NATS_SECRET} --from-file=\\S+/sidecars/team-a/${SIDECAR_NATS_SECRET}`));
    const conf = readFileSync(join(out, 'authorization.conf'), 'utf8');
    for (const ns of ['team-a', 'team-b']) assert.ok(conf.includes(`user: "${sidecarNatsIdentity(site.trustDomain, ns)}"`), ns);
    const bad = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'cli-ca'), '--out', join(work, 'out2'), '--sidecar-namespace', 'Team_A']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--sidecar-namespace "Team_A" is not a Kubernetes namespace name/);
  });

  it('Helm nats.sidecarNamespaces renders the same users as nats-certs --sidecar-namespace', async () => {
    const h = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
      execFile(kubeTool('helm'), ['template', 'tollgate', resolve('manifests', 'helm', 'tollgate'), '--namespace', 'mesh', '--kube-version', '1.34.0',
        '--set', 'nats.sidecarNamespaces={team-a,team-b}', '--set', 'nats.trustDomain=example.org'], { maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr }));
    });
    assert.equal(h.code, 0, h.stderr);
    const cm = parseAllDocuments(h.stdout).map((d) => d.toJS() as { kind?: string; metadata?: { name: string }; data?: Record<string, string> })
      .find((o) => o?.kind === 'ConfigMap' && o.metadata?.name === 'tollgate-nats')!;
    assert.equal(cm.data!['authorization.conf'], clusterNatsAuthorization({ namespace: 'mesh', trustDomain: 'example.org' }, ['team-a', 'team-b']));
  });

  it('does what authz needs: follows signed bundles, takes a budget lease, replicates its decision records', async () => {
    await assertAuthzNatsDuties({ link: link(teamA, 'team-a sidecar'), natsUrl: server.url, verification: keys.verification, budgets, work, record: { namespace: 'team-a', server: 'weather' } });
    // The record sits on the subject of team-a's sidecar identity (stream info lists subjects).
    const info = await (await jetstreamManager(await link(cpCred, 'cp').ready())).streams.info('TOLLGATE_DECISIONS', { subjects_filter: 'tollgate.decisions.team-a.>' });
    assert.deepEqual(Object.keys(info.state.subjects ?? {}).filter((s) => !s.includes('._anchors.')), [`tollgate.decisions.team-a.weather.${identityToken(sidecarNatsIdentity(site.trustDomain, 'team-a'))}`]);
  });

  it('is refused everything else: bundles, the pointer, budget limits and definitions, pins, streams, team-b\'s records', async () => {
    const nc: NatsConnection = await link(teamA, 'team-a sidecar').ready();
    const refused = async (subject: string, what: string): Promise<void> => {
      await assert.rejects(jetstream(nc, { timeout: 2000 }).publish(subject, enc.encode('{"forged":true}')), PERMISSION, what);
    };
    await refused('$O.tollgate_bundles.M.current', 'bundle metadata');
    await refused('$O.tollgate_bundles.C.forged', 'a bundle chunk');
    await refused('$KV.tollgate_policy.current', 'the pointer');
    await refused('$KV.tollgate_policy.mcppolicy.team-b.p', 'another namespace\'s policy pointer');
    await refused('$KV.tollgate_budget_config.limits', 'budget limits');
    await refused('$KV.tollgate_budget_config.definitions', 'budget definitions');
    await refused('$KV.tollgate_budget_config.specs', 'budget specs');
    await refused('$KV.tollgate_pins.ZGVtbw.dG9vbA', 'a tool pin');
    const teamBToken = identityToken(sidecarNatsIdentity(site.trustDomain, 'team-b'));
    await refused(`tollgate.decisions.team-b.weather.${teamBToken}`, 'a record as team-b\'s sidecars');
    await refused('tollgate.decisions.team-a.weather', 'a record without its writer token');
    const jsm = await jetstreamManager(nc);
    await assert.rejects(jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }), PERMISSION, 'stream create');
    await assert.rejects(jsm.streams.purge('OBJ_tollgate_bundles'), PERMISSION, 'bundle purge');
    await assert.rejects(jsm.streams.delete('TOLLGATE_DECISIONS'), PERMISSION, 'log stream delete');
    // team-b's own credential writes its own records, on its own subjects.
    const b = await link(teamB, 'team-b sidecar').ready();
    assert.ok((await jetstream(b).publish(`tollgate.decisions.team-b.weather.${teamBToken}`, enc.encode('{}'))).seq > 0);
    // A namespace nobody listed has no user: its certificate from the same CA is refused.
    const pki = await LocalPki.open(join(work, 'pki'), site.trustDomain);
    const stranger = await issueSidecarNatsCertificate(pki, site.trustDomain, 'team-c');
    await assert.rejects(openNats({ servers: [server.url], tls: { ca: stranger.ca, cert: stranger.cert, key: stranger.key } }, { name: 'team-c', firstConnectMs: 3000 }),
      /refused this client's credential/);
    // Pointer unchanged by any of it.
    const pointer = await new Kvm(await link(cpCred, 'cp').ready()).open('tollgate_policy');
    assert.equal(JSON.parse((await pointer.get('current'))!.string()).revision, 1);
  });

  it('writes its own namespace\'s and mesh-wide budget usage keys, and is refused team-b\'s and old-style keys', async () => {
    const day = windowAt('day', 'UTC', Date.now()).key;
    const kvOf = async (cred: CertFiles, name: string): Promise<KV> => new Kvm(jetstream(await link(cred, name).ready(), { timeout: 2000 })).open('tollgate_budgets');
    const a = await kvOf(teamA, 'team-a sidecar');
    const mine = usageKey('team-a_daily', day, 'team-a');
    const meshWide = usageKey('all_daily', day);
    const theirs = usageKey('team-b_daily', day, 'team-b');
    assert.equal(mine, `w.team-a.team-a_daily.${day}`);
    assert.equal(meshWide, `w._.all_daily.${day}`);
    assert.ok(await a.put(mine, '{"used":1,"leases":{}}') > 0);
    assert.ok(await a.put(meshWide, '{"used":1,"leases":{}}') > 0);
    // team-b's key holds real spend; team-a can neither inflate it nor reset it.
    const b = await kvOf(teamB, 'team-b sidecar');
    await b.put(theirs, '{"used":5000,"leases":{}}');
    await assert.rejects(a.put(theirs, '{"used":999999999,"leases":{}}'), PERMISSION, 'inflating team-b\'s usage');
    await assert.rejects(a.put(theirs, '{"used":0,"leases":{}}'), PERMISSION, 'resetting team-b\'s usage');
    await assert.rejects(a.delete(theirs), PERMISSION, 'deleting team-b\'s usage');
    await assert.rejects(a.put(`w.team-b_daily.${day}`, '{"used":0,"leases":{}}'), PERMISSION, 'an old-style key (read once to carry usage over)');
    await assert.rejects(a.put(`w.team-b.x.${day}.extra`, '{}'), PERMISSION, 'a key of another shape');
    assert.equal(JSON.parse((await b.get(theirs))!.string()).used, 5000);
    // team-b's sidecar, in turn, cannot touch team-a's.
    await assert.rejects(b.put(mine, '{"used":0,"leases":{}}'), PERMISSION, 'team-b resetting team-a');
  });
  it('authz started with the injector\'s args applies only its namespace\'s published budgets, and charges them with its credential', async () => {
    const day = windowAt('day', 'UTC', Date.now()).key;
    const tokenBudget = (ns: string) => ({ name: `${ns}_hourly`, scope: {}, limit: 100000, window: 'day' as const, timezone: 'UTC', action: 'deny' as const, tokenizer: 'o200k_base' as const, namespace: ns });
    // As the operator publishes TokenBudgets of two namespaces (with its own credential).
    await publishDefinitions(await new Kvm(await link(opCred, 'operator').ready()).open('tollgate_budget_config'), [tokenBudget('team-a'), tokenBudget('team-b')]);
    // The args the injector gives the authz sidecar of a pod created in team-a, with the config
    // path moved to this machine.
    const pod = mcpPod();
    pod.metadata!.namespace = 'team-a';
    const r = injectSidecars(pod);
    assert.ok(r.injected);
    const injected = r.pod.spec!.initContainers!.find((c) => c.name === 'tollgate-authz')!.args as string[];
    assert.deepEqual(injected.slice(-2), ['--budget-namespace', 'team-a']);
    const dir = join(work, 'authz-team-a');
    mkdirSync(dir);
    const verification = join(dir, 'verification.pem');
    writeFileSync(verification, keys.verification.key.export({ type: 'spki', format: 'pem' }));
    // The namespace's budgets file says nothing of namespaces: the injected flag does.
    writeFileSync(join(dir, 'budgets.yaml'), 'nats:\n  definitions: true\n');
    const port = await freePort();
    const authzYaml = (budgets: string): string => {
      const f = join(dir, `authz-${budgets}`);
      writeFileSync(f, stringify({
        listen: `127.0.0.1:${port}`, state_dir: join(dir, 'state'), decision_log_dir: null, budgets_file: join(dir, budgets),
        nats: { url: server.url, ca_file: teamA.ca, cert_file: teamA.cert, key_file: teamA.key },
        policy: { from_nats: true, verification_key: verification },
        identity: { issuer: issuer.url },
      }));
      return f;
    };
    const issuer = await DevIssuer.start({ port: 0, stateDir: join(dir, 'issuer') });
    const args = injected.slice(1).map((a) => (a === '/etc/tollgate/authz.yaml' ? authzYaml('budgets.yaml') : a));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => { lines.push(l); } });
    const authz = await startAuthz(configFromArgs(args)!, logger);
    try {
      const applied = (): { budgets: number } | undefined => lines.map((l) => JSON.parse(l) as { msg: string; budgets: number }).find((l) => l.msg === 'budget definitions from NATS applied');
      await waitFor(() => applied() !== undefined, 'the published definitions applied', () => lines.slice(-5));
      // The policy arrives over NATS on its own: a call made before it is refused before any lease
      // is taken (fail closed), so wait for it too.
      await waitFor(() => lines.some((l) => (JSON.parse(l) as { msg: string }).msg === 'policy loaded'), 'the policy loaded', () => lines.slice(-5));
      assert.equal(applied()!.budgets, 1, 'team-a\'s TokenBudget only, not team-b\'s');
      // A caller's first call leases team-a's budget under team-a's key, which its credential may
      // write (the call itself is the policy's to judge; the lease comes first).
      const token = await issuer.mint({ sub: 'alice', team: 'payments', audience: 'http://127.0.0.1:10000/mcp', ttlSec: 600 });
      const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a', arguments: {} } }));
      await authz.authorizer.check({
        id: 'r1', method: 'POST', path: '/mcp', query: '', host: '127.0.0.1:10000', scheme: 'http', protocol: 'HTTP/1.1',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body, truncated: false,
        context: { server: 'weather', namespace: 'team-a' }, source: { address: '127.0.0.1', principal: '' }, destination: { address: '127.0.0.1', principal: '' }, traceId: null,
      });
      const kv = await new Kvm(jetstream(await link(teamA, 'team-a reader').ready(), { timeout: 2000 })).open('tollgate_budgets');
      await waitFor(async () => (await kv.get(usageKey('team-a_hourly', day, 'team-a')))?.operation === 'PUT', 'team-a\'s usage key written', () => lines.slice(-5));
      assert.equal(await kv.get(usageKey('team-b_hourly', day, 'team-b')), null, 'team-b\'s budget is not this sidecar\'s');
      assert.ok(!lines.some((l) => PERMISSION.test(l)), 'no write was refused');
    } finally {
      await authz.close();
      await issuer.close();
    }
    // A budgets file naming another namespace is refused at start, with both names.
    writeFileSync(join(dir, 'budgets-b.yaml'), 'nats:\n  definitions: true\n  namespace: team-b\n');
    const wrong = injected.slice(1).map((a) => (a === '/etc/tollgate/authz.yaml' ? authzYaml('budgets-b.yaml') : a));
    await assert.rejects(startAuthz(configFromArgs(wrong)!, logger), /nats\.namespace: is "team-b", but this authz serves namespace "team-a" \(--budget-namespace\)/);
  });
});
