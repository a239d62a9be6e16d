import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLUSTER_NATS_CLIENTS, clusterNatsAuthorization, NATS_SERVER_SECRET } from '../../../src/k8s/nats-cluster.js';
import { runTollgate } from '../../support/cli.js';
import { applyAll, kubeTool, sharedKubeCluster } from '../../support/kube-cluster.js';

/**
 * `tollgate controlplane nats-certs`: the Secrets the NATS cluster of the manifests mounts, from the
 * mesh CA, created in a real kube-apiserver with the kubectl commands it prints.
 */

function kubectl(kubeconfig: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(kubeTool('kubectl'), ['--kubeconfig', kubeconfig, ...args], (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

describe('tollgate controlplane nats-certs', function () {
  this.timeout(120_000);
  let work: string;
  before(() => { work = mkdtempSync(join(tmpdir(), 'tollgate-nats-certs-')); });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('issues the server and per-component certificates from the mesh CA, and its kubectl commands create the Secrets', async () => {
    const out = join(work, 'out');
    const r = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'ca'), '--out', out, '--namespace', 'nats-certs-cli', '--trust-domain', 'example.org']);
    assert.equal(r.code, 0, r.stderr);
    const ca = new X509Certificate(readFileSync(join(work, 'ca', 'ca.crt')));
    const cert = (secret: string): X509Certificate => new X509Certificate(readFileSync(join(out, secret, 'tls.crt')));
    const server = cert(NATS_SERVER_SECRET);
    assert.ok(server.checkIssued(ca));
    assert.match(server.subjectAltName!, /DNS:\*\.tollgate-nats-headless\.nats-certs-cli\.svc/);
    assert.match(server.subjectAltName!, /URI:spiffe:\/\/example\.org\/ns\/nats-certs-cli\/sa\/tollgate-nats/);
    for (const c of CLUSTER_NATS_CLIENTS) {
      const x = cert(c.secret);
      assert.ok(x.checkIssued(ca), c.secret);
      assert.equal(x.subjectAltName, `URI:spiffe://example.org/ns/nats-certs-cli/sa/${c.serviceAccount}`);
      assert.equal(statSync(join(out, c.secret, 'tls.key')).mode & 0o077, 0, 'keys are private');
    }
    assert.equal(readFileSync(join(out, 'authorization.conf'), 'utf8'), clusterNatsAuthorization({ namespace: 'nats-certs-cli', trustDomain: 'example.org' }));
    const commands = r.stdout.split('\n').filter((l) => l.trim().startsWith('kubectl '));
    assert.equal(commands.length, 1 + CLUSTER_NATS_CLIENTS.length);

    const cluster = await sharedKubeCluster();
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'nats-certs-cli' } }]);
    await kubectl(cluster.kubeconfigPath, ['-n', 'nats-certs-cli', 'delete', 'secret', '--all']);
    for (const line of commands) {
      const args = line.trim().split(/\s+/).slice(1);
      const k = await kubectl(cluster.kubeconfigPath, args);
      assert.equal(k.code, 0, `${line}: ${k.stderr}`);
    }
    const got = await kubectl(cluster.kubeconfigPath, ['-n', 'nats-certs-cli', 'get', 'secret', NATS_SERVER_SECRET, '-o', 'json']);
    assert.deepEqual(Object.keys((JSON.parse(got.stdout) as { data: Record<string, string> }).data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  });

  it('refuses what cannot work and does not overwrite without --force', async () => {
    const bad = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'ca'), '--out', join(work, 'x'), '--namespace', 'Not_A_Namespace']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--namespace "Not_A_Namespace" is not a Kubernetes namespace name/);
    const noCa = await runTollgate(['controlplane', 'nats-certs', '--out', join(work, 'x')]);
    assert.match(noCa.stderr, /--ca-dir DIR is required/);
    const again = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'ca'), '--out', join(work, 'out')]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists; pass --force to overwrite it/);
    const badRegion = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'ca'), '--out', join(work, 'y'), '--budget-regions', 'east,eu west']);
    assert.equal(badRegion.code, 2);
    assert.match(badRegion.stderr, /--budget-regions: "eu west" is not a region name/);
  });

  it('--budget-regions: authorization.conf grants every user the same rights on each region\'s usage bucket', async () => {
    const out = join(work, 'regions');
    const r = await runTollgate(['controlplane', 'nats-certs', '--ca-dir', join(work, 'ca'), '--out', out, '--namespace', 'mesh', '--sidecar-namespace', 'team-a', '--budget-regions', 'east,west']);
    assert.equal(r.code, 0, r.stderr);
    const conf = readFileSync(join(out, 'authorization.conf'), 'utf8');
    assert.equal(conf, clusterNatsAuthorization({ namespace: 'mesh', trustDomain: 'tollgate.local', budgetRegions: ['east', 'west'] }, ['team-a']));
    assert.match(conf, /"\$KV\.tollgate_budgets_east\.w\.team-a\.\*\.\*"/);
    assert.match(conf, /"\$JS\.API\.STREAM\.CREATE\.KV_tollgate_budgets_west"/);
  });
});
