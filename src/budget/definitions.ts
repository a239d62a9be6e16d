import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import { parseBudgetList, type BudgetSpec } from './config.js';
import { DEFINITIONS_KEY } from '../nats/budget-keys.js';

/**
 * Budget definitions published over NATS (the control plane writes them from TokenBudget
 * objects; authz replicas with `nats.definitions: true` apply them live). The wire format is the
 * budgets file's own list, inside an envelope:
 *
 *   { "revision": <int, only moves forward>, "budgets": [ {name, scope, limit, window, ...} ] }
 *
 * This module is the data-plane half: it reads and follows the key, and never trusts it more than
 * the file: a malformed or older publication is refused and the last good one stays in force.
 */

export { DEFINITIONS_KEY };

export interface PublishedDefinitions {
  revision: number;
  budgets: BudgetSpec[];
}

const dec = new TextDecoder();

/** Parses one publication; throws an Error naming the key and the field when it is malformed. */
export function parseDefinitions(bytes: Uint8Array, key = DEFINITIONS_KEY): PublishedDefinitions {
  let raw: unknown;
  try {
    raw = JSON.parse(dec.decode(bytes));
  } catch (e) {
    throw new Error(`${key}: not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${key}: must be an object with revision and budgets`);
  const o = raw as Record<string, unknown>;
  if (typeof o.revision !== 'number' || !Number.isSafeInteger(o.revision) || o.revision < 1) throw new Error(`${key}: revision must be a whole number ≥ 1`);
  return { revision: o.revision, budgets: parseBudgetList(o.budgets ?? [], key) };
}

export function encodeDefinitions(d: PublishedDefinitions): string {
  return JSON.stringify({ revision: d.revision, budgets: d.budgets });
}

/**
 * The budgets in force: the file's, then the published ones whose names the file does not use
 * (the file is the operator's local word and wins a clash, which `clashes` reports).
 */
export function mergeDefinitions(fromFile: readonly BudgetSpec[], published: readonly BudgetSpec[]): { budgets: BudgetSpec[]; clashes: string[] } {
  const names = new Set(fromFile.map((b) => b.name));
  const clashes = published.filter((b) => names.has(b.name)).map((b) => b.name);
  return { budgets: [...fromFile, ...published.filter((b) => !names.has(b.name))], clashes };
}

export interface DefinitionsFollower {
  /** The revision in force (0 before any publication). */
  readonly revision: number;
  stop(): Promise<void>;
}

export interface FollowOptions {
  key?: string;
  /** Called with each accepted publication, in revision order; awaited before the next one. */
  apply: (d: PublishedDefinitions) => Promise<void> | void;
  /** A publication that was refused (malformed, or not newer than the one in force). */
  rejected?: (problem: string) => void;
}

/**
 * Applies the current publication (awaited, so a starting authz enforces it from its first call)
 * and then every newer one the KV watch delivers.
 */
export async function followDefinitions(kv: KV, opts: FollowOptions): Promise<DefinitionsFollower> {
  const key = opts.key ?? DEFINITIONS_KEY;
  let revision = 0;
  const consider = async (e: KvEntry | null): Promise<void> => {
    if (!e) return;
    if (e.operation !== 'PUT') {
      // Deleting the key withdraws every published budget.
      if (revision > 0) {
        revision = 0;
        await opts.apply({ revision: 0, budgets: [] });
      }
      return;
    }
    let d: PublishedDefinitions;
    try {
      d = parseDefinitions(e.value, key);
    } catch (err) {
      opts.rejected?.(`${(err as Error).message}; the budgets published before stay in force`);
      return;
    }
    if (d.revision <= revision) {
      if (d.revision < revision) opts.rejected?.(`${key}: revision ${d.revision} is older than revision ${revision} in force`);
      return;
    }
    revision = d.revision;
    await opts.apply(d);
  };
  // Watch first, then read: an update between the two is seen by the watch, and the revision
  // check drops whatever arrives twice.
  const iter = await kv.watch({ key, include: KvWatchInclude.UpdatesOnly });
  try {
    await consider(await kv.get(key));
  } catch (e) {
    iter.stop();
    throw e;
  }
  const loop = (async () => {
    for await (const e of iter) await consider(e).catch((err: Error) => opts.rejected?.(`applying ${key}: ${err.message}`));
  })();
  return {
    get revision() { return revision; },
    async stop() {
      iter.stop();
      await loop.catch(() => undefined);
    },
  };
}
