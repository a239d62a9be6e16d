import { errors } from 'jose';
import { AuthError } from './types.js';

/** Attacker-controlled text going into messages and logs: quoted, and cut short. */
export function quote(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function isoTime(sec: unknown): string {
  return typeof sec === 'number' && Number.isFinite(sec) && Math.abs(sec) < 1e11 ? new Date(sec * 1000).toISOString() : quote(sec);
}

function claimFailure(e: errors.JWTClaimValidationFailed, expected: { issuer: string; audience: string[] }): AuthError {
  const { claim, reason, payload } = e;
  if (claim === 'iss') {
    return new AuthError('wrong_issuer', `token issued by ${quote(payload.iss)}, expected "${expected.issuer}"`);
  }
  if (claim === 'aud') {
    const what = reason === 'missing' ? 'has no audience' : `is for audience ${quote(payload.aud)}`;
    return new AuthError('wrong_audience', `token ${what}, expected one of ${quote(expected.audience)}: request a token for this resource`);
  }
  if (claim === 'nbf' && reason === 'check_failed') {
    return new AuthError('not_yet_valid', `token not valid before ${isoTime(payload.nbf)}: check the clocks`);
  }
  if (reason === 'missing') return new AuthError('invalid_claims', `token has no "${claim}" claim`);
  return new AuthError('invalid_claims', `claim "${claim}" is invalid: ${e.message}`);
}

/**
 * Classifies a failure from jose's jwtVerify. Anything unrecognised is still a refusal
 * (malformed_token), never a pass.
 */
export function authErrorFrom(e: unknown, expected: { issuer: string; audience: string[] }): AuthError {
  if (e instanceof AuthError) return e;
  if (e instanceof errors.JWTExpired) {
    return new AuthError('expired', `token expired at ${isoTime(e.payload.exp)}: get a new token`);
  }
  if (e instanceof errors.JWTClaimValidationFailed) return claimFailure(e, expected);
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) {
    return new AuthError('algorithm_not_allowed', `token signing algorithm is not accepted: ${e.message}`);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('bad_signature', 'token signature does not verify against the issuer\'s key');
  }
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('unknown_key', 'the issuer publishes no key matching the token\'s "kid" and "alg"');
  }
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) {
    return new AuthError('issuer_unavailable', `issuer keys could not be loaded: ${e.message}`);
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) {
    return new AuthError('malformed_token', `token is not a valid signed JWT: ${e.message}`);
  }
  return new AuthError('malformed_token', `token could not be verified: ${(e as Error)?.message ?? String(e)}`);
}
