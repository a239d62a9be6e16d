import { HOST_BUILTIN_NAMES } from './builtins.js';

/**
 * Which Rego builtins a policy compiled to WebAssembly can call, and who supplies each one.
 *
 * `opa build -t wasm` (OPA 1.22) compiles the builtins below into the module itself (the map
 * `builtinsFunctions` in OPA's internal/compiler/wasm). Every other builtin a policy calls becomes
 * an import that the host must answer at evaluation time; the JS SDK answers a few, Tollgate
 * answers the ones in builtins.ts. Anything else would fail on the request path with "not
 * implemented", so the build refuses it up front (see build.ts, capabilities).
 */
export const WASM_NATIVE_BUILTINS: readonly string[] = [
  // operators and comparison (eq/assign are compiled out by the planner)
  'eq', 'assign', 'equal', 'neq', 'gt', 'gte', 'lt', 'lte',
  'plus', 'minus', 'mul', 'div', 'rem', 'abs', 'round', 'ceil', 'floor',
  'and', 'or', 'intersection', 'union',
  'array.concat', 'array.flatten', 'array.reverse', 'array.slice',
  'is_number', 'is_string', 'is_boolean', 'is_array', 'is_set', 'is_object', 'is_null', 'type_name',
  'bits.or', 'bits.and', 'bits.negate', 'bits.xor', 'bits.lsh', 'bits.rsh',
  'count', 'sum', 'product', 'max', 'min', 'sort', 'all', 'any',
  'base64.is_valid', 'base64.decode', 'base64.encode', 'base64url.encode', 'base64url.decode',
  'net.cidr_contains', 'net.cidr_overlap', 'net.cidr_intersects',
  'glob.match',
  'json.marshal', 'json.unmarshal', 'json.is_valid', 'json.remove', 'json.filter',
  'object.filter', 'object.get', 'object.keys', 'object.remove', 'object.union', 'object.union_n',
  'concat', 'format_int', 'indexof', 'substring', 'lower', 'upper', 'contains', 'startswith', 'endswith',
  'strings.reverse', 'split', 'replace', 'strings.replace_n',
  'trim', 'trim_left', 'trim_prefix', 'trim_right', 'trim_suffix', 'trim_space',
  'internal.template_string', 'numbers.range', 'to_number', 'walk', 'graph.reachable',
  'regex.is_valid', 'regex.match', 're_match', 'regex.find_all_string_submatch_n',
  'internal.member_2', 'internal.member_3',
];

/** Implemented by @open-policy-agent/opa-wasm itself (src/builtins). */
export const SDK_BUILTINS: readonly string[] = ['json.is_valid', 'sprintf', 'regex.split', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal'];

/**
 * Resolved by the compiler before planning (metadata is constant-folded, print calls are dropped
 * unless built with --wasm-include-print, which Tollgate never does).
 */
export const COMPILE_TIME_BUILTINS: readonly string[] = ['print', 'internal.print', 'rego.metadata.chain', 'rego.metadata.rule'];

/** Builtins a Tollgate policy may call: native, SDK, host and compile-time ones. */
export function supportedBuiltins(): ReadonlySet<string> {
  return new Set([...WASM_NATIVE_BUILTINS, ...SDK_BUILTINS, ...COMPILE_TIME_BUILTINS, ...HOST_BUILTIN_NAMES]);
}

/** Builtins the host must answer at evaluation time (the SDK's plus ours). */
export function hostAnsweredBuiltins(): ReadonlySet<string> {
  return new Set([...SDK_BUILTINS, ...HOST_BUILTIN_NAMES]);
}
