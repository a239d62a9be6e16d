import { MCPPOLICY_POINTER_PREFIX } from '../bundle/policy-keys.js';
import { DEFINITIONS_KEY, regionalBucket } from './budget-keys.js';
import { identityToken, inboxPrefixFor } from './identity.js';

/**
 * Least-privilege NATS permissions per Tollgate component, as nats-server user permissions. Pure:
 * the server config renderer writes them, the tests check each one against a real server.
 *
 * JetStream is driven through request subjects (`$JS.API.…`), so "may read a KV bucket" means
 * "may ask for that stream's info, direct-get its messages and run an ordered consumer on it".
 * Every allow names one stream; nothing is granted with a bare `$JS.API.>`.
 */

/** The JetStream resources a mesh uses (bucket and stream names). */
export interface NatsResources {
  /** Object store holding signed bundles. */
  bundles: string;
  /** KV bucket holding the bundle pointer. */
  pointer: string;
  /** KV bucket with budget usage and leases. */
  budgetUsage: string;
  /**
   * Regions with a usage bucket of their own (`<budgetUsage>_<region>`, budgets with
   * `nats.scope: region`; docs/multi-region.md). Every right on the usage bucket covers these too.
   */
  budgetRegions?: readonly string[];
  /** KV bucket with budget definitions and limit overrides. */
  budgetConfig: string;
  /** Stream of decision records, and the subject prefix its records use. */
  decisions: string;
  decisionPrefix: string;
  /** KV buckets of tool pinning: signed approvals, and tool definitions authz saw (docs/tool-pinning.md). */
  pins: string;
  toolsSeen: string;
}

export const DEFAULT_RESOURCES: NatsResources = {
  bundles: 'tollgate_bundles',
  pointer: 'tollgate_policy',
  budgetUsage: 'tollgate_budgets',
  budgetConfig: 'tollgate_budget_config',
  decisions: 'TOLLGATE_DECISIONS',
  decisionPrefix: 'tollgate.decisions',
  pins: 'tollgate_pins',
  toolsSeen: 'tollgate_tools_seen',
};

export type NatsRole = 'controlplane' | 'authz' | 'reviewer' | 'operator' | 'kube-operator';

export const ROLE_DUTIES: Record<NatsRole, string> = {
  controlplane: 'creates the streams and buckets, publishes signed bundles and moves the pointer, records budget definitions',
  authz: 'reads bundles, the pointer and budget definitions, takes budget leases, writes only its own decision-log subjects',
  reviewer: 'reads decision records, budget state and the pointer; writes nothing',
  operator: 'changes budget limits and resets usage (`tollgate budget set|reset`), writes signed tool pins (`tollgate tools`); reads the rest',
  'kube-operator': '`tollgate operator`: publishes MCPPolicy bundles under mcppolicy.* pointer keys only, publishes TokenBudget definitions, reads budget usage and tool pins for status',
};


export interface UserPermissions {
  /** SPIFFE ID the server maps the client certificate to. */
  user: string;
  role: NatsRole;
  publish: string[];
  subscribe: string[];
}

const kvStream = (bucket: string): string => `KV_${bucket}`;

/** The global usage bucket and every region's. */
function usageBuckets(r: NatsResources): string[] {
  return [r.budgetUsage, ...(r.budgetRegions ?? []).map((region) => regionalBucket(r.budgetUsage, region))];
}
const objStream = (bucket: string): string => `OBJ_${bucket}`;

/** Reading a stream: its info, single-message gets, and ordered (ephemeral) consumers on it. */
function readStream(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    // Flow-control and heartbeat replies of push consumers (KV watch, object get).
    `$JS.FC.${stream}.>`,
  ];
}

/** Point reads only (KV get): no consumers, so no deliveries the reader could aim elsewhere. */
function getOnly(stream: string): string[] {
  return [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`];
}

/** Watching one KV key: ordered consumers whose filter is that key, and their flow control. */
function watchKey(bucket: string, key: string): string[] {
  const stream = kvStream(bucket);
  return [
    `$JS.API.CONSUMER.CREATE.${stream}.*.$KV.${bucket}.${key}`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

function manageStream(stream: string): string[] {
  return [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.UPDATE.${stream}`];
}

/** Subjects a given authz identity writes its decision records to: `<prefix>.<ns>.<server>.<writer>`. */
export function decisionWriterSubjects(r: NatsResources, spiffeId: string): string {
  return `${r.decisionPrefix}.*.*.${identityToken(spiffeId)}`;
}

/**
 * Budget usage keys an authz identity may write (`w.<ns>.<budget>.<window>`, budget/nats-store.ts):
 * mesh-wide budgets' (`w._.…`), and namespaced budgets' of its own namespace only, or of every
 * namespace for an authz that serves them all (no namespace). Old-style keys
 * (`w.<budget>.<window>`) are read, never written.
 */
function usageWrites(r: NatsResources, namespace: string | undefined): string[] {
  return usageBuckets(r).flatMap((b) => namespace === undefined ? [`$KV.${b}.w.*.*.*`] : [`$KV.${b}.w._.*.*`, `$KV.${b}.w.${namespace}.*.*`]);
}

export interface PermissionOptions {
  /** authz only: the Kubernetes namespace whose sidecars hold this identity (see usageWrites). */
  namespace?: string;
}

/** The permissions of one component identity. */
export function permissionsFor(role: NatsRole, spiffeId: string, r: NatsResources = DEFAULT_RESOURCES, o: PermissionOptions = {}): UserPermissions {
  if (o.namespace !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(o.namespace)) {
    throw new Error(`"${o.namespace}" is not a Kubernetes namespace name: it would not be one NATS subject token`);
  }
  const common = ['$JS.API.INFO'];
  let publish: string[];
  switch (role) {
    case 'controlplane':
      publish = [
        ...common,
        ...[objStream(r.bundles), kvStream(r.pointer), ...usageBuckets(r).map(kvStream), kvStream(r.budgetConfig), r.decisions, kvStream(r.pins), kvStream(r.toolsSeen)].flatMap(manageStream),
        ...readStream(objStream(r.bundles)), ...readStream(kvStream(r.pointer)), ...getOnly(kvStream(r.budgetConfig)),
        ...usageBuckets(r).map((b) => `$JS.API.STREAM.INFO.${kvStream(b)}`), `$JS.API.STREAM.INFO.${r.decisions}`,
        // Object store writes, and purging a deleted (pruned) bundle's chunks.
        `$O.${r.bundles}.>`, `$JS.API.STREAM.PURGE.${objStream(r.bundles)}`,
        `$KV.${r.pointer}.>`, `$KV.${r.budgetConfig}.specs`,
      ];
      break;
    case 'authz':
      publish = [
        ...common,
        ...readStream(objStream(r.bundles)), ...readStream(kvStream(r.pointer)),
        ...getOnly(kvStream(r.budgetConfig)), ...usageBuckets(r).flatMap((b) => getOnly(kvStream(b))),
        // Follows the published budget definitions live (nats.definitions: true): an ordered
        // consumer filtered to that one key; the filter is part of the request subject.
        ...watchKey(r.budgetConfig, DEFINITIONS_KEY),
        ...usageWrites(r, o.namespace),
        `$JS.API.STREAM.INFO.${r.decisions}`,
        decisionWriterSubjects(r, spiffeId),
        // Reading back its own last checkpoint anchor at start (last message on its anchor subject).
        // The non-direct get API cannot be narrowed to a subject: authz can read (masked) records
        // of the decision stream, which it could not alter (docs/security.md, NATS).
        `$JS.API.STREAM.MSG.GET.${r.decisions}`,
        // Tool pinning: follows signed approvals; reports what servers offer.
        // It follows the seen bucket too: a change one replica sees counts on all (PinStore.adopt).
        ...readStream(kvStream(r.pins)), ...readStream(kvStream(r.toolsSeen)), `$KV.${r.toolsSeen}.>`,
      ];
      break;
    case 'reviewer':
      publish = [
        ...common,
        ...readStream(r.decisions), ...readStream(kvStream(r.pointer)),
        ...getOnly(kvStream(r.budgetConfig)), ...usageBuckets(r).flatMap((b) => getOnly(kvStream(b))),
        ...readStream(kvStream(r.pins)), ...readStream(kvStream(r.toolsSeen)),
      ];
      break;
    case 'operator':
      publish = [
        ...common,
        ...getOnly(kvStream(r.budgetConfig)), ...usageBuckets(r).flatMap((b) => getOnly(kvStream(b))),
        `$KV.${r.budgetConfig}.limits`, ...usageBuckets(r).map((b) => `$KV.${b}.>`),
        // `tollgate tools approve|revoke` writes signed pin statements; authz verifies them.
        ...readStream(kvStream(r.pins)), ...readStream(kvStream(r.toolsSeen)), `$KV.${r.pins}.>`,
      ];
      break;
    case 'kube-operator':
      publish = [
        ...common,
        // Opens (never creates) the bundle buckets; writes bundle objects and prunes its old ones,
        // moves only the mcppolicy.* pointers: the control plane's own policy set stays its own.
        // Object names are encoded in subjects, so writes cannot be narrowed per key: a bundle it
        // overwrote would fail its signature and sha256 checks in authz.
        ...readStream(objStream(r.bundles)), ...readStream(kvStream(r.pointer)),
        `$O.${r.bundles}.>`, `$JS.API.STREAM.PURGE.${objStream(r.bundles)}`,
        `$KV.${r.pointer}.${MCPPOLICY_POINTER_PREFIX}.>`,
        // TokenBudget definitions, and the usage it shows in status.
        ...getOnly(kvStream(r.budgetConfig)), ...usageBuckets(r).flatMap((b) => getOnly(kvStream(b))), `$KV.${r.budgetConfig}.${DEFINITIONS_KEY}`,
        // MCPServer status: tool definitions pending review.
        ...readStream(kvStream(r.pins)), ...readStream(kvStream(r.toolsSeen)),
      ];
      break;
  }
  return { user: spiffeId, role, publish, subscribe: [`${inboxPrefixFor(spiffeId)}.>`] };
}
