import { applyPatch, parsePointer, pointer, type PatchOp } from './jsonpatch.js';
import { InjectionError, injectSidecars, type InjectOptions, type InjectResult } from './mutate.js';
import { FieldError, metadataProblem, shown, type FieldPath } from './pod-schema.js';
import { isRecord, type KubeObject, type PodLike } from './types.js';

/** Where each kind keeps the pod it runs, as a JSON pointer ('' = the object is the pod). */
const TEMPLATE_PATH: Readonly<Record<string, string>> = {
  Pod: '',
  Deployment: '/spec/template',
  StatefulSet: '/spec/template',
  DaemonSet: '/spec/template',
  ReplicaSet: '/spec/template',
  ReplicationController: '/spec/template',
  Job: '/spec/template',
  CronJob: '/spec/jobTemplate/spec/template',
  PodTemplate: '/template',
};

export function templatePath(kind: unknown): string | undefined {
  return typeof kind === 'string' && Object.hasOwn(TEMPLATE_PATH, kind) ? TEMPLATE_PATH[kind] : undefined;
}

export interface ObjectInjection {
  /** Pointer of the pod (template) inside the object this result is about. */
  at: string;
  result: InjectResult;
}

export interface ObjectResult {
  object: KubeObject;
  /** Operations relative to the object's root. */
  patch: PatchOp[];
  /** One entry per pod or template found; empty for kinds that run no pods. */
  pods: ObjectInjection[];
}

function prefixed(ops: PatchOp[], prefix: string): PatchOp[] {
  return ops.map((op) => ('from' in op ? { ...op, path: prefix + op.path, from: prefix + op.from } : { ...op, path: prefix + op.path }));
}

/**
 * The pod template at `tokens`, undefined when the object has none (a fragment, a patch); a
 * field on the way that is there but is no object is an error (the API server refuses those).
 */
function templateAt(obj: KubeObject, tokens: string[], path: FieldPath): unknown {
  let cur: unknown = obj;
  const walked: (string | number)[] = [...path];
  for (const t of tokens) {
    const next = (cur as Record<string, unknown>)[t];
    walked.push(t);
    if (next === undefined || next === null) return undefined;
    if (!isRecord(next)) throw new FieldError({ path: walked, problem: `expected an object, got ${shown(next)}` });
    cur = next;
  }
  return cur;
}

function collect(obj: KubeObject, at: string, path: FieldPath, opts: InjectOptions, out: ObjectInjection[], ops: PatchOp[]): void {
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    obj.items.forEach((item: unknown, i: number) => {
      if (isRecord(item)) collect(item as KubeObject, at + pointer('items', i), [...path, 'items', i], opts, out, ops);
    });
    return;
  }
  const rel = templatePath(obj.kind);
  if (rel === undefined) return;
  const tokens = parsePointer(rel);
  // The workload's own name and namespace are handed to its pods below.
  if (rel !== '') {
    const problem = metadataProblem(obj, path);
    if (problem) throw new FieldError(problem);
  }
  const pod = templateAt(obj, tokens, path);
  if (pod === undefined) return;
  const meta = obj.metadata ?? {};
  // A template has no name or namespace of its own: its pods take them from the workload.
  const local: InjectOptions = rel === '' ? opts : {
    ...opts,
    namespace: meta.namespace ?? opts.namespace,
    podName: meta.name ? `${meta.name}-` : opts.podName,
    serverName: opts.serverName ?? meta.name,
  };
  let result: InjectResult;
  try {
    result = injectSidecars(pod as PodLike, local);
  } catch (e) {
    // Name the field from the object's root (spec.template.spec…), not from the pod's.
    if (e instanceof InjectionError && e.field) throw new FieldError({ ...e.field, path: [...path, ...tokens, ...e.field.path] });
    throw e;
  }
  out.push({ at: at + rel, result });
  ops.push(...prefixed(result.patch, at + rel));
}

/**
 * Injects the pod of a Pod, the template of a workload (Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, ReplicationController, Job, CronJob, PodTemplate), or each of those inside a List.
 * Any other kind comes back unchanged with no pods. Throws InjectionError like injectSidecars, and
 * FieldError for a field of the wrong shape (its path from the object's root).
 */
export function injectObject(obj: KubeObject, opts: InjectOptions = {}): ObjectResult {
  const pods: ObjectInjection[] = [];
  const patch: PatchOp[] = [];
  collect(obj, '', [], opts, pods, patch);
  return { object: patch.length ? applyPatch(obj, patch) : obj, patch, pods };
}
