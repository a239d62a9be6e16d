import { strict as assert } from 'node:assert';
import { resolve } from 'node:path';
import { serverSideApply, type ObjectRef } from '../../../src/operator/kube-rest.js';
import { applyAll, kubeTool, sharedKubeCluster } from '../../support/kube-cluster.js';
import {
  CHART, helmTemplate, objectId as id, runTool as run, withoutToolLabels as normalise, yamlDocs as docs, type RenderedObject as Obj,
} from '../../support/manifest-render.js';

/**
 * The Helm chart, with the real helm: it lints, renders the same objects as `kustomize build
 * manifests/base` by default, honours its values, refuses settings that cannot work, and every
 * object it renders is accepted by a real kube-apiserver (server-side dry run). Multi-region
 * values: helm-multi-region.test.ts.
 */

describe('Helm chart (manifests/helm/tollgate) with the real helm', function () {
  this.timeout(120_000);

  it('helm lint passes, strictly', async () => {
    const r = await run(kubeTool('helm'), ['lint', '--strict', CHART, '--kube-version', '1.34.0']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders, by default, exactly the objects kustomize builds from manifests/base (but the Namespace)', async () => {
    const helm = new Map((await helmTemplate()).map((o) => [id(o), normalise(o)]));
    const k = await run(kubeTool('kustomize'), ['build', resolve('manifests', 'base')]).catch(() => null);
    assert.ok(k && k.code === 0, k?.stderr);
    const kust = new Map(docs(k.stdout).filter((o) => o.kind !== 'Namespace').map((o) => [id(o), normalise(o)]));
    assert.deepEqual([...helm.keys()].sort(), [...kust.keys()].sort());
    for (const [key, o] of kust) assert.deepEqual(helm.get(key), o, key);
    const labels = (await helmTemplate()).find((o) => o.kind === 'Deployment')!.metadata.labels!;
    assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm');
  });

  it('honours its values: namespace, images, sidecar mode, replicas, failure policy, caBundle, operator off', async () => {
    const objs = await helmTemplate('--namespace', 'mesh', '--set', 'sidecarMode=containers', '--set', 'image.repository=registry.local/tollgate',
      '--set', 'image.tag=dev', '--set', 'envoyImage=registry.local/envoy:1.40', '--set', 'webhook.replicas=3', '--set', 'webhook.failurePolicy=Ignore',
      '--set', 'webhook.caBundle=Q0E=');
    const webhook = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'tollgate-webhook')!;
    assert.equal(webhook.metadata.namespace, 'mesh');
    assert.equal((webhook.spec as { replicas: number }).replicas, 3);
    const args = ((webhook.spec as { template: { spec: { containers: { args: string[]; image: string }[] } } }).template.spec.containers[0]!);
    assert.equal(args.image, 'registry.local/tollgate:dev');
    const flag = (f: string): string | undefined => args.args[args.args.indexOf(f) + 1];
    assert.equal(flag('--sidecar-mode'), 'containers');
    assert.equal(flag('--envoy-image'), 'registry.local/envoy:1.40');
    assert.equal(flag('--authz-image'), 'registry.local/tollgate:dev');
    assert.equal(flag('--controlplane'), 'tollgate-controlplane.mesh.svc:18000');
    const mwc = objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    const hook = (mwc.webhooks as { failurePolicy: string; clientConfig: { caBundle?: string; service: { namespace: string } } }[])[0]!;
    assert.equal(hook.failurePolicy, 'Ignore');
    assert.equal(hook.clientConfig.caBundle, 'Q0E=');
    assert.equal(hook.clientConfig.service.namespace, 'mesh');
    const off = await helmTemplate('--set', 'operator.enabled=false');
    assert.ok(!off.some((o) => o.metadata.name.startsWith('tollgate-operator')), 'no operator objects');
  });

  it('workloadIdentity: on by default (registrations from the API server, certificates, their RBAC); off renders none of it', async () => {
    const args = (objs: Obj[], name: string): string[] => (objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    const on = await helmTemplate('--set', 'workloadIdentity.certificateLifetime=2h');
    const cp = args(on, 'tollgate-controlplane');
    for (const f of ['--registrations-from-kube', '--workload-certs', '--ca-dir', '--xds-cert', '--mesh-ca']) assert.ok(cp.includes(f), f);
    assert.equal(cp[cp.indexOf('--workload-cert-lifetime') + 1], '2h');
    assert.ok(!args(await helmTemplate(), 'tollgate-controlplane').includes('--workload-cert-lifetime'), 'the default lifetime is not spelled out');
    const hook = args(on, 'tollgate-webhook');
    assert.equal(hook[hook.indexOf('--workload-certs') + 1], 'https://tollgate-controlplane.tollgate-system.svc:18443/v1/certificates');
    assert.ok(on.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'tollgate-controlplane'));
    const off = await helmTemplate('--set', 'workloadIdentity.enabled=false');
    assert.ok(!off.some((o) => o.kind.startsWith('ClusterRole') && o.metadata.name === 'tollgate-controlplane'), 'no control plane RBAC');
    const cpOff = args(off, 'tollgate-controlplane');
    assert.ok(!cpOff.includes('--registrations-from-kube') && !cpOff.includes('--workload-certs') && cpOff.includes('--registrations'));
    assert.ok(!args(off, 'tollgate-webhook').includes('--workload-certs'));
    assert.ok(!args(off, 'tollgate-operator').includes('--workload-certs'));
    const op = args(on, 'tollgate-operator');
    assert.equal(op[op.indexOf('--workload-certs') + 1], 'https://tollgate-controlplane.tollgate-system.svc:18443/v1/certificates', 'operator-run pods get certificates too');
    const sa = off.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'tollgate-controlplane')!;
    assert.equal(sa.automountServiceAccountToken, false);
  });

  it('refuses settings that cannot work, saying what to do', async () => {
    const old = await run(kubeTool('helm'), ['template', 'tollgate', CHART, '--kube-version', '1.28.0']);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /native sidecars need Kubernetes 1\.29 or newer and this cluster is v1\.28\.0: install with --set sidecarMode=containers/);
    const ok = await run(kubeTool('helm'), ['template', 'tollgate', CHART, '--kube-version', '1.28.0', '--set', 'sidecarMode=containers']);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await run(kubeTool('helm'), ['template', 'tollgate', CHART, '--kube-version', '1.34.0', '--set', 'sidecarMode=sidecar']);
    assert.match(bad.stderr, /sidecarMode must be native or containers, not "sidecar"/);
  });

  it('every rendered object is accepted by a real kube-apiserver (server-side dry run)', async () => {
    const cluster = await sharedKubeCluster();
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'helm-test' } }]);
    const objs = await helmTemplate('--namespace', 'helm-test');
    // CRDs for real (the custom resources need them); the rest only validated, not stored, so the
    // webhook configuration of other tests stays as it is.
    await applyAll(cluster.kc, objs.filter((o) => o.kind === 'CustomResourceDefinition'));
    for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      await serverSideApply(cluster.kc, o as unknown as ObjectRef, 'tollgate-tests', { dryRun: true }).catch((e: Error) => assert.fail(`${id(o)}: ${e.message}`));
    }
  });
});
