import { strict as assert } from 'node:assert';
import { admit, parseAdmissionReview, ReviewError } from '../../../src/k8s/admission.js';
import { applyPatch, parsePatch } from '../../../src/k8s/jsonpatch.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import type { PodLike } from '../../../src/k8s/types.js';
import { mcpPod, podCreateReview } from './fixtures.js';

describe('k8s/admission', () => {
  it('answers a pod CREATE with a base64 JSON Patch that yields the injected pod', () => {
    const pod = mcpPod();
    delete pod.metadata!.namespace; // as for pods created by controllers: the request carries it
    const req = parseAdmissionReview(podCreateReview(pod));
    const { response, outcome } = admit(req);
    assert.equal(outcome, 'injected');
    assert.equal(response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, 'JSONPatch');
    const patch = parsePatch(JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')));
    assert.deepEqual(applyPatch(pod, patch), injectSidecars(pod, { namespace: 'mcp-demo' }).pod);
  });

  it('names the request\'s namespace in the authz sidecar (budgets), and refuses a pod claiming another', () => {
    const pod = mcpPod();
    delete pod.metadata!.namespace;
    const budgetNamespace = (review: Record<string, unknown>): string => {
      const { response } = admit(parseAdmissionReview(review));
      const injected = applyPatch(pod, parsePatch(JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8'))));
      const args = injected.spec!.initContainers!.find((c) => c.name === 'tollgate-authz')!.args as string[];
      return args[args.indexOf('--budget-namespace') + 1]!;
    };
    assert.equal(budgetNamespace(podCreateReview(pod, { namespace: 'shop' })), 'shop');
    assert.equal(budgetNamespace(podCreateReview(pod, { namespace: 'billing' })), 'billing');
    const other = mcpPod();
    other.metadata!.namespace = 'billing';
    const denied = admit(parseAdmissionReview(podCreateReview(other, { namespace: 'shop' })));
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.response.allowed, false);
    assert.match(denied.response.status!.message, /names namespace "billing" but is being created in "shop"/);
  });

  it('allows without a patch what it does not mutate', () => {
    const skipped = admit(parseAdmissionReview(podCreateReview(mcpPod({ annotations: { 'tollgate.dev/inject': 'false' } }))));
    assert.deepEqual(skipped.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    assert.equal(skipped.outcome, 'skipped');
    const update = admit(parseAdmissionReview(podCreateReview(mcpPod(), { operation: 'UPDATE' })));
    assert.deepEqual(update.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    const review = podCreateReview({ kind: 'Deployment' });
    (review.request as Record<string, unknown>).kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    assert.equal(admit(parseAdmissionReview(review)).response.patch, undefined);
  });

  it('denies a pod that cannot be governed, with the reason', () => {
    const pod = mcpPod();
    delete pod.spec!.containers[0]!.ports;
    const { response, outcome } = admit(parseAdmissionReview(podCreateReview(pod)));
    assert.equal(outcome, 'denied');
    assert.equal(response.allowed, false);
    assert.equal(response.status!.code, 400);
    assert.match(response.status!.message, /^tollgate: pod mcp-demo\/weather-7d9f8c6b5-: no container declares a TCP port/);
  });

  it('on an internal error refuses the pod under Fail and admits it with a warning under Ignore', () => {
    const pod = mcpPod();
    // A fault of the injector's own, not of the pod: reading a field throws.
    Object.defineProperty(pod.spec!.containers[0]!, 'image', { enumerable: true, get() { throw new Error('boom'); } });
    const req = parseAdmissionReview(podCreateReview(pod));
    const fail = admit(req);
    assert.equal(fail.outcome, 'error');
    assert.equal(fail.response.allowed, false);
    assert.equal(fail.response.status!.code, 500);
    assert.match(fail.response.status!.message, /refused rather than run ungoverned/);
    const ignore = admit(req, { failurePolicy: 'Ignore' });
    assert.equal(ignore.response.allowed, true);
    assert.equal(ignore.response.patch, undefined);
    assert.match(ignore.response.warnings![0]!, /admitted WITHOUT sidecars/);
  });

  it('denies a malformed pod, naming the field, under either failure policy (never admits it ungoverned)', () => {
    const bad: [string, (p: PodLike) => void, RegExp][] = [
      ['a null container', (p) => { (p.spec!.containers as unknown[]).push(null); }, /spec\.containers\[1\]: expected an object, got null/],
      ['a negative container port', (p) => { p.spec!.containers[0]!.ports![0]!.containerPort = -1; }, /spec\.containers\[0\]\.ports\[0\]\.containerPort: expected a port number.*got -1/],
      ['a boolean opt-out', (p) => { p.metadata!.annotations = { 'tollgate.dev/inject': false } as unknown as Record<string, string>; }, /metadata\.annotations\["tollgate\.dev\/inject"\]: expected a string, got false/],
    ];
    for (const [what, spoil, message] of bad) {
      const pod = mcpPod();
      spoil(pod);
      for (const failurePolicy of ['Fail', 'Ignore'] as const) {
        const { response, outcome } = admit(parseAdmissionReview(podCreateReview(pod)), { failurePolicy });
        assert.equal(outcome, 'denied', `${what} (${failurePolicy})`);
        assert.equal(response.allowed, false);
        assert.equal(response.status!.code, 400);
        assert.match(response.status!.message, /^tollgate: pod mcp-demo\/weather-7d9f8c6b5-: /);
        assert.match(response.status!.message, message);
      }
    }
  });

  const malformed: [string, unknown, RegExp][] = [
    ['not an object', [1, 2], /must be a JSON object/],
    ['wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, /kind must be "AdmissionReview"/],
    ['v1beta1', { ...podCreateReview(mcpPod()), apiVersion: 'admission.k8s.io/v1beta1' }, /admissionReviewVersions: \[v1\]/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
    ['no uid', (() => { const r = podCreateReview(mcpPod()); delete (r.request as Record<string, unknown>).uid; return r; })(), /request\.uid/],
    ['bad kind', (() => { const r = podCreateReview(mcpPod()); (r.request as Record<string, unknown>).kind = 'Pod'; return r; })(), /request\.kind/],
  ];
  for (const [name, body, message] of malformed) {
    it(`rejects a malformed review: ${name}`, () => {
      assert.throws(() => parseAdmissionReview(body), (e: unknown) => e instanceof ReviewError && message.test(e.message));
    });
  }

  it('rejects a pod CREATE without the pod', () => {
    const r = podCreateReview(undefined);
    assert.throws(() => admit(parseAdmissionReview(r)), /request\.object must be the pod/);
  });
});
