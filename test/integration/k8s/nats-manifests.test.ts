import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../../../src/authz/config.js';
import { startAuthz } from '../../../src/authz/runtime.js';
import { generateSigningKeyPair } from '../../../src/bundle/keys.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import type { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { CLUSTER_NATS_CLIENTS, issueClusterNatsCertificates, natsSeedUrls, clusterNatsAuthorization, type ClusterNatsCertificates } from '../../../src/k8s/nats-cluster.js';
import { NatsLink } from '../../../src/nats/connect.js';
import { serverSideApply, type ObjectRef } from '../../../src/operator/kube-rest.js';
import { LocalPki, spiffeId, type CertFiles } from '../../../src/pki/index.js';
import { freePort, waitForPort } from '../../../src/util/net.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { toolPath } from '../../../src/util/tools.js';
import { RunningCli } from '../../support/cli.js';
import { loopbackNatsArgs, loopbackNatsConf, loopbackSeeds } from '../../support/nats-loopback-conf.js';
import { writePolicy } from '../controlplane/support.js';
import { applyAll, kubeTool, sharedKubeCluster } from '../../support/kube-cluster.js';

/**
 * Issue 20, last bullet: the NATS the manifests deploy is a cluster. What kustomize and helm render
 * is accepted by a real kube-apiserver, and the nats.conf and authorization.conf of the shipped
 * ConfigMap, run by three real nats-servers (only ports, routes and paths moved to loopback), form
 * a cluster over TLS routes on which the control plane's credential creates the streams with three
 * replicas, and an authz credential keeps reading and writing after a server is killed.
 */

type Obj = Record<string, unknown> & { kind: string; apiVersion: string; metadata: { name: string; namespace?: string } };

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(bin, args, { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const docs = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((o) => o && o.kind);
const id = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(200);
  }
}

async function httpJson(url: string): Promise<Record<string, unknown>> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return (await r.json()) as Record<string, unknown>;
}

interface Member { name: string; clientPort: number; httpPort: number; proc: ManagedProcess }

describe('the NATS cluster of the manifests and the Helm chart', function () {
  this.timeout(120_000);
  let base: Obj[];

  before(async () => {
    const k = await run(kubeTool('kustomize'), ['build', resolve('manifests', 'base')]);
    assert.equal(k.code, 0, k.stderr);
    base = docs(k.stdout);
  });

  it('kustomize base, and Helm with 5 servers and required anti-affinity, are accepted by a real kube-apiserver', async () => {
    const cluster = await sharedKubeCluster();
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tollgate-system' } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'nats-helm' } }]);
    const h = await run(kubeTool('helm'), ['template', 'tollgate', resolve('manifests', 'helm', 'tollgate'), '--namespace', 'nats-helm', '--kube-version', '1.34.0',
      '--set', 'nats.replicas=5', '--set', 'nats.antiAffinity=required', '--set', 'nats.trustDomain=example.org']);
    assert.equal(h.code, 0, h.stderr);
    const helm = docs(h.stdout);
    const sts = helm.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'tollgate-nats')!;
    assert.equal((sts.spec as { replicas: number }).replicas, 5);
    const affinity = (sts.spec as { template: { spec: { affinity: { podAntiAffinity: Record<string, unknown> } } } }).template.spec.affinity.podAntiAffinity;
    assert.deepEqual(Object.keys(affinity), ['requiredDuringSchedulingIgnoredDuringExecution']);
    const cm = helm.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tollgate-nats')!.data as Record<string, string>;
    assert.equal(cm['authorization.conf'], clusterNatsAuthorization({ namespace: 'nats-helm', trustDomain: 'example.org' }));
    assert.equal(cm['nats.conf']!.match(/nats-route:\/\/tollgate-nats-\d\.tollgate-nats-headless\.nats-helm\.svc:6222/g)?.length, 5);
    assert.match(cm['nats.conf']!, /user: "spiffe:\/\/example\.org\/ns\/nats-helm\/sa\/tollgate-nats"/);
    const cp = helm.find((o) => o.kind === 'Deployment' && o.metadata.name === 'tollgate-controlplane')!;
    const args = (cp.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    assert.equal(args[args.indexOf('--nats') + 1], natsSeedUrls('nats-helm', 5).join(','));
    assert.equal(args[args.indexOf('--replicas') + 1], '5');
    const bad = await run(kubeTool('helm'), ['template', 'tollgate', resolve('manifests', 'helm', 'tollgate'), '--kube-version', '1.34.0', '--set', 'nats.antiAffinity=soft']);
    assert.match(bad.stderr, /nats.antiAffinity must be preferred or required, not "soft"/);

    const objs = [...base.filter((o) => o.kind !== 'CustomResourceDefinition' && o.kind !== 'Namespace'), ...helm.filter((o) => o.kind !== 'CustomResourceDefinition')];
    for (const o of objs) {
      await serverSideApply(cluster.kc, o as unknown as ObjectRef, 'tollgate-tests', { dryRun: true }).catch((e: Error) => assert.fail(`${id(o)}: ${e.message}`));
    }
    assert.ok(objs.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'tollgate-nats'));
  });

  describe('the shipped nats.conf, run by three real nats-servers on loopback', () => {
    const site = { namespace: 'tollgate-system', trustDomain: 'tollgate.local' };
    let work: string;
    let pki: LocalPki;
    let certs: ClusterNatsCertificates;
    let tlsDir: string;
    const members: Member[] = [];
    const routePorts: number[] = [];
    const links: NatsLink[] = [];
    const extra: ManagedProcess[] = [];
    const clis: RunningCli[] = [];

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'tollgate-nats-manifests-'));
      pki = await LocalPki.open(join(work, 'pki'), site.trustDomain);
      // The Secret tollgate-nats-tls, as the manifests mount it (tls.crt, tls.key, ca.crt); the
      // loopback names stand in for the pods' DNS names, which the certificate also carries.
      certs = await issueClusterNatsCertificates(pki, site, { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
      tlsDir = join(work, 'tls');
      mkdirSync(tlsDir);
      copyFileSync(certs.server.cert, join(tlsDir, 'tls.crt'));
      copyFileSync(certs.server.key, join(tlsDir, 'tls.key'));
      copyFileSync(certs.server.ca, join(tlsDir, 'ca.crt'));

      const cm = base.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tollgate-nats')!.data as Record<string, string>;
      const replicas = (base.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'tollgate-nats')!.spec as { replicas: number }).replicas;
      assert.equal(replicas, 3);
      const ports = [];
      for (let i = 0; i < replicas; i++) {
        ports.push({ clientPort: await freePort(), httpPort: await freePort(), routePort: await freePort() });
        routePorts.push(ports[i]!.routePort);
      }
      const started = await Promise.all(ports.map(async (p, i) => {
        const dir = join(work, `n${i}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'nats.conf'), loopbackNatsConf(cm['nats.conf']!, { ...p, routePorts, storeDir: join(dir, 'jetstream'), pidFile: join(dir, 'nats.pid'), tlsDir }));
        writeFileSync(join(dir, 'authorization.conf'), cm['authorization.conf']!);
        const name = `tollgate-nats-${i}`;
        // server_name is $POD_NAME, from the downward API in the StatefulSet.
        const proc = await ManagedProcess.start(name, toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], {
          env: { ...process.env, POD_NAME: name }, ready: () => waitForPort(p.clientPort, '127.0.0.1', 20_000), timeoutMs: 30_000,
        });
        return { name, clientPort: p.clientPort, httpPort: p.httpPort, proc };
      }));
      members.push(...started);
    });

    after(async () => {
      for (const c of clis.splice(0)) await c.stop();
      for (const l of links.splice(0)) await l.close();
      for (const p of [...extra, ...members.map((m) => m.proc)]) await p.stop().catch(() => undefined);
      if (work) rmSync(work, { recursive: true, force: true });
    });

    const containerArgs = (deployment: string): string[] => {
      const d = base.find((o) => o.kind === 'Deployment' && o.metadata.name === deployment);
      assert.ok(d, deployment);
      return (d.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    };
    const credential = (secret: string): CertFiles => {
      const c = certs.clients.get(secret);
      assert.ok(c, `no credential ${secret}`);
      return c;
    };
    const link = (secret: string): NatsLink => {
      // Every member's URL, as the manifests give clients every seed.
      const l = NatsLink.open({ servers: members.map((m) => `tls://127.0.0.1:${m.clientPort}`), tls: credential(secret) }, { name: `test ${secret}` });
      links.push(l);
      return l;
    };
    /** Names of the servers a member has routes to (route pooling opens several connections each). */
    const routedTo = async (m: Member): Promise<string[]> => {
      const routes = ((await httpJson(`http://127.0.0.1:${m.httpPort}/routez`)).routes ?? []) as { remote_name?: string }[];
      return [...new Set(routes.map((r) => r.remote_name ?? ''))].sort();
    };

    it('form one cluster over TLS routes; the shipped control plane flags create R3 streams; authz keeps serving after the stream leader is killed', async () => {
      await eventually('every server routed to the other two', async () => {
        for (const m of members) if ((await routedTo(m)).length !== members.length - 1) return undefined;
        return true;
      });
      // The real control plane, with the NATS flags of the shipped Deployment (every seed, its
      // credential, --replicas 3), moved to loopback; it creates the streams and publishes.
      const policies = join(work, 'policies');
      writePolicy(policies, ['search_docs']);
      const keyFile = join(work, 'signing.pem');
      const keys = await generateSigningKeyPair('EdDSA');
      writeFileSync(keyFile, keys.privatePem, { mode: 0o600 });
      const cpCred = credential('tollgate-nats-controlplane');
      const cpArgs = loopbackNatsArgs(containerArgs('tollgate-controlplane'), { clientPorts: members.map((m) => m.clientPort), ...cpCred });
      assert.deepEqual(cpArgs.slice(-2), ['--replicas', '3']);
      const serve = new RunningCli(['controlplane', 'serve', '--no-xds', '--policies', policies, '--signing-key', keyFile, '--state', join(work, 'cp-state'), ...cpArgs]);
      clis.push(serve);
      await serve.waitFor(/published revision 1 /, 90_000);
      const cp = await link('tollgate-nats-controlplane').ready(20_000);
      const jsm = await jetstreamManager(cp);
      for (const stream of ['KV_tollgate_policy', 'OBJ_tollgate_bundles', 'KV_tollgate_budget_config', 'TOLLGATE_DECISIONS']) {
        assert.equal((await jsm.streams.info(stream)).config.num_replicas, 3, stream);
      }

      // The shared authz, from the shipped authz.yaml (every seed, its credential, bundles from
      // NATS): only listen address, state directory and file paths moved to this machine.
      const authzFile = join(work, 'authz.yaml');
      writeFileSync(authzFile, (base.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tollgate-authz')!.data as Record<string, string>)['authz.yaml']!);
      const cfg = loadConfigFile(authzFile);
      const authzCred = credential('tollgate-nats-authz');
      assert.equal(cfg.nats.tls?.cert, '/etc/tollgate-nats/tls.crt', 'the shipped config names the mounted credential');
      cfg.nats.url = loopbackSeeds(cfg.nats.url ?? '', members.map((m) => m.clientPort), 'nats.url');
      cfg.nats.tls = { ca: authzCred.ca, cert: authzCred.cert, key: authzCred.key };
      cfg.listen = { host: '127.0.0.1', port: await freePort() };
      cfg.metricsListen = null;
      cfg.stateDir = join(work, 'authz-state');
      mkdirSync(cfg.stateDir);
      const verification = join(work, 'verification.pem');
      writeFileSync(verification, keys.publicPem);
      cfg.policy.nats!.verificationKey = verification;
      const authzRun = await startAuthz(cfg);
      try {
        assert.equal(await (authzRun.source as NatsBundleSource).whenLoaded(), '1', 'the shared authz loads the published bundle over the cluster');
      } finally {
        await authzRun.close();
      }
      await serve.stop();
      const info = await jsm.streams.info('KV_tollgate_budgets');
      assert.equal(info.config.num_replicas, 3);
      assert.equal((info.cluster?.replicas ?? []).length, 2, 'a leader and two followers');

      const authz = await link('tollgate-nats-authz').ready(20_000);
      const kv = await new Kvm(authz).open('tollgate_budgets');
      await kv.put('w.team-b.team-b_daily.2026-12-05', '7');
      const before = await kv.put('w.team-a.team-a_daily.2026-12-05', '41');
      const leader = (await jsm.streams.info('KV_tollgate_budgets')).cluster?.leader;
      const victim = members.find((m) => m.name === leader);
      assert.ok(victim, `the stream leader ${String(leader)} is one of the three`);
      victim.proc.kill('SIGKILL');
      await victim.proc.exited;

      const t0 = Date.now();
      // Writes and reads continue on the two servers left, under the same credential.
      const rev = await eventually('a write after the kill', async () => kv.put('w.team-a.team-a_daily.2026-12-05', '42'));
      const failoverMs = Date.now() - t0;
      assert.equal(rev, before + 1, 'the write after the kill follows the one before it: nothing lost, nothing doubled');
      assert.equal((await kv.get('w.team-a.team-a_daily.2026-12-05'))?.string(), '42');
      assert.equal((await kv.get('w.team-b.team-b_daily.2026-12-05'))?.string(), '7', 'a write from before the kill survived');
      const after = await eventually('a new stream leader', async () => {
        const i = await jsm.streams.info('KV_tollgate_budgets');
        return i.cluster?.leader && i.cluster.leader !== leader ? i : undefined;
      });
      // The authz credential still cannot do what it may not, on the cluster too.
      await assert.rejects(kv.history({ key: 'w.team-a.team-a_daily.2026-12-05' }), /Permissions Violation/);
      // The operator's credential does its job on the cluster too: it publishes budget definitions,
      // and nothing it may not (the budget limits).
      const opCred = credential('tollgate-nats-operator');
      const opArgs = loopbackNatsArgs(containerArgs('tollgate-operator'), { clientPorts: members.map((m) => m.clientPort), ...opCred });
      assert.equal(opArgs[opArgs.indexOf('--nats-cert') + 1], opCred.cert, 'the operator mounts its own credential');
      const op = await link('tollgate-nats-operator').ready(20_000);
      const config = await new Kvm(op).open('tollgate_budget_config');
      // (Its stream may be electing a leader of its own after the kill: retried like the write above.)
      assert.ok((await eventually('definitions published after the kill', async () => config.put('definitions', '[]'))) > 0);
      await assert.rejects(config.put('limits', '{}'), /Permissions Violation|timeout/i);
      console.log(`      (leader ${String(leader)} killed; first write after it ${failoverMs} ms later; new leader ${after.cluster?.leader})`);
    });

    it('a mesh certificate that is not the NATS servers\' identity cannot join as a route', async () => {
      const alive = members.find((m) => m.proc.running)!;
      const before = await routedTo(alive);
      // A server holding another component's certificate from the same CA (usage both, so it can
      // dial and be dialled): the shipped cluster authorization maps it to no route user.
      const authzId = spiffeId({ trustDomain: site.trustDomain, namespace: site.namespace, serviceAccount: CLUSTER_NATS_CLIENTS.find((c) => c.role === 'authz')!.serviceAccount });
      const impostor = await pki.issue('impostor', { commonName: 'impostor', uris: [authzId], ips: ['127.0.0.1'], usage: 'both' });
      const dir = join(work, 'impostor');
      mkdirSync(dir);
      const port = await freePort();
      const aliveRoute = routePorts[members.indexOf(alive)]!;
      writeFileSync(join(dir, 'nats.conf'), [
        'server_name: impostor', `listen: "127.0.0.1:${port}"`,
        'cluster {', '  name: tollgate', `  listen: "127.0.0.1:${await freePort()}"`, `  routes: ["nats-route://127.0.0.1:${aliveRoute}"]`,
        `  tls { cert_file: "${impostor.cert}", key_file: "${impostor.key}", ca_file: "${impostor.ca}", timeout: 3 }`, '}', '',
      ].join('\n'));
      const proc = await ManagedProcess.start('impostor', toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], { ready: () => waitForPort(port, '127.0.0.1', 20_000) });
      extra.push(proc);
      // The member answers the impostor's route with an authorization error and closes it.
      await eventually('the route refused', async () => (/Route Error 'Authorization Violation'/.test(proc.output) ? true : undefined), 30_000);
      assert.deepEqual(await routedTo(alive), before, 'no route to the impostor');
      assert.ok(!(await routedTo(alive)).includes('impostor'));
    });
    it('Helm nats.replicas=1 renders one server without a cluster block, and it serves JetStream', async () => {
      const h = await run(kubeTool('helm'), ['template', 'tollgate', resolve('manifests', 'helm', 'tollgate'), '--namespace', 'tollgate-system', '--kube-version', '1.34.0', '--set', 'nats.replicas=1']);
      assert.equal(h.code, 0, h.stderr);
      const objs = docs(h.stdout);
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tollgate-nats')!.data as Record<string, string>;
      // Measured: with a cluster block a lone server waits for peers and never elects a meta leader.
      assert.doesNotMatch(cm['nats.conf']!, /^ *cluster \{/m);
      const cpArgs = (objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'tollgate-controlplane')!.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
      const p = { clientPort: await freePort(), httpPort: await freePort(), routePort: 0 };
      const args = loopbackNatsArgs(cpArgs, { clientPorts: [p.clientPort], ...credential('tollgate-nats-controlplane') });
      assert.deepEqual(args.slice(-2), ['--replicas', '1']);
      const dir = join(work, 'single');
      mkdirSync(dir);
      writeFileSync(join(dir, 'nats.conf'), loopbackNatsConf(cm['nats.conf']!, { ...p, routePorts: [], storeDir: join(dir, 'jetstream'), pidFile: join(dir, 'nats.pid'), tlsDir }));
      writeFileSync(join(dir, 'authorization.conf'), cm['authorization.conf']!);
      extra.push(await ManagedProcess.start('single', toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], {
        env: { ...process.env, POD_NAME: 'tollgate-nats-0' }, ready: () => waitForPort(p.clientPort, '127.0.0.1', 20_000), timeoutMs: 30_000,
      }));
      const l = NatsLink.open({ servers: [args[1]!], tls: credential('tollgate-nats-controlplane') }, { name: 'single' });
      links.push(l);
      const nc = await l.ready(20_000);
      await eventually('streams created with 1 replica', async () => { await provisionStreams(nc, () => undefined, 1); return true; }, 30_000);
      assert.equal((await (await jetstreamManager(nc)).streams.info('KV_tollgate_budgets')).config.num_replicas, 1);
    });
  });
});
