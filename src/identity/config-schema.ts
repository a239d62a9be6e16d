import { z } from 'zod';
import { PROFILES } from './profiles.js';

/**
 * The identity settings issue 17 added to the authz config (`identity.profile`,
 * `identity.introspection`), as one zod schema; docs/identity.md documents each field.
 */
export const IdentityExtrasSchema = z.object({
  profile: z.enum(PROFILES).optional(),
}).strict();

export type IdentityExtras = z.infer<typeof IdentityExtrasSchema>;

/** Parses the extra fields out of the `identity` mapping; the message names the field. */
export function parseIdentityExtras(raw: Record<string, unknown>): IdentityExtras {
  const r = IdentityExtrasSchema.safeParse(raw);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw new Error(`identity.${i.path.map(String).join('.')}: ${i.message}`);
}
