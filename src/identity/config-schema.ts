import { z } from 'zod';
import { PROFILES } from './profiles.js';
import type { UpstreamCredentialsConfig } from './upstream-credentials.js';

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

/** The first problem zod found, as "<where>.<field path>: <message>". */
export function firstIssue(where: string, error: z.ZodError): Error {
  const i = error.issues[0]!;
  const at = [where, ...i.path.map(String)].filter((x) => x !== '').join('.');
  return new Error(at ? `${at}: ${i.message}` : i.message);
}

/** Parses the extra fields out of the `identity` mapping; the message names the field. */
export function parseIdentityExtras(raw: Record<string, unknown>): IdentityExtras {
  const r = IdentityExtrasSchema.safeParse(raw);
  if (r.success) return r.data;
  throw firstIssue('identity', r.error);
}

/** authz config `upstream_credentials` (docs/identity.md, "Per-call upstream credentials"). */
export const UpstreamCredentialsSchema = z.object({
  key_file: z.string().min(1),
  alg: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256'),
  issuer: z.string().min(1),
  audience: z.string().min(1),
  ttl_sec: z.number().int().min(30).max(3600).default(300),
  renew_before_sec: z.number().int().min(0).max(3000).default(60),
  cache_max_entries: z.number().int().min(0).max(1_000_000).default(10_000),
}).strict().refine((v) => v.ttl_sec > v.renew_before_sec, 'ttl_sec must be longer than renew_before_sec');

export function parseUpstreamCredentials(raw: unknown): UpstreamCredentialsConfig {
  const r = UpstreamCredentialsSchema.safeParse(raw);
  if (!r.success) throw firstIssue('upstream_credentials', r.error);
  const v = r.data;
  return { keyFile: v.key_file, alg: v.alg, issuer: v.issuer, audience: v.audience, ttlSec: v.ttl_sec, renewBeforeSec: v.renew_before_sec, cacheMaxEntries: v.cache_max_entries };
}
