import { z } from 'zod';
import { PROFILES } from './profiles.js';

/**
 * The identity settings issue 17 added to the authz config (`identity.profile`,
 * `identity.introspection`), as one zod schema; docs/identity.md documents each field.
 */
export const IdentityExtrasSchema = z.object({
  profile: z.enum(PROFILES).optional(),
  introspection: z.object({
    endpoint: z.string().url('must be the RFC 7662 introspection URL'),
    client_id: z.string().min(1).optional(),
    /** A mounted secret file, never the secret itself in the config (a ConfigMap). */
    client_secret_file: z.string().min(1).optional(),
    cache_max_entries: z.number().int().min(0).max(1_000_000).default(10_000),
    cache_ttl_sec: z.number().min(0).max(3600).default(30),
    timeout_ms: z.number().int().min(100).max(60_000).default(5000),
  }).strict().refine((v) => (v.client_id === undefined) === (v.client_secret_file === undefined), 'client_id and client_secret_file go together').optional(),
}).strict();

export type IdentityExtras = z.infer<typeof IdentityExtrasSchema>;

/** Parses the extra fields out of the `identity` mapping; the message names the field. */
export function parseIdentityExtras(raw: Record<string, unknown>): IdentityExtras {
  const r = IdentityExtrasSchema.safeParse(raw);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw new Error(`identity.${i.path.map(String).join('.')}: ${i.message}`);
}
