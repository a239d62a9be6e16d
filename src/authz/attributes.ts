import { toPluginJson } from '../envoy/plugin-json.js';
import type { JsonObject } from '../envoy/protojson.js';
import type { HttpRequestView } from './view.js';

/**
 * `input.attributes`: the CheckRequest's AttributeContext written as JSON the way opa-envoy-plugin writes it, which is
 * what opa-envoy-plugin gives its policies (lowerCamelCase: `socketAddress`, `contextExtensions`,
 * `rawBody` in base64, `time` as RFC 3339), so a policy written for that plugin reads the same
 * fields here. test/fixtures/opa-envoy-input holds the plugin's own output for comparison.
 *
 * In "tollgate" mode the body and the credential headers are left out (the body arrives parsed in
 * input.parsed_body, the identity verified in input.identity): every byte less is a byte the WASM
 * does not parse on each call, and a credential the policy never needs cannot leak from it.
 */

type Plain = Record<string, unknown>;

function asPlain(v: unknown): Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Plain) : {};
}

function socketAddress(hostPort: string): Plain | null {
  if (!hostPort) return null;
  const i = hostPort.lastIndexOf(':');
  const port = i > 0 ? Number(hostPort.slice(i + 1)) : 0;
  return { socketAddress: { address: i > 0 ? hostPort.slice(0, i) : hostPort, portValue: Number.isInteger(port) ? port : 0 } };
}

/** The decoded form Envoy would have sent, for views that did not come from a CheckRequest. */
function decodedFromView(req: HttpRequestView): Plain {
  return {
    source: { address: socketAddress(req.source.address), principal: req.source.principal },
    destination: { address: socketAddress(req.destination.address), principal: req.destination.principal },
    request: {
      http: {
        id: req.id, method: req.method, path: req.path, host: req.host, scheme: req.scheme, protocol: req.protocol,
        query: '', headers: req.headers, size: String(req.body.length), rawBody: req.body,
      },
    },
    contextExtensions: req.context,
  };
}

/**
 * `headers` are the ones the input carries: all of them in "envoy" mode, without credentials in
 * "tollgate" mode. `compat` ("envoy" mode) keeps `body`/`rawBody` and Envoy's raw `headerMap`.
 */
export function attributesInput(req: HttpRequestView, headers: Record<string, string>, compat: boolean): JsonObject {
  const decoded = req.checkAttributes !== undefined ? asPlain(req.checkAttributes) : decodedFromView(req);
  const request = asPlain(decoded.request);
  const http = asPlain(request.http);
  // Replaced before encoding, so a body left out is never base64-encoded first.
  const trimmed = { ...http, headers, ...(compat ? {} : { body: '', rawBody: undefined, headerMap: undefined }) };
  return toPluginJson('envoy.service.auth.v3.AttributeContext', { ...decoded, request: { ...request, http: trimmed } });
}
