import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fromJSON, type Options as LoaderOptions, type PackageDefinition } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { TYPE_URL_PREFIX } from './types.js';

/**
 * Envoy's API protos, loaded from the copy that ships inside `@grpc/grpc-js-xds` (never vendored
 * here). One protobufjs Root is parsed once, lazily, and shared by everything that needs it:
 * the gRPC service definitions for ext_authz / ext_proc / ADS, and the message types used to pack
 * xDS resources into `google.protobuf.Any`.
 */

/** Files whose transitive imports make up every type Tollgate sends to or receives from Envoy. */
export const PROTO_FILES: readonly string[] = [
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
];

/**
 * How the gRPC service definitions (de)serialize messages. Handlers see and produce plain objects:
 * - `keepCase: false`: fields are lowerCamelCase (`okResponse`, `rawBody`, `responseNonce`);
 * - `enums: String`: enum values are their names (`'V3'`, `'Forbidden'`), numbers are accepted on input;
 * - `longs: String`: 64-bit integers are decimal strings;
 * - `bytes`: Buffers (e.g. `attributes.request.http.rawBody` when Envoy packs the body as bytes);
 * - `defaults: true`: absent scalars come out as their zero value, absent messages as null;
 * - `oneofs: true`: each oneof also gets a virtual property naming the member that is set.
 */
export const GRPC_LOADER_OPTIONS: Readonly<LoaderOptions> = Object.freeze({
  keepCase: false,
  enums: String,
  longs: String,
  defaults: true,
  oneofs: true,
});

export { TYPE_URL_PREFIX } from './types.js';

/** `type.googleapis.com/<full name>` for a message type name (with or without a leading dot). */
export function typeUrlOf(fullName: string): string {
  return TYPE_URL_PREFIX + fullName.replace(/^\./, '');
}

/** Where Envoy's protos and their dependencies live inside node_modules. */
export function protoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
}

/**
 * What authz itself needs: the two services Envoy calls it on. Their transitive imports are ~1/5
 * of PROTO_FILES; the rest (listener, cluster, route, HCM, TLS, ADS) is the control plane's xDS
 * vocabulary, which authz never sends. Loading only these keeps the full set out of every pod's
 * sidecar: measured 2026-12-05, the full set costs +7.8 MB of V8 heap and +15 MB of RSS in a bare
 * process, and authz holds it for its whole life (docs/performance.md, "Memory").
 */
export const AUTHZ_PROTO_FILES: readonly string[] = [
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/ext_proc/v3/external_processor.proto',
];

/** A Root of `files` and their transitive imports, resolved against Envoy's include dirs. */
function loadRoot(files: readonly string[]): protobuf.Root {
  const includeDirs = protoIncludeDirs();
  const root = new protobuf.Root();
  const fallback = root.resolvePath.bind(root);
  // google/protobuf/*.proto are not under includeDirs: protobufjs (with the descriptor set that
  // @grpc/proto-loader registers on import) supplies them, which the fallback resolver finds.
  root.resolvePath = (origin: string, target: string): string | null => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = join(dir, target);
      try {
        accessSync(candidate, constants.R_OK);
        return candidate;
      } catch {
        continue;
      }
    }
    return fallback(origin, target);
  };
  root.loadSync([...files], { keepCase: false });
  root.resolveAll();
  return root;
}

let cachedRoot: protobuf.Root | undefined;
let cachedAuthzRoot: protobuf.Root | undefined;
let cachedPackage: PackageDefinition | undefined;
let cachedAuthzPackage: PackageDefinition | undefined;

/** The parsed, fully resolved Root (field names lowerCamelCase, as protobufjs does by default). */
export function protoRoot(): protobuf.Root {
  cachedRoot ??= loadRoot(PROTO_FILES);
  return cachedRoot;
}

/** The Root of AUTHZ_PROTO_FILES only; the full one when it is loaded anyway (same types, one copy). */
function authzRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  cachedAuthzRoot ??= loadRoot(AUTHZ_PROTO_FILES);
  return cachedAuthzRoot;
}

/** The gRPC package definition for the loaded set, built from the same Root (see GRPC_LOADER_OPTIONS). */
export function grpcPackage(): PackageDefinition {
  cachedPackage ??= fromJSON(protoRoot().toJSON(), { ...GRPC_LOADER_OPTIONS });
  return cachedPackage;
}

/** The same for authz's two services only (see AUTHZ_PROTO_FILES). */
function authzPackage(): PackageDefinition {
  if (cachedPackage) return cachedPackage;
  cachedAuthzPackage ??= fromJSON(authzRoot().toJSON(), { ...GRPC_LOADER_OPTIONS });
  return cachedAuthzPackage;
}

function service(name: string, pkg: PackageDefinition = grpcPackage()): ServiceDefinition {
  const def = pkg[name];
  // A service entry is a map of method name → method definition; messages carry a `format` field.
  if (!def || 'format' in def) throw new Error(`${name} is not a gRPC service in the loaded protos`);
  return def as unknown as ServiceDefinition;
}

/** `envoy.service.auth.v3.Authorization` (method `Check`): what Envoy's ext_authz filter calls. */
export function authorizationService(): ServiceDefinition {
  return service('envoy.service.auth.v3.Authorization', authzPackage());
}

/** `envoy.service.ext_proc.v3.ExternalProcessor` (bidi method `Process`): Envoy's ext_proc filter. */
export function externalProcessorService(): ServiceDefinition {
  return service('envoy.service.ext_proc.v3.ExternalProcessor', authzPackage());
}

/** `envoy.service.discovery.v3.AggregatedDiscoveryService`: ADS, which Envoy's xDS client calls. */
export function aggregatedDiscoveryService(): ServiceDefinition {
  return service('envoy.service.discovery.v3.AggregatedDiscoveryService');
}

/**
 * A message type by full name (`envoy.config.listener.v3.Listener`). Looked up in authz's small
 * Root first, so decoding a CheckRequest's attributes never loads the xDS set; a name it lacks (an
 * Any in filter metadata, an xDS resource) loads the full set once and is looked up there.
 */
export function messageType(fullName: string): protobuf.Type {
  const name = fullName.replace(/^\./, '');
  if (!cachedRoot) {
    const found = authzRoot().lookup(name);
    if (found instanceof protobuf.Type) return found;
  }
  return protoRoot().lookupType(name);
}
