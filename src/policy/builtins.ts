import { cryptoBuiltins } from './builtin-crypto.js';
import { jwtBuiltins } from './builtin-jwt.js';
import { sqlBuiltins } from './builtin-sql.js';
import { textBuiltins } from './builtin-text.js';
import { timeBuiltins } from './builtin-time.js';
import { EvalContext, wallClockNs, type Clock, type HostBuiltin } from './builtin-context.js';

/**
 * Host builtins: Rego builtins that `opa build -t wasm` leaves to the host and the JS SDK does not
 * implement. They are synchronous (the SDK calls them from inside the WASM) and receive their
 * arguments as plain JSON values (a Rego set arrives as an array).
 *
 * Semantics follow OPA's Go implementation. As in OPA without strict builtin errors, a builtin
 * that fails (bad argument, unparsable token, unknown time zone) makes the expression undefined
 * rather than aborting the query; the failure is kept in EvalContext.builtinErrors for tooling.
 */
export { EvalContext, wallClockNs, type Clock, type HostBuiltin };

/** Wraps one builtin so a failure becomes "undefined" (OPA's non-strict builtin error semantics). */
function guarded(name: string, fn: HostBuiltin, ctx: EvalContext): HostBuiltin {
  return (...args: unknown[]) => {
    try {
      return fn(...args);
    } catch (e) {
      ctx.recordError(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  };
}

/** The builtins Tollgate supplies to a policy, bound to one evaluation context. */
export function createHostBuiltins(ctx: EvalContext): Record<string, HostBuiltin> {
  const raw: Record<string, HostBuiltin> = {
    ...timeBuiltins(ctx),
    ...jwtBuiltins(ctx),
    ...cryptoBuiltins(),
    ...textBuiltins(),
    ...sqlBuiltins(),
  };
  const out: Record<string, HostBuiltin> = {};
  for (const [name, fn] of Object.entries(raw)) out[name] = guarded(name, fn, ctx);
  return out;
}

export const HOST_BUILTIN_NAMES: readonly string[] = Object.freeze(Object.keys(createHostBuiltins(new EvalContext())).sort());
