import type { BundleFiles } from '../../bundle/archive.js';
import type { PolicyEvaluator } from '../../contract/policy.js';

/** Loads a bundle's WASM into an evaluator (policy/engine.ts loadPolicy in production). */
export type PolicyLoader = (files: BundleFiles, opts: { revision?: string }) => Promise<PolicyEvaluator>;

export interface RejectionRecord {
  at: string;
  message: string;
  revision: string | null;
}

/** What `tollgate status` and metrics show for a policy source. */
export interface BundleSourceStatus {
  kind: 'nats' | 'http' | 'dir';
  /** Revision in force (null until a first bundle is loaded: Check denies meanwhile). */
  revision: string | null;
  loadedAt: string | null;
  swaps: number;
  /** Bundles refused (bad signature or hash, extra or missing file, failed load, not newer). */
  rejections: number;
  lastError: RejectionRecord | null;
  /** Trouble reaching the source (not a rejection): NATS down, HTTP error, unreadable directory. */
  sourceError: string | null;
  /** Bundles refused as older than one already accepted (a pointer moved back), NATS source only. */
  rollbacks?: number;
}

export interface BundleSource {
  readonly kind: BundleSourceStatus['kind'];
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): BundleSourceStatus;
}
