import { isObject } from '../util/object.js';

/**
 * Where enterprise identity providers put groups, roles, tenant and the acting client in their
 * access tokens. A profile only says which claims to read; the values still go through the same
 * type checks as any claim (claims.ts), so a provider sending the wrong shape is refused, not
 * misread. docs/identity.md lists each profile with a token of that shape.
 */

export const PROFILES = ['generic', 'okta', 'entra', 'google', 'keycloak'] as const;
export type ProfileName = (typeof PROFILES)[number];

/** A claim path: nested object keys. `$azp` stands for the token's own `azp` value (Keycloak client roles). */
export type ClaimPath = readonly string[];

export interface ClaimProfile {
  /** Read in order and merged: group memberships. */
  groups: readonly ClaimPath[];
  /** Read in order and merged: roles (application / realm / client roles). */
  roles: readonly ClaimPath[];
  /** The tenant or organisation the user belongs to. */
  tenant: ClaimPath | null;
  /** The OAuth client acting, first present wins (after the configured agent claim). */
  agent: readonly string[];
}

const PROFILE_TABLE: Record<ProfileName, ClaimProfile> = {
  // Tollgate's own issuers and Hydra: `groups`, `roles`, the client in azp / client_id (RFC 9068).
  generic: { groups: [['groups']], roles: [['roles']], tenant: null, agent: ['azp', 'client_id'] },
  // Okta custom authorization server: `groups` (a groups claim the admin adds), `scp` as an array,
  // the client in `cid`.
  okta: { groups: [['groups']], roles: [], tenant: null, agent: ['cid', 'azp', 'client_id'] },
  // Microsoft Entra ID: `groups` (object IDs), app `roles`, tenant `tid`, `scp` space-delimited;
  // the client is `azp` in v2 tokens and `appid` in v1 tokens.
  entra: { groups: [['groups']], roles: [['roles']], tenant: ['tid'], agent: ['azp', 'appid'] },
  // Google Workspace ID tokens: no groups claim exists; the Workspace domain is `hd`, the client `azp`.
  google: { groups: [], roles: [], tenant: ['hd'], agent: ['azp'] },
  // Keycloak: `groups` with the group mapper ("/payments"), realm roles in realm_access.roles, the
  // client's own roles in resource_access.<client>.roles; the client is `azp`.
  keycloak: { groups: [['groups']], roles: [['realm_access', 'roles'], ['resource_access', '$azp', 'roles']], tenant: null, agent: ['azp'] },
};

export function claimProfile(name: ProfileName): ClaimProfile {
  return PROFILE_TABLE[name];
}

/** The value at a path, or undefined where any step is missing. Own properties only. */
export function readPath(payload: Record<string, unknown>, path: ClaimPath): unknown {
  let cur: unknown = payload;
  for (const raw of path) {
    const key = raw === '$azp' ? payload.azp : raw;
    if (typeof key !== 'string' || !isObject(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}

export function pathName(path: ClaimPath): string { return path.join('.'); }
