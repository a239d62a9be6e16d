/**
 * Names of the budget KV state that the NATS permissions grant access to. They live here, below
 * budget/, so that nats/permissions.ts can name them without importing the budget module (which
 * itself imports nats/); budget/ re-exports them for its own users.
 */

/** The usage bucket of one region under `scope: region`. */
export function regionalBucket(bucket: string, region: string): string {
  return `${bucket}_${region}`;
}

/** Key in the budget config bucket under which the control plane publishes budget definitions. */
export const DEFINITIONS_KEY = 'definitions';
