/**
 * The one definition of a policy bundle revision, shared by the control plane that numbers bundles
 * and by authz that orders them. A revision is an integer from 1 to MAX_REVISION, written in
 * decimal without leading zeros. Anything else, whoever wrote it, is not a revision: a pointer
 * claiming 2^53−1 is refused by both sides, so it can neither be followed nor numbered from.
 */

/** Twelve digits: object names pad revisions to this width, and one publish a second lasts 31,000 years. */
export const MAX_REVISION = 999_999_999_999;
export const REVISION_DIGITS = 12;

export function isRevision(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_REVISION;
}

/** Numeric revision from a manifest revision string, or null when it is not one. */
export function parseRevision(s: string | null | undefined): number | null {
  if (typeof s !== 'string' || !/^[1-9]\d{0,11}$/.test(s)) return null;
  const n = Number(s);
  return isRevision(n) ? n : null;
}

export function revisionString(revision: number): string {
  if (!isRevision(revision)) throw new RangeError(`${revision} is not a bundle revision (1..${MAX_REVISION})`);
  return String(revision);
}

/** The revision after `n`; an error when the range is used up (it never silently wraps). */
export function nextRevision(n: number): number {
  if (n === 0) return 1;
  if (!isRevision(n)) throw new RangeError(`${n} is not a bundle revision (1..${MAX_REVISION})`);
  if (n === MAX_REVISION) throw new RangeError(`bundle revisions are used up at ${MAX_REVISION}`);
  return n + 1;
}

export function revisionDescription(): string {
  return `an integer from 1 to ${MAX_REVISION}`;
}
