import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseWebhookArgs } from '../../../src/cli/inject.js';
import { UsageError } from '../../../src/cli/types.js';
import type { KubeObject, PodLike } from '../../../src/k8s/types.js';
import { freePort, waitForPort } from '../../../src/util/net.js';
import { envoyBootstrap, initContainer, mcpPod, podCreateReview } from '../../unit/k8s/fixtures.js';

const MAIN = join(process.cwd(), 'src', 'cli', 'main.ts');

interface Run { code: number | null; stdout: string; stderr: string }

function tollgate(args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const INPUT = `# Everything one team deploys.
apiVersion: v1
kind: Namespace
metadata:
  name: mcp-demo
  labels: {tollgate.dev/inject: enabled}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: notes, namespace: mcp-demo}
spec:
  serviceName: notes
  selector: {matchLabels: {app.kubernetes.io/name: notes}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: notes}
      annotations: {tollgate.dev/mcp-port: "9100"}
    spec:
      containers:
        - name: notes
          image: example/notes:2
          ports: [{name: mcp, containerPort: 3000}]
---
apiVersion: v1
kind: Service
metadata: {name: notes, namespace: mcp-demo}   # kept exactly as written
spec: {ports: [{port: 80, targetPort: 9100}], selector: {app.kubernetes.io/name: notes}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly-sync, namespace: mcp-demo}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {tollgate.dev/inject: "false"}
        spec:
          restartPolicy: OnFailure
          containers: [{name: sync, image: example/sync:1}]
`;

function templateOf(doc: KubeObject): PodLike {
  return (doc.spec as { template: PodLike }).template;
}

describe('tollgate inject (CLI, integration)', function () {
  this.timeout(60000);
  let dir: string;

  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-inject-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('injects a multi-document file into -o, preserving the documents it does not touch', async () => {
    const input = join(dir, 'in.yaml');
    const output = join(dir, 'out.yaml');
    writeFileSync(input, INPUT);
    const r = await tollgate(['inject', '-f', input, '-o', output]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /injected StatefulSet notes: server notes, MCP on :9100\/mcp -> :3000, authz sidecar/);
    assert.match(r.stderr, /skipped +CronJob nightly-sync: opted out/);

    const text = readFileSync(output, 'utf8');
    const inDocs = INPUT.split(/^---\n/m);
    const outDocs = text.split(/^---\n/m);
    assert.equal(outDocs.length, 4);
    assert.equal(outDocs[0], inDocs[0]);
    assert.equal(outDocs[2], inDocs[2]);
    assert.equal(outDocs[3], inDocs[3]);

    const parsed = parseAllDocuments(text);
    assert.ok(Array.isArray(parsed));
    for (const d of parsed) assert.deepEqual(d.errors, []);
    const sts = parsed[1]!.toJS() as KubeObject;
    const pod = templateOf(sts);
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
    const node = envoyBootstrap(initContainer(pod, 'tollgate-envoy')).node as { id: string; metadata: Record<string, string> };
    assert.equal(node.id, 'mcp-demo/notes-');
    assert.equal(node.metadata.upstream_port, '3000');
    assert.equal(node.metadata.mcp_port, '9100');
  });

  it('reads standard input and writes standard output, with --no-authz, --controlplane and image flags', async () => {
    const r = await tollgate(['inject', '-f', '-', '--no-authz', '--controlplane', 'cp.mesh.internal:18001', '--envoy-image', 'mirror.local/envoy:v1.40.0'], INPUT);
    assert.equal(r.code, 0, r.stderr);
    const pod = templateOf(parseAllDocuments(r.stdout)[1]!.toJS() as KubeObject);
    assert.deepEqual(pod.spec!.initContainers!.map((c) => [c.name, c.image]), [['tollgate-envoy', 'mirror.local/envoy:v1.40.0']]);
    assert.equal(pod.spec!.volumes, undefined);
    const boot = envoyBootstrap(initContainer(pod, 'tollgate-envoy'));
    assert.match(JSON.stringify(boot.static_resources), /"address":"cp\.mesh\.internal","port_value":18001/);
    assert.equal((boot.node as { metadata: Record<string, string> }).metadata.authz_address, 'tollgate-authz.tollgate-system.svc:9191');
  });

  it('documents every flag in --help', async () => {
    const r = await tollgate(['inject', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['-f, --filename', '-o, --output', '--namespace', '--controlplane', '--envoy-image', '--authz-image', '--no-authz', '--shared-authz', 'webhook', '--cert', '--key', '--listen', '--failure-policy', '--reload-interval']) {
      assert.ok(r.stdout.includes(flag), `--help mentions ${flag}`);
    }
    const w = await tollgate(['inject', 'webhook', '--help']);
    assert.equal(w.code, 0);
    assert.equal(w.stdout, r.stdout);
  });

  it('explains bad input: usage errors exit 2, unreadable or ungovernable input exits 1', async () => {
    const noFile = await tollgate(['inject']);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /-f FILE \(or -f - for standard input\) is required/);
    const badCp = await tollgate(['inject', '-f', '-', '--controlplane', '18000']);
    assert.equal(badCp.code, 2);
    assert.match(badCp.stderr, /--controlplane: a host is required \(expected HOST:PORT\)/);
    const missing = await tollgate(['inject', '-f', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.yaml/);
    const noPort = await tollgate(['inject', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n');
    assert.equal(noPort.code, 1);
    assert.match(noPort.stderr, /document 1 \(Pod p\): pod default\/p: no container declares a TCP port/);
    assert.equal(noPort.stdout, '', 'nothing half-written on failure');
  });

  it('parses the webhook flags, with defaults', () => {
    const o = parseWebhookArgs(['--cert', 'c.pem', '--key', 'k.pem', '--no-authz', '--reload-interval', '1m']);
    assert.notEqual(o, 'help');
    if (o === 'help') return;
    assert.equal(o.host, '0.0.0.0');
    assert.equal(o.port, 8443);
    assert.equal(o.failurePolicy, 'Fail');
    assert.equal(o.reloadIntervalMs, 60000);
    assert.equal(o.inject?.defaultAuthz, 'shared');
    assert.throws(() => parseWebhookArgs(['--cert', 'c', '--key', 'k', '--failure-policy', 'Maybe']), UsageError);
    assert.throws(() => parseWebhookArgs(['--cert', 'c']), /--cert FILE and --key FILE/);
  });

  it('runs the webhook until SIGTERM', async () => {
    const tls = join(dir, 'tls');
    execFileSync('bash', [join(process.cwd(), 'manifests', 'webhook-tls.sh'), '--out', tls, '--days', '1'], { stdio: 'pipe' });
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'inject', 'webhook', '--cert', join(tls, 'tls.crt'), '--key', join(tls, 'tls.key'), '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitForPort(port, '127.0.0.1', 20000);
      const body = JSON.stringify(podCreateReview(mcpPod()));
      const reply = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/mutate', ca: readFileSync(join(tls, 'ca.crt')), servername: 'tollgate-webhook.tollgate-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
          let t = '';
          res.on('data', (c: Buffer) => { t += c.toString(); });
          res.on('end', () => resolve(t));
        });
        req.on('error', reject);
        req.end(body);
      });
      const response = (JSON.parse(reply) as { response: { allowed: boolean; patchType: string } }).response;
      assert.equal(response.allowed, true);
      assert.equal(response.patchType, 'JSONPatch');
      assert.match(stderr, new RegExp(`listening on https://127\\.0\\.0\\.1:${port}`));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    assert.match(stderr, /SIGTERM, shutting down/);
  });
});

describe('tollgate inject --sidecar-mode', () => {
  const POD = `apiVersion: v1
kind: Pod
metadata: {name: weather, namespace: mcp-demo}
spec:
  containers:
    - {name: server, image: example/weather:1, ports: [{containerPort: 8080}]}
`;
  it('containers: plain sidecar containers after the server, no restartPolicy', async () => {
    const r = await tollgate(['inject', '-f', '-', '--sidecar-mode', 'containers'], POD);
    assert.equal(r.code, 0, r.stderr);
    const pod = parseAllDocuments(r.stdout)[0]!.toJS() as PodLike;
    assert.deepEqual(pod.spec!.containers.map((c) => c.name), ['server', 'tollgate-authz', 'tollgate-envoy']);
    assert.ok(pod.spec!.containers.every((c) => c.restartPolicy === undefined));
    assert.equal(pod.spec!.initContainers, undefined);
  });
  it('native stays the default; a bad mode is a usage error naming the choices', async () => {
    const r = await tollgate(['inject', '-f', '-'], POD);
    const pod = parseAllDocuments(r.stdout)[0]!.toJS() as PodLike;
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.restartPolicy), ['Always', 'Always']);
    const bad = await tollgate(['inject', '-f', '-', '--sidecar-mode', 'sidecar'], POD);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--sidecar-mode must be native or containers, not "sidecar"/);
  });
  it('the webhook takes the same flag', () => {
    const o = parseWebhookArgs(['--cert', 'c', '--key', 'k', '--sidecar-mode', 'containers']);
    assert.ok(o !== 'help');
    assert.equal(o.inject?.sidecarMode, 'containers');
  });
});
