import {
  ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, V1MicroTime,
  makeInformer, type Informer, type KubeConfig, type ObjectCache, type KubernetesObject, type V1Lease,
} from '@kubernetes/client-node';
import { KubeRestError, kubeRequest, objectPath, serverSideApply, type ObjectRef } from './kube-rest.js';
import { FIELD_MANAGER, GROUP, PLURAL, VERSION, type CustomResource, type Kind } from './types.js';

/**
 * The operator's only door to the API server: typed calls for what reconcilers need, over
 * @kubernetes/client-node (which also brings watch-based informers with relist on expiry, and the
 * kubeconfig / in-cluster service-account handling). Errors keep the API server's message.
 */

export class KubeApiError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
  }
}

function apiMessage(e: unknown): string {
  if (e instanceof KubeRestError) return e.message;
  if (e instanceof ApiException) {
    try {
      const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: string };
      if (body?.message) return body.message;
    } catch {
      // not JSON: fall through
    }
    return `HTTP ${e.code}: ${String(e.body).slice(0, 300)}`;
  }
  return (e as Error).message;
}

/** Runs an API call; turns ApiException into KubeApiError with the server's own message. */
async function call<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const code = e instanceof ApiException || e instanceof KubeRestError ? e.code : 0;
    throw new KubeApiError(code, `${what}: ${apiMessage(e)}`);
  }
}

export function isNotFound(e: unknown): boolean { return e instanceof KubeApiError && e.code === 404; }
export function isConflict(e: unknown): boolean { return e instanceof KubeApiError && e.code === 409; }

export interface EventRef { kind: Kind; name: string; namespace: string; uid?: string }

export class KubeClient {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;

  constructor(readonly kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
  }

  informer<S, T>(kind: Kind): Informer<CustomResource<S, T> & KubernetesObject> & ObjectCache<CustomResource<S, T> & KubernetesObject> {
    const plural = PLURAL[kind];
    return makeInformer(this.kc, `/apis/${GROUP}/${VERSION}/${plural}`,
      () => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }) as never);
  }

  async getResource<S, T>(kind: Kind, namespace: string, name: string): Promise<CustomResource<S, T> | null> {
    try {
      return await call(`get ${kind} ${namespace}/${name}`, () => this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name }) as Promise<CustomResource<S, T>>);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Replaces the object (metadata and spec; used for finalizers), guarded by its resourceVersion. */
  replaceResource<S, T>(kind: Kind, obj: CustomResource<S, T>): Promise<CustomResource<S, T>> {
    const { namespace, name } = obj.metadata;
    return call(`update ${kind} ${namespace}/${name}`, () => this.custom.replaceNamespacedCustomObject({
      group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body: obj, fieldManager: FIELD_MANAGER,
    }) as Promise<CustomResource<S, T>>);
  }

  /** Writes the status subresource, guarded by the resourceVersion in `obj`. */
  replaceStatus<S, T>(kind: Kind, obj: CustomResource<S, T>): Promise<CustomResource<S, T>> {
    const { namespace, name } = obj.metadata;
    return call(`update status of ${kind} ${namespace}/${name}`, () => this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body: obj, fieldManager: FIELD_MANAGER,
    }) as Promise<CustomResource<S, T>>);
  }

  /** Server-side apply: the object ends up as given for every field this operator owns; idempotent. */
  apply<T>(obj: ObjectRef): Promise<T> {
    return call(`apply ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`, () => serverSideApply<T>(this.kc, obj, FIELD_MANAGER));
  }

  async read<T>(ref: ObjectRef): Promise<T | null> {
    try {
      return await call(`get ${ref.kind} ${ref.metadata.namespace}/${ref.metadata.name}`, () => kubeRequest<T>(this.kc, 'GET', objectPath(ref)));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Deletes (children in the background); an object that is already gone counts as deleted. */
  async remove(ref: ObjectRef): Promise<void> {
    try {
      await call(`delete ${ref.kind} ${ref.metadata.namespace}/${ref.metadata.name}`, () => kubeRequest(this.kc, 'DELETE', objectPath(ref), { propagationPolicy: 'Background' }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** A core/v1 Event on one of our resources, as `kubectl describe` shows it. Best effort. */
  async event(ref: EventRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await call('create event', () => this.core.createNamespacedEvent({
      namespace: ref.namespace,
      body: {
        metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
        involvedObject: { apiVersion: `${GROUP}/${VERSION}`, kind: ref.kind, name: ref.name, namespace: ref.namespace, ...(ref.uid ? { uid: ref.uid } : {}) },
        type, reason, message: message.slice(0, 1024), count: 1, firstTimestamp: now, lastTimestamp: now,
        source: { component: FIELD_MANAGER }, reportingComponent: FIELD_MANAGER, reportingInstance: FIELD_MANAGER,
      },
    }));
  }

  async getLease(namespace: string, name: string): Promise<V1Lease | null> {
    try {
      return await call(`get Lease ${namespace}/${name}`, () => this.coordination.readNamespacedLease({ namespace, name }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  createLease(lease: V1Lease): Promise<V1Lease> {
    const namespace = lease.metadata!.namespace!;
    return call(`create Lease ${namespace}/${lease.metadata!.name}`, () => this.coordination.createNamespacedLease({ namespace, body: lease }));
  }

  replaceLease(lease: V1Lease): Promise<V1Lease> {
    const namespace = lease.metadata!.namespace!;
    const name = lease.metadata!.name!;
    return call(`update Lease ${namespace}/${name}`, () => this.coordination.replaceNamespacedLease({ namespace, name, body: lease }));
  }
}

/** Lease times are MicroTime on the wire: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): Date {
  return new V1MicroTime(ms);
}
