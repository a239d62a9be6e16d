import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { envoyImage, tollgateImage } from '../../../src/containers/images.js';
import { DEMO_NAMESPACE, DEMO_SERVER, startDemoPod, stopDemoPod, type DemoPod } from '../../../src/containers/demo-pod.js';
import { POD_PORTS } from '../../../src/containers/demo-pod-spec.js';
import { imageExists, podman, podmanAvailability, podmanOk } from '../../../src/containers/podman.js';
import { readStreamRecords } from '../../../src/decisionlog/nats-reader.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every container of the pod with its state, and the tail of its log. */
async function dumpPod(podName: string): Promise<void> {
  const ps = await podman(['ps', '-a', '--filter', `pod=${podName}`, '--format', '{{.Names}}\t{{.Status}}']).catch(() => null);
  console.log(`--- containers of pod ${podName}\n${ps ? ps.stdout + ps.stderr : '(podman ps failed)'}`);
  for (const line of (ps?.stdout ?? '').split('\n')) {
    const name = line.split('\t')[0]?.trim();
    if (!name || name.endsWith('-infra')) continue;
    const logs = await podman(['logs', '--tail', '40', name]).catch(() => null);
    if (logs) console.log(`--- ${name}\n${logs.stdout}${logs.stderr}`);
  }
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } });

/**
 * Issue 11, "pods for real": the demo MCP server's pod, injected by `tollgate inject` and run by
 * `podman kube play` from the images `make images` builds. Every call goes from this process
 * through the pod's published port to the Envoy sidecar, which asks the authz sidecar; Envoy's
 * configuration comes over xDS from the control plane, authz's policy as a signed bundle over NATS.
 */
describe('injected pod under podman kube play (integration)', function () {
  this.timeout(420_000);
  const podName = `tollgate-it-${process.pid}-${Date.now().toString(36)}`;
  let dir = '';
  let pod: DemoPod;
  let mcpUrl: string;
  let played = false;

  before(async function () {
    const availability = await podmanAvailability();
    if (!availability.ok) {
      console.log(`      skipped: podman cannot run here: ${availability.reason}`);
      this.skip();
    }
    for (const image of [tollgateImage(), envoyImage()]) {
      if (await imageExists(image)) continue;
      // Under make the images are built first, so a missing one is a failure, not a reason to skip.
      if (process.env.TOLLGATE_IMAGE) throw new Error(`image ${image} is missing although make built the images`);
      console.log(`      skipped: image ${image} is missing: run \`make images\``);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'tollgate-pod-'));
    played = true;
    pod = await startDemoPod({ name: podName, dir });
    mcpUrl = pod.mcpUrl;
    if (pod.injectorContainersMode) assert.doesNotMatch(readFileSync(join(dir, 'injected.yaml'), 'utf8'), /restartPolicy: Always/, '--sidecar-mode containers writes plain containers');
    // Serving once Envoy has its xDS config and authz its first signed bundle.
    try {
      await eventually('the governed path to answer', async () => {
        const r = await rawPost(mcpUrl, INIT, { authorization: `Bearer ${await pod.token('probe', 'payments')}` });
        return r.status === 200 ? true : undefined;
      }, 180_000);
    } catch (e) {
      // A start-up that never serves says why only in the containers' own logs.
      await dumpPod(podName);
      throw e;
    }
  });

  after(async function () {
    if (played) {
      if (this.currentTest?.state === 'failed' || process.env.TOLLGATE_TEST_ECHO === '1') await dumpPod(podName);
      await stopDemoPod(podName);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const container = (name: string): string => `${podName}-${name}`;
  const token = (sub: string, team: string): Promise<string> => pod.token(sub, team);
  const authzProbe = ['node', '-e', `require('node:net').connect(${POD_PORTS.authz},'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`];

  it('runs the sidecars as the injector wrote them: non-root, read-only root, no capabilities', async () => {
    const inspect = JSON.parse(await podmanOk(['container', 'inspect', container('tollgate-authz'), container('tollgate-envoy')])) as Array<{
      Config: { User: string }; EffectiveCaps: string[] | null; HostConfig: { ReadonlyRootfs: boolean; RestartPolicy: { Name: string } };
    }>;
    assert.deepEqual(inspect.map((c) => c.Config.User), ['65532:65532', '101:101']);
    for (const c of inspect) {
      assert.equal(c.HostConfig.ReadonlyRootfs, true);
      assert.deepEqual(c.EffectiveCaps ?? [], []);
      assert.equal(c.HostConfig.RestartPolicy.Name, 'always');
    }
  });

  it("readiness: Envoy's probe answers LIVE on the health port, authz's exec probe passes", async () => {
    const ready = await httpGet(pod.readyUrl);
    assert.deepEqual([ready.status, ready.body.trim()], [200, 'LIVE']);
    // The probe command the injector wrote, run where the kubelet would run it.
    assert.equal((await podman(['exec', container('tollgate-authz'), ...authzProbe])).code, 0);
    // The health port serves /ready and nothing else of Envoy's admin.
    assert.equal((await httpGet(pod.readyUrl.replace(/\/ready$/, '/stats'))).status, 404);
  });

  let client: Client;
  it('allows a governed call from the host through the pod\'s Envoy', async () => {
    client = await connectClient(mcpUrl, await token('alice', 'payments'));
    const r = await client.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    assert.match(JSON.stringify(r), /Refund policy/);
  });

  let deniedId = '';
  it('refuses a denied call with its reasons and decision id', async () => {
    const support = await connectClient(mcpUrl, await token('bob', 'support'));
    try {
      await assert.rejects(support.callTool({ name: 'run_sql', arguments: { query: 'SELECT 1' } }), (e: unknown) => {
        assert.ok(e instanceof McpError, `expected McpError, got ${String(e)}`);
        assert.equal(e.code, -32003);
        const data = e.data as { decision_id: string; reasons: string[] };
        assert.match(data.reasons.join(' '), /Team support may not use tool run_sql/);
        deniedId = data.decision_id;
        return true;
      });
    } finally {
      await support.close();
    }
    const anonymous = await rawPost(mcpUrl, INIT);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata=/);
  });

  it('the decision record reaches NATS', async () => {
    assert.ok(deniedId, 'the denied call ran');
    const record = await eventually('the denied call in the NATS stream', async () => {
      const found: ChainedDecisionRecord[] = [];
      for await (const r of readStreamRecords({ url: pod.natsUrl, stream: 'TOLLGATE_DECISIONS', subjectPrefix: 'tollgate.decisions', namespace: DEMO_NAMESPACE, server: DEMO_SERVER })) {
        if (r.record.decision_id === deniedId) found.push(r.record);
      }
      return found.length > 0 ? found : undefined;
    }, 30_000);
    assert.equal(record.length, 1, 'exactly one copy');
    assert.equal(record[0]!.result.allow, false);
    assert.equal(record[0]!.identity.sub, 'bob');
    assert.equal(record[0]!.mcp.tool, 'run_sql');
    assert.match(record[0]!.result.reasons.join(' '), /may not use tool run_sql/);
  });

  it('fail closed: with authz stopped every call is refused and its probe fails; started again, calls pass', async () => {
    await podmanOk(['stop', '--time', '15', container('tollgate-authz')], { timeoutMs: 60_000 });
    const bearer = { authorization: `Bearer ${await token('alice', 'payments')}` };
    for (let i = 0; i < 5; i++) {
      const r = await rawPost(mcpUrl, INIT, bearer);
      assert.ok(r.status >= 500, `expected a refusal, got ${r.status}: ${r.text.slice(0, 200)}`);
      assert.doesNotMatch(r.text, /"result"/);
    }
    // The session opened before the outage gets no answer from the server either.
    await assert.rejects(client.callTool({ name: 'search_docs', arguments: { query: 'refund' } }));
    // authz's readiness probe, run in the pod's network from the server container, fails too.
    assert.equal((await podman(['exec', container(DEMO_SERVER), ...authzProbe])).code, 1);

    await podmanOk(['start', container('tollgate-authz')]);
    await eventually('authz back', async () => ((await rawPost(mcpUrl, INIT, bearer)).status === 200 ? true : undefined), 60_000);
    assert.equal((await podman(['exec', container('tollgate-authz'), ...authzProbe])).code, 0);
    const r = await client.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    assert.match(JSON.stringify(r), /Refund policy/);
  });

  it('a crashed authz (SIGKILL) is restarted by the pod\'s restart policy and governs again', async () => {
    const before = JSON.parse(await podmanOk(['container', 'inspect', container('tollgate-authz')])) as Array<{ State: { Pid: number }; RestartCount: number }>;
    process.kill(before[0]!.State.Pid, 'SIGKILL');
    const bearer = { authorization: `Bearer ${await token('alice', 'payments')}` };
    await eventually('authz restarted and serving', async () => {
      const r = await rawPost(mcpUrl, INIT, bearer);
      if (r.status !== 200) assert.doesNotMatch(r.text, /"result"/, 'a call answered without authz');
      return r.status === 200 ? true : undefined;
    }, 60_000);
    const after = JSON.parse(await podmanOk(['container', 'inspect', container('tollgate-authz')])) as Array<{ RestartCount: number }>;
    assert.ok(after[0]!.RestartCount > before[0]!.RestartCount, 'podman restarted the container');
    await client.close();
  });
});
