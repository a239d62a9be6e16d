import type { PackedAny } from '../envoy/protojson.js';

/**
 * The ADS messages as the gRPC service definitions in src/envoy/protos.ts (de)serialize them
 * (lowerCamelCase, defaults filled in, enums as names). Only the fields Tollgate reads are typed.
 */

/** google.protobuf.Struct / Value as the loader decodes them (with `oneofs: true`). */
export interface StructMessage { fields?: Record<string, ValueMessage> }
export interface ValueMessage {
  kind?: string;
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage | null;
  listValue?: { values?: ValueMessage[] } | null;
}

export interface NodeMessage {
  id: string;
  cluster: string;
  metadata: StructMessage | null;
  userAgentName?: string;
  userAgentBuildVersion?: { version?: { majorNumber?: number; minorNumber?: number; patch?: number } | null } | null;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node: NodeMessage | null;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail: { code: number; message: string } | null;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: PackedAny[];
  typeUrl: string;
  nonce: string;
  controlPlane?: { identifier: string };
}

export type PlainJson = string | number | boolean | null | PlainJson[] | { [k: string]: PlainJson };

export function valueToJson(v: ValueMessage | undefined | null): PlainJson {
  if (!v) return null;
  const kind = v.kind ?? Object.keys(v).find((k) => k !== 'kind' && v[k as keyof ValueMessage] != null);
  switch (kind) {
    case 'numberValue': return v.numberValue ?? 0;
    case 'stringValue': return v.stringValue ?? '';
    case 'boolValue': return v.boolValue ?? false;
    case 'structValue': return structToJson(v.structValue);
    case 'listValue': return (v.listValue?.values ?? []).map(valueToJson);
    default: return null;
  }
}

/** A decoded google.protobuf.Struct as a plain object (node metadata). */
export function structToJson(s: StructMessage | undefined | null): { [k: string]: PlainJson } {
  const out: { [k: string]: PlainJson } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}
