import protobuf from 'protobufjs';
import { messageType, TYPE_URL_PREFIX } from './protos.js';

/**
 * Encodes Envoy configuration written in proto3 JSON (the form Envoy reads from a bootstrap file:
 * snake_case or lowerCamelCase keys, `"5s"` durations, plain values for wrapper types, plain
 * objects for Struct, `"@type"` inside Any) into protobuf messages.
 *
 * protobufjs' own `fromObject` silently drops unknown keys and does not understand the JSON forms
 * of well-known types; a dropped field in a security filter is a silent misconfiguration, so this
 * converter walks the schema and throws on anything it does not recognise.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject { [key: string]: JsonValue }

/**
 * google.protobuf.Any as protobufjs and @grpc/proto-loader take it. protobufjs defines Any itself
 * with the field spelled `type_url`, whatever the keepCase option, so it is snake_case here too.
 */
export interface PackedAny { type_url: string; value: Uint8Array }

export class ProtoJsonError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'ProtoJsonError';
  }
}

type Plain = Record<string, unknown>;

const WRAPPERS = new Set([
  '.google.protobuf.DoubleValue', '.google.protobuf.FloatValue', '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value', '.google.protobuf.Int32Value', '.google.protobuf.UInt32Value',
  '.google.protobuf.BoolValue', '.google.protobuf.StringValue', '.google.protobuf.BytesValue',
]);

/** Types whose JSON form is not an object of fields: inside Any they sit under `"value"`. */
const SPECIAL_JSON = new Set([
  ...WRAPPERS, '.google.protobuf.Duration', '.google.protobuf.Timestamp', '.google.protobuf.Struct',
  '.google.protobuf.Value', '.google.protobuf.ListValue', '.google.protobuf.FieldMask', '.google.protobuf.Any',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function fail(path: string, message: string): never {
  throw new ProtoJsonError(path, message);
}

function durationFromJson(v: unknown, path: string): Plain {
  if (typeof v !== 'string') fail(path, `expected a duration string like "1.5s", got ${JSON.stringify(v)}`);
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (!m) fail(path, `invalid duration "${v}" (expected e.g. "30s" or "0.250s")`);
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  if (seconds > 315_576_000_000) fail(path, `duration "${v}" out of range`);
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: sign * seconds, nanos: sign * nanos };
}

/** RFC 3339 in UTC with up to nine fractional digits, as proto3 JSON writes a Timestamp. */
function timestampFromJson(v: unknown, path: string): Plain {
  if (typeof v !== 'string') fail(path, `expected a timestamp string like "2026-12-05T07:40:01Z", got ${JSON.stringify(v)}`);
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(v);
  const ms = m ? Date.parse(`${m[1]}Z`) : NaN;
  if (!m || Number.isNaN(ms)) return fail(path, `invalid timestamp "${v}" (expected RFC 3339 in UTC, e.g. "2026-12-05T07:40:01.5Z")`);
  return { seconds: ms / 1000, nanos: m[2] ? Number(m[2].padEnd(9, '0')) : 0 };
}

function structValueFromJson(v: unknown, path: string): Plain {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(path, 'non-finite number in Struct');
    return { numberValue: v };
  }
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: listFromJson(v, path) };
  if (isObject(v)) return { structValue: structFromJson(v, path) };
  return fail(path, `value of type ${typeof v} cannot go in a Struct`);
}

function listFromJson(v: unknown[], path: string): Plain {
  return { values: v.map((e, i) => structValueFromJson(e, `${path}[${i}]`)) };
}

function structFromJson(v: unknown, path: string): Plain {
  if (!isObject(v)) fail(path, 'expected an object for google.protobuf.Struct');
  const fields: Plain = {};
  for (const [k, e] of Object.entries(v)) fields[k] = structValueFromJson(e, `${path}.${k}`);
  return { fields };
}

function anyFromJson(v: unknown, path: string): PackedAny {
  if (!isObject(v)) fail(path, 'expected an object with "@type" for google.protobuf.Any');
  const url = v['@type'];
  if (typeof url !== 'string' || !url.includes('/')) fail(path, 'google.protobuf.Any needs "@type": "type.googleapis.com/<message>"');
  const name = url.slice(url.lastIndexOf('/') + 1);
  let type: protobuf.Type;
  try {
    type = messageType(name);
  } catch {
    return fail(path, `unknown type "${name}" in "@type" (not in the loaded Envoy protos)`);
  }
  const { ['@type']: _drop, ...rest } = v;
  const inner = SPECIAL_JSON.has(type.fullName) ? rest.value : rest;
  const plain = messageFromJson(type, inner, `${path}(${name})`);
  return { type_url: url, value: type.encode(type.fromObject(plain)).finish() };
}

function scalarFromJson(field: protobuf.Field, v: unknown, path: string): unknown {
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = field.resolvedType.values;
    if (typeof v === 'string' && v in values) return v;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    return fail(path, `invalid enum value ${JSON.stringify(v)} (one of ${Object.keys(values).join(', ')})`);
  }
  switch (field.type) {
    case 'string':
      if (typeof v !== 'string') fail(path, `expected a string, got ${JSON.stringify(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') fail(path, `expected true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) fail(path, 'expected base64 for bytes');
      return v;
    case 'double':
    case 'float':
      if (typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity') return v;
      return fail(path, `expected a number, got ${JSON.stringify(v)}`);
    case 'int64': case 'sint64': case 'sfixed64': case 'uint64': case 'fixed64': {
      const ok = (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
      if (!ok) fail(path, `expected an integer, got ${JSON.stringify(v)}`);
      if (field.type.startsWith('u') || field.type === 'fixed64') {
        if (String(v).startsWith('-')) fail(path, 'expected an unsigned integer');
      }
      return v;
    }
    default: {
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) fail(path, `expected an integer, got ${JSON.stringify(v)}`);
      const unsigned = field.type === 'uint32' || field.type === 'fixed32';
      const [lo, hi] = unsigned ? [0, 0xffffffff] : [-0x80000000, 0x7fffffff];
      if (n < lo || n > hi) fail(path, `${n} out of range for ${field.type}`);
      return n;
    }
  }
}

function valueFromJson(field: protobuf.Field, v: unknown, path: string): unknown {
  if (field.resolvedType instanceof protobuf.Type) return messageFromJson(field.resolvedType, v, path);
  return scalarFromJson(field, v, path);
}

function fieldByJsonKey(type: protobuf.Type, key: string): protobuf.Field | undefined {
  return type.fields[key] ?? type.fields[protobuf.util.camelCase(key)];
}

function messageFromJson(type: protobuf.Type, v: unknown, path: string): Plain | PackedAny {
  switch (type.fullName) {
    case '.google.protobuf.Any': return anyFromJson(v, path);
    case '.google.protobuf.Duration': return durationFromJson(v, path);
    case '.google.protobuf.Struct': return structFromJson(v, path);
    case '.google.protobuf.Value': return structValueFromJson(v, path);
    case '.google.protobuf.ListValue':
      if (!Array.isArray(v)) fail(path, 'expected an array for google.protobuf.ListValue');
      return listFromJson(v, path);
    case '.google.protobuf.Timestamp': return timestampFromJson(v, path);
    case '.google.protobuf.FieldMask':
      return fail(path, `${type.fullName} is not supported in Tollgate's resources`);
    default:
      break;
  }
  if (WRAPPERS.has(type.fullName)) {
    const inner = type.fields.value;
    if (!inner) fail(path, `malformed wrapper type ${type.fullName}`);
    return { value: scalarFromJson(inner, v, path) };
  }
  if (!isObject(v)) fail(path, `expected an object for ${type.fullName.slice(1)}, got ${JSON.stringify(v)}`);
  const out: Plain = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, raw] of Object.entries(v)) {
    const field = fieldByJsonKey(type, key);
    const at = `${path}.${key}`;
    if (!field) fail(at, `unknown field (not in ${type.fullName.slice(1)})`);
    if (raw === null || raw === undefined) continue;
    field.resolve();
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other !== undefined) fail(at, `oneof "${field.partOf.name}" already set by "${other}"`);
      oneofSeen.set(field.partOf.name, key);
    }
    if (field.map) {
      if (!isObject(raw)) fail(at, 'expected an object for a map field');
      const m: Plain = {};
      for (const [k, e] of Object.entries(raw)) m[k] = valueFromJson(field, e, `${at}.${k}`);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(raw)) fail(at, 'expected an array');
      out[field.name] = raw.map((e, i) => valueFromJson(field, e, `${at}[${i}]`));
    } else {
      out[field.name] = valueFromJson(field, raw, at);
    }
  }
  return out;
}

/** A protobufjs message of `typeName` built from its proto3 JSON form (throws ProtoJsonError). */
export function messageFromProtoJson(typeName: string, json: unknown): protobuf.Message {
  const type = messageType(typeName);
  return type.fromObject(messageFromJson(type, json, type.name));
}

/** Serialized bytes of `typeName` from its proto3 JSON form. */
export function encodeProtoJson(typeName: string, json: unknown): Uint8Array {
  const type = messageType(typeName);
  return type.encode(type.fromObject(messageFromJson(type, json, type.name))).finish();
}

/**
 * Packs a resource into google.protobuf.Any. Pass the JSON with its own `"@type"`, or a bare
 * message plus the type name (`envoy.config.listener.v3.Listener`).
 */
export function packAny(json: JsonObject, typeName?: string): PackedAny {
  if (typeName === undefined) return anyFromJson(json, 'resource');
  return anyFromJson({ ...json, '@type': TYPE_URL_PREFIX + typeName.replace(/^\./, '') }, 'resource');
}

/** Decodes Any back to a plain object with its `"@type"` (camelCase fields; for tests and diagnostics). */
export function unpackAny(any: PackedAny): Record<string, unknown> {
  const type = messageType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  return { '@type': any.type_url, ...type.toObject(type.decode(any.value), { enums: String, longs: String, json: true }) };
}
