import { claimProfile, pathName, readPath, type ClaimPath, type ClaimProfile } from './profiles.js';
import { AuthError, type Identity, type IdentityConfig } from './types.js';
import { isObject } from '../util/object.js';

type Claims = Record<string, unknown>;
type Actor = Identity['delegation'][number];

/** Longer `act` chains are refused: nobody delegates that deep, and it bounds the work per token. */
export const MAX_DELEGATION_DEPTH = 16;

function bad(claim: string, problem: string): never {
  throw new AuthError('invalid_claims', `claim "${claim}" ${problem}`);
}

function requiredString(p: Claims, name: string): string {
  const v = p[name];
  if (typeof v !== 'string' || v === '') bad(name, 'must be a non-empty string');
  return v;
}

function optionalString(p: Claims, name: string): string | null {
  const v = p[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') bad(name, 'must be a string');
  return v;
}

function stringArray(p: Claims, name: string): string[] | null {
  const v = p[name];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(name, 'must be an array of strings');
  return v as string[];
}

/** `scope` is space-delimited (RFC 8693 §4.2); `scp` is an array (Okta) or space-delimited (Entra ID). */
function scopeList(p: Claims, name: 'scope' | 'scp'): string[] {
  const v = p[name];
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
  if (name === 'scope') bad(name, 'must be a space-separated string');
  return stringArray(p, name) ?? [];
}

function audience(p: Claims): string[] {
  const v = p.aud;
  if (typeof v === 'string') return [v];
  const list = stringArray(p, 'aud');
  if (!list || list.length === 0) bad('aud', 'must be a string or a non-empty array of strings');
  return list;
}

/** The agent acting: the configured claim, else the profile's client claims (e.g. `azp`, RFC 9068 `client_id`). */
function agent(p: Claims, claim: string, profile: ClaimProfile): string | null {
  for (const name of [claim, ...profile.agent]) {
    const v = optionalString(p, name);
    if (v !== null) return v;
  }
  return null;
}

/** Strings at each path that is present, merged in order without repeats. */
function listsAt(p: Claims, paths: readonly ClaimPath[]): string[] {
  const out = new Set<string>();
  for (const path of paths) {
    const v = readPath(p, path);
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(pathName(path), 'must be an array of strings');
    for (const x of v as string[]) out.add(x);
  }
  return [...out];
}

function stringAt(p: Claims, path: ClaimPath | null): string | null {
  if (path === null) return null;
  const v = readPath(p, path);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') bad(pathName(path), 'must be a string');
  return v;
}

/** RFC 8693 §4.1: the outermost `act` is the current actor; each nested `act` is the one before it. */
export function delegationChain(p: Claims): Actor[] {
  const chain: Actor[] = [];
  let act: unknown = p.act;
  let path = 'act';
  while (act !== undefined && act !== null) {
    if (!isObject(act)) bad(path, 'must be an object');
    if (chain.length === MAX_DELEGATION_DEPTH) bad(path, `nests deeper than ${MAX_DELEGATION_DEPTH} actors`);
    const { act: next, ...actor } = act;
    if (actor.sub !== undefined && typeof actor.sub !== 'string') bad(`${path}.sub`, 'must be a string');
    chain.push(actor as Actor);
    act = next;
    path += '.act';
  }
  return chain;
}

/**
 * Maps the payload of an already verified JWT to an Identity. Claims of the wrong type are refused
 * rather than ignored, since a policy that reads `team` must not see null because of a typo upstream.
 */
export function identityFromClaims(payload: Claims, names: IdentityConfig['claims'], profile: ClaimProfile = claimProfile('generic')): Identity {
  const exp = payload.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) bad('exp', 'must be a number (seconds since epoch)');
  const scopes = [...new Set([...scopeList(payload, 'scope'), ...scopeList(payload, 'scp')])];
  return {
    sub: requiredString(payload, 'sub'),
    iss: requiredString(payload, 'iss'),
    aud: audience(payload),
    team: optionalString(payload, names.team),
    groups: listsAt(payload, [[names.groups], ...profile.groups]),
    roles: listsAt(payload, profile.roles),
    tenant: stringAt(payload, profile.tenant),
    agent: agent(payload, names.agent, profile),
    scopes,
    delegation: delegationChain(payload),
    expiresAt: exp,
    claims: payload,
  };
}
