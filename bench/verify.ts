import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../src/envoy/protos.js';
import type { BenchCall } from './calldata.js';

interface CheckReply { status?: { code?: number } | null; deniedResponse?: { status?: { code?: string | number } | null; body?: string } | null }
type CheckFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: CheckReply) => void) => void;

export interface DecisionCheck {
  /** Calls whose allow/deny matched the expectation. */
  matched: number;
  mismatches: string[];
}

/**
 * Sends every workload call once and compares allow/deny with what the example policy should
 * decide. Timing two engines only means something if they make the same decisions.
 */
export async function verifyDecisions(target: string, calls: readonly BenchCall[]): Promise<DecisionCheck> {
  const Client = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
  const client = new Client(target, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: CheckFn };
  const out: DecisionCheck = { matched: 0, mismatches: [] };
  try {
    for (const call of calls) {
      const reply = await new Promise<CheckReply>((resolve, reject) => {
        client.Check(call.message, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res ?? {})));
      });
      const allowed = (reply.status?.code ?? 0) === 0;
      if (allowed === call.allow) out.matched++;
      else {
        const detail = reply.deniedResponse ? ` (HTTP ${String(reply.deniedResponse.status?.code)}: ${(reply.deniedResponse.body ?? '').slice(0, 200)})` : '';
        out.mismatches.push(`${call.label}: expected ${call.allow ? 'allow' : 'deny'}, got ${allowed ? 'allow' : 'deny'}${detail}`);
      }
    }
  } finally {
    client.close();
  }
  return out;
}
