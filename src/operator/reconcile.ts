import { canonicalize } from '../decisionlog/canonical.js';
import { sameConditions, setCondition } from './conditions.js';
import { isNotFound, type KubeClient } from './kube-client.js';
import { FINALIZER, type CommonStatus, type Condition, type CustomResource, type Kind } from './types.js';

/**
 * The part every reconciler shares: read the object fresh, handle deletion through the finalizer,
 * add the finalizer, let the kind's handler converge the world, and write status only when it
 * changed (so reconciling twice writes nothing the second time).
 */

export interface Outcome<T> {
  /** Kind-specific status fields (the common ones are set here). */
  status: Omit<T, keyof CommonStatus>;
  /** The Ready condition: True when the object is in force. */
  ready: { status: 'True' | 'False'; reason: string; message: string };
  /** More conditions (e.g. Exhausted on a TokenBudget). */
  extra?: Omit<Condition, 'lastTransitionTime'>[];
  /** An Event to record, only emitted when the Ready condition changes. */
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

export interface Handler<S, T extends CommonStatus> {
  kind: Kind;
  converge(obj: CustomResource<S, T>): Promise<Outcome<T>>;
  /** Undo what converge did in the world outside this object (children, publications). */
  finalize(obj: CustomResource<S, T>): Promise<void>;
}

export interface ReconcileLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

function stripVolatile(status: unknown): string {
  const { conditions: _c, ...rest } = (status ?? {}) as CommonStatus & Record<string, unknown>;
  return canonicalize(rest);
}

export async function reconcile<S, T extends CommonStatus>(kube: KubeClient, h: Handler<S, T>, namespace: string, name: string, log: ReconcileLog, now: () => Date = () => new Date()): Promise<void> {
  let obj = await kube.getResource<S, T>(h.kind, namespace, name);
  if (!obj) return;
  const ref = { kind: h.kind, namespace, name, ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}) };
  const finalizers = obj.metadata.finalizers ?? [];

  if (obj.metadata.deletionTimestamp) {
    if (!finalizers.includes(FINALIZER)) return;
    await h.finalize(obj);
    obj.metadata.finalizers = finalizers.filter((f) => f !== FINALIZER);
    try {
      await kube.replaceResource(h.kind, obj);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    log.info({ kind: h.kind, namespace, name }, 'cleaned up and released');
    return;
  }
  if (!finalizers.includes(FINALIZER)) {
    obj.metadata.finalizers = [...finalizers, FINALIZER];
    obj = await kube.replaceResource(h.kind, obj);
  }

  const out = await h.converge(obj);
  const at = now();
  const generation = obj.metadata.generation;
  const old = obj.status ?? ({} as T);
  let conditions = setCondition(old.conditions, { type: 'Ready', ...out.ready, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, at);
  for (const c of out.extra ?? []) conditions = setCondition(conditions, { ...c, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, at);
  const next = { ...out.status, observedGeneration: generation, conditions } as unknown as T;
  const readyBefore = old.conditions?.find((c) => c.type === 'Ready');
  const readyChanged = !readyBefore || readyBefore.status !== out.ready.status || readyBefore.reason !== out.ready.reason || readyBefore.message !== out.ready.message;
  if (old.observedGeneration === generation && sameConditions(old.conditions, conditions) && stripVolatile(old) === stripVolatile(next)) return;
  obj.status = next;
  await kube.replaceStatus(h.kind, obj);
  if (out.event && readyChanged) {
    await kube.event(ref, out.event.type, out.event.reason, out.event.message).catch((e: Error) => log.warn({ err: e.message }, 'could not record an event'));
  }
  log.info({ kind: h.kind, namespace, name, ready: out.ready.status, reason: out.ready.reason }, 'reconciled');
}
