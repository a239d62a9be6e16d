/**
 * The slice of the Kubernetes object model the injector reads and writes. Objects arrive from
 * YAML files and from the API server with many more fields than these; every interface is open
 * (index signature) so those fields travel through untouched.
 */

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
  [key: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  ports?: ContainerPort[];
  restartPolicy?: string;
  [key: string]: unknown;
}

export interface Volume {
  name: string;
  [key: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  [key: string]: unknown;
}

/** A Pod, or the `template` of a workload (which has no apiVersion / kind). */
export interface PodLike {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PodSpec;
  [key: string]: unknown;
}

/** Any Kubernetes object as read from YAML: only apiVersion, kind and metadata are assumed. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

export { isObject as isRecord } from '../util/object.js';
