import { strict as assert } from 'node:assert';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

export const echo = process.env.TOLLGATE_TEST_ECHO === '1';

// What these tests prove does not depend on latency: a generous ext_authz deadline keeps a loaded
// CI machine (a first JWKS fetch, a cold WASM) from turning into an Envoy timeout.
export const authzTimeoutMs = 5000;

/** For assert.rejects: a policy denial (-32003) whose message matches `reason`. */
export const refusedWith = (reason: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof McpError, `expected McpError, got ${String(e)}`);
  assert.equal(e.code, -32003, e.message);
  assert.match(e.message, reason);
  return true;
};
