import { AuthError } from './types.js';

/** Longer than any sane JWT; refusing earlier keeps a hostile header from reaching the JSON parser. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token. One token only, so a comma-joined pair of
// Authorization headers ("Bearer a,Bearer b") does not match.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token in an `Authorization: Bearer <token>` header value. */
export function bearerToken(headerValue: string | undefined): string {
  const value = headerValue?.trim() ?? '';
  if (value === '') throw new AuthError('missing_token', 'no bearer token: send "Authorization: Bearer <token>"');
  if (value.length > MAX_TOKEN_LENGTH + 16) {
    throw new AuthError('malformed_token', `Authorization header longer than ${MAX_TOKEN_LENGTH} bytes`);
  }
  const m = BEARER.exec(value);
  if (!m) {
    const scheme = /^\S+/.exec(value)?.[0] ?? '';
    const what = scheme.toLowerCase() === 'bearer' ? 'the bearer token has an invalid format (expected exactly one token)' : 'Authorization header is not "Bearer <token>"';
    throw new AuthError('malformed_token', what);
  }
  const token = m[1] as string;
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('malformed_token', `bearer token longer than ${MAX_TOKEN_LENGTH} bytes`);
  return token;
}
