/**
 * Request headers that carry a caller's credentials (lower-case). Tollgate-mode policy input
 * leaves them out, and the decision log erases them (plus `set-cookie`, a response's) wherever a
 * record holds headers. One list, so the two cannot drift apart.
 */
export const CREDENTIAL_HEADERS: readonly string[] = Object.freeze(['authorization', 'proxy-authorization', 'cookie']);
