import { z } from 'zod';
import { PROFILES } from './profiles.js';
import type { UpstreamCredentialsConfig } from './upstream-credentials.js';
import { fieldDoc as doc, strictMapping } from '../config/schema.js';

/**
 * The identity settings issue 17 added to the authz config (`identity.profile`,
 * `identity.introspection`), as one zod schema; docs/identity.md documents each field, and the
 * table in docs/configuration.md is generated from the metadata below.
 */
export const IdentityExtrasSchema = strictMapping({
  profile: z.enum(PROFILES, { error: `must be one of ${PROFILES.join(', ')}` }).optional(),
  introspection: strictMapping({
    endpoint: z.string().url('must be the RFC 7662 introspection URL').meta(doc('required', 'RFC 7662 introspection URL')),
    client_id: z.string().min(1).optional().meta(doc('none', 'client authentication (HTTP Basic); with `client_secret_file`')),
    /** A mounted secret file, never the secret itself in the config (a ConfigMap). */
    client_secret_file: z.string().min(1).optional().meta(doc('none', 'mounted file holding the client secret (never the secret itself)')),
    cache_max_entries: z.number().int().min(0).max(1_000_000).default(10_000).meta(doc('10000', 'answers kept (by token digest), oldest out first')),
    cache_ttl_sec: z.number().min(0).max(3600).default(30).meta(doc('30', 'an active answer is reused this long at most: how late a revocation bites')),
    timeout_ms: z.number().int().min(100).max(60_000).default(5000).meta(doc('5000', 'wait for the introspection endpoint')),
  }).refine((v) => (v.client_id === undefined) === (v.client_secret_file === undefined), 'client_id and client_secret_file go together').optional(),
});

export type IdentityExtras = z.infer<typeof IdentityExtrasSchema>;

/** authz config `upstream_credentials` (docs/identity.md, "Per-call upstream credentials"). */
export const UpstreamCredentialsSchema = strictMapping({
  key_file: z.string().min(1).meta(doc('required', 'PKCS#8 PEM signing key, a mounted secret')),
  alg: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256').meta(doc('`ES256`', '`ES256`, `RS256` or `EdDSA`')),
  issuer: z.string().min(1).meta(doc('required', '`iss` of the credentials')),
  audience: z.string().min(1).meta(doc('required', '`aud`: the upstream')),
  ttl_sec: z.number().int().min(30).max(3600).default(300).meta(doc('300', 'lifetime (30–3600)')),
  renew_before_sec: z.number().int().min(0).max(3000).default(60).meta(doc('60', 'a cached credential is replaced this long before it expires')),
  cache_max_entries: z.number().int().min(0).max(1_000_000).default(10_000).meta(doc('10000', 'callers holding a credential at once')),
}).refine((v) => v.ttl_sec > v.renew_before_sec, 'ttl_sec must be longer than renew_before_sec');

/** The checked `upstream_credentials` mapping in the authz config's own (camelCase) terms. */
export function toUpstreamCredentials(v: z.output<typeof UpstreamCredentialsSchema>): UpstreamCredentialsConfig {
  return { keyFile: v.key_file, alg: v.alg, issuer: v.issuer, audience: v.audience, ttlSec: v.ttl_sec, renewBeforeSec: v.renew_before_sec, cacheMaxEntries: v.cache_max_entries };
}
