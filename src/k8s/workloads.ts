import { applyPatch, getAt, parsePointer, pointer, type PatchOp } from './jsonpatch.js';
import { injectSidecars, type InjectOptions, type InjectResult } from './mutate.js';
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

export function templatePath(kind: string | undefined): string | undefined {
  return kind === undefined ? undefined : TEMPLATE_PATH[kind];
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

function collect(obj: KubeObject, at: string, opts: InjectOptions, out: ObjectInjection[], ops: PatchOp[]): void {
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    obj.items.forEach((item: unknown, i: number) => {
      if (isRecord(item)) collect(item as KubeObject, at + pointer('items', i), opts, out, ops);
    });
    return;
  }
  const rel = templatePath(obj.kind);
  if (rel === undefined) return;
  let pod: unknown;
  try {
    pod = getAt(obj, parsePointer(rel));
  } catch {
    return;
  }
  if (!isRecord(pod)) return;
  const meta = obj.metadata ?? {};
  // A template has no name or namespace of its own: its pods take them from the workload.
  const local: InjectOptions = rel === '' ? opts : {
    ...opts,
    namespace: meta.namespace ?? opts.namespace,
    podName: meta.name ? `${meta.name}-` : opts.podName,
    serverName: opts.serverName ?? meta.name,
  };
  const result = injectSidecars(pod as PodLike, local);
  out.push({ at: at + rel, result });
  ops.push(...prefixed(result.patch, at + rel));
}

/**
 * Injects the pod of a Pod, the template of a workload (Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, ReplicationController, Job, CronJob, PodTemplate), or each of those inside a List.
 * Any other kind comes back unchanged with no pods. Throws InjectionError like injectSidecars.
 */
export function injectObject(obj: KubeObject, opts: InjectOptions = {}): ObjectResult {
  const pods: ObjectInjection[] = [];
  const patch: PatchOp[] = [];
  collect(obj, '', opts, pods, patch);
  return { object: patch.length ? applyPatch(obj, patch) : obj, patch, pods };
}
