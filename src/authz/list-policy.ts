import type { PolicyHolder } from '../policy/holder.js';
import type { PolicyInput } from '../contract/policy.js';
import type { JsonRpcMessage } from '../mcp/jsonrpc.js';
import { listingCallInput } from './input.js';
import type { ListedItem } from './extproc.js';
import type { PendingCall } from './pending.js';
import type { PinInput } from '../pins/store.js';
import { scanText, type Finding } from '../pins/scan.js';

/**
 * Which listed tools, prompts and resources a caller may see: the policy in force is asked, as
 * that caller, whether it would allow the call the item stands for (tools/call of a tool,
 * prompts/get of a prompt, resources/read of a resource), with `input.mcp.listing = true` so
 * argument constraints stay out of it (a listing has no arguments to check).
 *
 * The question is asked on a copy of the policy input of the list request itself (Check keeps it
 * in `PendingCall.listInput`), so identity, server, budgets and the request fields are exactly
 * what Check saw. Only `input.mcp` changes; `request`, `attributes` and `parsed_body` still
 * describe the list request, which is what actually went over the wire.
 *
 * Fails closed: without the list request's input, without a policy, or if evaluation throws, the
 * item is hidden. A caller who cannot be judged must not learn what the server offers.
 *
 * No cache: the input carries the time and the caller's budget standing, which a policy may use
 * (hide expensive tools when a budget is nearly spent), and one WASM evaluation per item is cheap
 * next to the round trip that brought the list.
 */
export function policyListFilter(holder: PolicyHolder, pins: ((server: string, tool: string) => PinInput) | null = null): (call: PendingCall, item: ListedItem) => boolean {
  return (call, item) => {
    const base = call.listInput;
    const policy = holder.get();
    if (!base || !policy) return false;
    const input = listingInput(base, item, pins);
    if (!input) return false;
    try {
      return policy.evaluate(input).allow === true;
    } catch {
      // evaluate() is documented never to throw; should one ever, the item stays hidden.
      return false;
    }
  };
}

/**
 * The policy input of the question asked for one listed item: the list request's input with
 * `input.mcp` describing the call the item stands for (built by authz/input.ts, the one input
 * builder). Null when the item cannot be judged. The policy toolkit asks the same question for
 * scenario cases with `listed:`.
 */
export function listingInput(base: PolicyInput, item: ListedItem, pins: ((server: string, tool: string) => PinInput) | null = null): PolicyInput | null {
  // The call keeps the list request's id: the question is asked on that request's behalf.
  const id = base.mcp.id;
  const call = (method: string, params: Record<string, unknown>): JsonRpcMessage => ({ kind: 'request', id, method, params });
  switch (item.kind) {
    case 'tool':
      if (!item.name) return null;
      return listingCallInput(base, call('tools/call', { name: item.name }), {
        annotations: item.annotations ?? null,
        // The list being filtered was observed before filtering, so this is the status of what it offers.
        ...(pins ? { pin: pins(base.mcp.server, item.name) } : {}),
      });
    case 'prompt':
      if (!item.name) return null;
      return listingCallInput(base, call('prompts/get', { name: item.name }), { annotations: null, ...describedFindings(item, pins) });
    case 'resource':
    case 'resourceTemplate':
      // A template is judged by its uriTemplate, so a policy matching URI prefixes covers both.
      if (!item.uri) return null;
      return listingCallInput(base, call('resources/read', { uri: item.uri }), { annotations: null, ...describedFindings(item, pins) });
    default:
      return null;
  }
}

/**
 * Scanner findings on a listed prompt's or resource's title and description (input.mcp.findings),
 * when pinning (and so scanning) is on. Linear in the text, which ext_proc already holds.
 */
function describedFindings(item: ListedItem, pins: unknown): { findings?: Finding[] } {
  if (!pins) return {};
  const texts = [item.raw.title, item.raw.description].filter((t): t is string => typeof t === 'string');
  return { findings: texts.flatMap((t) => scanText(t)) };
}
