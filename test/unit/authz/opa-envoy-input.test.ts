import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedInput } from '../../../src/authz/input.js';
import { toRequestView, type CheckRequestMsg } from '../../../src/authz/grpc-check.js';
import { parseMcpBody } from '../../../src/mcp/jsonrpc.js';
import { GRPC_LOADER_OPTIONS, messageType } from '../../../src/envoy/protos.js';
import { encodeProtoJson } from '../../../src/envoy/protojson.js';

/**
 * `--entrypoint envoy` promises opa-envoy-plugin policies run unmodified. golden.json is the input
 * the real plugin (v1.4.2-envoy) built for each CheckRequest in requests.json; regenerate it with
 * `make golden-envoy-input`. Each request goes through the same decoding and input building as a
 * Check from Envoy, and every key the plugin sets must come out identical.
 */
const dir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/opa-envoy-input');
const requests = JSON.parse(readFileSync(join(dir, 'requests.json'), 'utf8')) as Array<{ name: string; request: unknown }>;
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Record<string, Record<string, unknown>>;

function decoded(request: unknown): CheckRequestMsg {
  const type = messageType('envoy.service.auth.v3.CheckRequest');
  return type.toObject(type.decode(encodeProtoJson('envoy.service.auth.v3.CheckRequest', request)), GRPC_LOADER_OPTIONS) as CheckRequestMsg;
}

function inputFor(request: unknown, mode: 'envoy' | 'tollgate'): Record<string, unknown> {
  const view = toRequestView(decoded(request));
  const parsed = view.method === 'POST' ? parseMcpBody(view.body) : null;
  // Through JSON, as the WASM receives it.
  return JSON.parse(JSON.stringify(sharedInput(view, null, parsed?.ok ? parsed.value : null, 1, mode))) as Record<string, unknown>;
}

describe('the envoy-mode input is what opa-envoy-plugin builds (golden, from the real plugin)', () => {
  it('covers every fixture', () => {
    assert.deepEqual(requests.map((r) => r.name).sort(), Object.keys(golden).sort());
  });

  for (const { name, request } of requests) {
    it(`${name}: every key the plugin sets is identical`, () => {
      const ours = inputFor(request, 'envoy');
      const theirs = golden[name]!;
      for (const key of Object.keys(theirs)) assert.deepEqual(ours[key], theirs[key], `input.${key} differs`);
    });
  }

  it('tollgate mode has the same attribute shape without the body or credentials', () => {
    const first = requests[0]!;
    const ours = inputFor(first.request, 'tollgate');
    const theirs = golden[first.name]!;
    const http = (a: unknown) => (a as { request: { http: Record<string, unknown> } }).request.http;
    const { rawBody: _b, headers: theirHeaders, ...rest } = http(theirs.attributes);
    const { headers: ourHeaders, ...ourRest } = http(ours.attributes);
    assert.deepEqual(ourRest, rest);
    assert.equal((ourHeaders as Record<string, string>).authorization, undefined);
    assert.deepEqual(Object.keys(ourHeaders as object).sort(), Object.keys(theirHeaders as object).filter((k) => k !== 'authorization').sort());
    assert.deepEqual((ours.attributes as Record<string, unknown>).source, (theirs.attributes as Record<string, unknown>).source);
    assert.equal(ours.version, 1);
  });
});
