import { InjectionError, injectSidecars, type InjectOptions } from './mutate.js';
import { isRecord, type PodLike } from './types.js';

/**
 * AdmissionReview v1 (admission.k8s.io/v1): the request the API server sends a mutating webhook
 * and the response it expects. Pure: no I/O, so the decision logic is tested without a server.
 */

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind { group: string; version: string; kind: string }

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: string;
  namespace?: string;
  name?: string;
  subResource?: string;
  dryRun?: boolean;
  object?: unknown;
}

export interface AdmissionStatus { code: number; message: string; reason?: string }

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  patch?: string;
  status?: AdmissionStatus;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The review is not one we can answer at all; the webhook replies 400 with this message. */
export class ReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReviewError';
  }
}

/**
 * What to do when injection fails for a reason that is our fault, not the pod's: `Fail` denies
 * the pod (it would run ungoverned otherwise), `Ignore` admits it unchanged with a warning. It
 * mirrors the MutatingWebhookConfiguration's failurePolicy, which covers the webhook being down.
 */
export type FailurePolicy = 'Fail' | 'Ignore';

function str(v: unknown): v is string { return typeof v === 'string'; }

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new ReviewError('body must be a JSON object (an AdmissionReview)');
  if (body.kind !== 'AdmissionReview') throw new ReviewError(`kind must be "AdmissionReview", got ${JSON.stringify(body.kind ?? null)}`);
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new ReviewError(`apiVersion must be "${ADMISSION_API_VERSION}", got ${JSON.stringify(body.apiVersion ?? null)}: set admissionReviewVersions: [v1] in the webhook configuration`);
  }
  const r = body.request;
  if (!isRecord(r)) throw new ReviewError('request is missing or not an object');
  if (!str(r.uid) || r.uid === '') throw new ReviewError('request.uid must be a non-empty string');
  const k = r.kind;
  if (!isRecord(k) || !str(k.group) || !str(k.version) || !str(k.kind)) throw new ReviewError('request.kind must be {group, version, kind} strings');
  if (!str(r.operation)) throw new ReviewError('request.operation must be a string');
  for (const f of ['namespace', 'name', 'subResource'] as const) {
    if (r[f] !== undefined && !str(r[f])) throw new ReviewError(`request.${f} must be a string when present`);
  }
  if (r.dryRun !== undefined && typeof r.dryRun !== 'boolean') throw new ReviewError('request.dryRun must be a boolean when present');
  return {
    uid: r.uid,
    kind: { group: k.group, version: k.version, kind: k.kind },
    operation: r.operation,
    namespace: r.namespace as string | undefined,
    name: r.name as string | undefined,
    subResource: r.subResource as string | undefined,
    dryRun: r.dryRun as boolean | undefined,
    object: r.object,
  };
}

export function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export interface AdmitOptions {
  inject?: InjectOptions;
  failurePolicy?: FailurePolicy;
}

export interface AdmitOutcome {
  response: AdmissionResponse;
  /** For the log: injected, skipped (with why), denied, or error. */
  outcome: 'injected' | 'skipped' | 'denied' | 'error' | 'ignored';
  detail: string;
}

/**
 * Decides one admission request. Only pod CREATEs are mutated; anything else the configuration
 * might send is allowed unchanged.
 */
export function admit(req: AdmissionRequest, opts: AdmitOptions = {}): AdmitOutcome {
  const allow = (detail: string, outcome: AdmitOutcome['outcome'] = 'ignored'): AdmitOutcome => ({ response: { uid: req.uid, allowed: true }, outcome, detail });
  if (req.kind.group !== '' || req.kind.kind !== 'Pod') return allow(`not a pod (${req.kind.kind})`);
  if (req.subResource) return allow(`subresource ${req.subResource}`);
  if (req.operation !== 'CREATE') return allow(`operation ${req.operation}`);
  if (!isRecord(req.object)) throw new ReviewError('request.object must be the pod being created');

  // The namespace is the request's, which the API server decides: it is written into the
  // sidecars (node id, policy key, budget namespace), so a pod claiming another is refused.
  const claimed = (req.object as PodLike).metadata?.namespace;
  if (req.namespace && claimed && claimed !== req.namespace) {
    const message = `tollgate: the pod names namespace "${claimed}" but is being created in "${req.namespace}"`;
    return { response: { uid: req.uid, allowed: false, status: { code: 400, reason: 'BadRequest', message } }, outcome: 'denied', detail: message };
  }
  try {
    const res = injectSidecars(req.object as PodLike, { ...opts.inject, namespace: req.namespace || opts.inject?.namespace });
    if (!res.injected) return allow(res.reason, 'skipped');
    return {
      response: { uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(res.patch)).toString('base64') },
      outcome: 'injected',
      detail: `${res.plan.namespace}/${res.plan.podName} server=${res.plan.server} authz=${res.plan.authz.mode}`,
    };
  } catch (e) {
    if (e instanceof InjectionError) {
      return {
        response: { uid: req.uid, allowed: false, status: { code: 400, reason: 'BadRequest', message: `tollgate: ${e.message}` } },
        outcome: 'denied',
        detail: e.message,
      };
    }
    const message = (e as Error).message;
    if ((opts.failurePolicy ?? 'Fail') === 'Ignore') {
      return {
        response: { uid: req.uid, allowed: true, warnings: [`tollgate: sidecar injection failed (${message}); the pod was admitted WITHOUT sidecars because the injector runs with failure policy Ignore`] },
        outcome: 'error',
        detail: message,
      };
    }
    return {
      response: { uid: req.uid, allowed: false, status: { code: 500, reason: 'InternalError', message: `tollgate: sidecar injection failed, so the pod is refused rather than run ungoverned: ${message}` } },
      outcome: 'error',
      detail: message,
    };
  }
}
