import { strict as assert } from 'node:assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { decodeUsageState, type UsageState } from '../../../src/budget/lease.js';
import { usageKey } from '../../../src/budget/nats-store.js';
import { countValue } from '../../../src/budget/tokens.js';
import { windowAt } from '../../../src/budget/window.js';
import { authorizationService, externalProcessorService } from '../../../src/envoy/protos.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { freePort } from '../../../src/util/net.js';
import { NatsServer } from '../../../src/nats/server.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { selfCommand } from '../../../src/util/self.js';
import { projectRoot } from '../../../src/util/tools.js';
import { pause, tempDir, until } from './support.js';

/** CheckResponse as proto-loader decodes it (src/envoy/protos.ts options). */
interface CheckReply {
  status: { code: number };
  okResponse: { headers: Array<{ header: { key: string; value: string } }> } | null;
  deniedResponse: { body: string } | null;
}
interface CheckClient extends grpc.Client {
  Check(req: object, cb: (e: grpc.ServiceError | null, r: CheckReply) => void): void;
}
interface ProcClient extends grpc.Client {
  Process(): grpc.ClientDuplexStream<object, object>;
}

const AUDIENCE = 'http://127.0.0.1:10000/mcp';
const ARGS = { query: 'refund' };
const ARG_TOKENS = countValue(ARGS);
const LIMIT = 6000;
const WORKERS = 4; // calls in flight per replica
const LEASE_MAX = 400;

/**
 * Results the fake MCP server answers with: 1 to 45 words, i.e. results of RESULT_MIN..RESULT_MAX
 * tokens, counted here exactly as authz counts them.
 */
const RESULTS = Array.from({ length: 45 }, (_, i) => ({ content: [{ type: 'text', text: 'ledger '.repeat(i + 1).trim() }] }));
const RESULT_TOKENS = RESULTS.map((r) => countValue(r));
const RESULT_MAX = Math.max(...RESULT_TOKENS);

/** Deterministic pseudo-random numbers, so a run can be repeated. */
function rng(seed: number): () => number {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x; };
}

/** One `tollgate authz` process, and gRPC clients for its ext_authz and ext_proc services. */
class Replica {
  private constructor(readonly name: string, readonly proc: ManagedProcess, readonly port: number, private readonly checker: CheckClient, private readonly processor: ProcClient) {}

  static async start(name: string, args: { issuer: string; budgets: string; state: string }): Promise<Replica> {
    const port = await freePort();
    const self = selfCommand();
    mkdirSync(args.state, { recursive: true });
    // The config file names the replica, so its leases in NATS go by a known name. Given a config
    // file, authz also leaves its admin listener off unless told otherwise, rather than binding the
    // one default port that three replicas on one host would fight over.
    const config = join(args.state, 'authz.yaml');
    writeFileSync(config, `instance: ${name}\n`);
    const proc = await ManagedProcess.start(name, self.cmd, [
      ...self.args, 'authz', '--config', config, '--listen', `127.0.0.1:${port}`, '--policies', 'policies', '--issuer', args.issuer,
      '--audience', AUDIENCE, '--budgets', args.budgets, '--state', args.state,
    ], { cwd: projectRoot(), timeoutMs: 90_000, echo: process.env.TOLLGATE_TEST_ECHO === '1', readyPattern: /authz listening on[\s\S]*"policy loaded"|"policy loaded"[\s\S]*authz listening on/ });
    const target = `127.0.0.1:${port}`;
    const Check = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
    const Proc = grpc.makeGenericClientConstructor(externalProcessorService(), 'ExternalProcessor');
    return new Replica(name, proc, port, new Check(target, grpc.credentials.createInsecure()) as unknown as CheckClient, new Proc(target, grpc.credentials.createInsecure()) as unknown as ProcClient);
  }

  /** The name its leases go by in NATS (its instance id). */
  get replicaId(): string { return this.name; }

  /** A CheckRequest as the sidecar's Envoy builds it for a JSON-RPC tools/call. */
  check(token: string, id: number): Promise<CheckReply> {
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search_docs', arguments: ARGS } }));
    const headers = {
      ':authority': '127.0.0.1:10000', ':method': 'POST', ':path': '/mcp', ':scheme': 'http', 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-06-18',
      // One session per caller: authz binds a session to the identity that first uses it.
      'mcp-session-id': `e2e-session-${token.slice(-12)}`, 'x-request-id': `req-${this.name}-${id}`, 'content-length': String(body.length),
    };
    const req = {
      attributes: {
        source: { address: { socketAddress: { address: '127.0.0.1', portValue: 50000 } } },
        destination: { address: { socketAddress: { address: '127.0.0.1', portValue: 10000 } } },
        request: { http: { id: headers['x-request-id'], method: 'POST', path: '/mcp', host: '127.0.0.1:10000', scheme: 'http', protocol: 'HTTP/1.1', headers, rawBody: body, size: String(body.length) } },
        contextExtensions: { server: 'demo', namespace: 'default' },
      },
    };
    return new Promise((resolve, reject) => this.checker.Check(req, (e, r) => (e ? reject(e) : resolve(r))));
  }

  /**
   * Passes one response through ext_proc as Envoy does (request headers with the decision id,
   * response headers, the body in one chunk); resolves once the body was answered, i.e. the
   * client has the result.
   */
  respond(decisionId: string, id: number, result: unknown): Promise<void> {
    const stream = this.processor.Process();
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, result }));
    const h = (pairs: Record<string, string>) => ({ headers: Object.entries(pairs).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })) });
    const messages: object[] = [
      { requestHeaders: { headers: h({ ':method': 'POST', ':path': '/mcp', 'x-tollgate-decision-id': decisionId }), endOfStream: false } },
      { responseHeaders: { headers: h({ ':status': '200', 'content-type': 'application/json', 'content-length': String(body.length) }), endOfStream: false } },
      { responseBody: { body, endOfStream: true } },
    ];
    return new Promise((resolve, reject) => {
      let answered = 0;
      stream.on('data', () => {
        answered++;
        if (answered < messages.length) stream.write(messages[answered]!);
        else {
          stream.end();
          resolve();
        }
      });
      stream.on('error', reject);
      stream.write(messages[0]!);
    });
  }

  close(): void {
    this.checker.close();
    this.processor.close();
  }
}

type Outcome = { allowed: true; decisionId: string } | { allowed: false; code: number; message: string };

function outcome(r: CheckReply): Outcome {
  if (r.status.code === 0) {
    const id = r.okResponse?.headers.find((h) => h.header.key === 'x-tollgate-decision-id')?.header.value;
    assert.ok(id, 'an allowed call is tagged with its decision id');
    return { allowed: true, decisionId: id };
  }
  const err = (JSON.parse(r.deniedResponse!.body) as { error: { code: number; message: string } }).error;
  return { allowed: false, code: err.code, message: err.message };
}

/** Refusals that last: the budget is used up (or has less left than the call's arguments). */
const lasting = (o: Outcome): boolean => !o.allowed && o.code === -32004 && !/renewing its share/.test(o.message);

/**
 * Three `tollgate authz` replicas, separate processes, sharing one team budget in NATS JetStream
 * KV, driven as their Envoys would drive them: Check for every call, then the response through
 * ext_proc on the same replica.
 */
describe('three authz replicas (real processes) sharing a team budget over NATS', function () {
  this.timeout(90_000);
  let dir: string;
  let nats: NatsServer;
  let issuer: DevIssuer;
  let replicas: Replica[] = [];
  const bucket = 'e2e_usage';

  before(async () => {
    dir = tempDir('replicas-e2e');
    nats = await NatsServer.start();
    issuer = await DevIssuer.start({ port: 0, stateDir: join(dir, 'issuer') });
    const budgets = join(dir, 'budgets.yaml');
    writeFileSync(budgets, [
      'budgets:',
      `  - { name: payments-daily, scope: { team: payments }, limit: ${LIMIT}, window: day }`,
      `  - { name: support-daily, scope: { team: support }, limit: ${LIMIT}, window: day }`,
      'nats:',
      `  url: ${nats.url}`,
      `  bucket: ${bucket}`,
      '  configBucket: e2e_config',
      // Short leases and syncs, so that a dead replica's lease is written off within the test.
      `  lease: { fraction: 0.05, min: 100, max: ${LEASE_MAX}, ttl: 6s }`,
      '  syncInterval: 500ms',
      '',
    ].join('\n'));
    replicas = await Promise.all(['authz-1', 'authz-2', 'authz-3'].map((name) => Replica.start(name, { issuer: issuer.url, budgets, state: join(dir, name) })));
  });

  after(async () => {
    for (const r of replicas) {
      r.close();
      await r.proc.stop().catch(() => undefined);
    }
    await issuer?.close();
    await nats?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function entry(budget: string): Promise<UsageState> {
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).open(bucket);
      const e = await kv.get(usageKey(budget, windowAt('day', 'UTC', Date.now()).key));
      return decodeUsageState(e ? new TextDecoder().decode(e.value) : '{}');
    } finally {
      await nc.close();
    }
  }

  interface Load {
    /** Tokens the replicas charged for calls and results that were served (test-side count). */
    served: number;
    allowed: number[];
    renewing: number[];
    allowedAfterExhausted: number;
  }

  /**
   * WORKERS concurrent callers per live replica until every live replica refuses for good.
   * `onProgress` runs after every served call (the kill drill uses it).
   */
  async function drive(token: string, live: () => Replica[], onProgress: (load: Load) => void = () => undefined): Promise<Load> {
    const load: Load = { served: 0, allowed: [0, 0, 0], renewing: [0, 0, 0], allowedAfterExhausted: 0 };
    const done = [false, false, false];
    const exhausted = [false, false, false];
    let nextId = 0;
    const deadline = Date.now() + 45_000;
    const worker = async (ri: number, seed: number): Promise<void> => {
      const rnd = rng(seed);
      const rep = replicas[ri]!;
      while (Date.now() < deadline) {
        const alive = live();
        if (!alive.includes(rep) || alive.every((r) => done[replicas.indexOf(r)])) return;
        const id = ++nextId;
        let o: Outcome;
        try {
          o = outcome(await rep.check(token, id));
        } catch (e) {
          if (!live().includes(rep)) return; // killed under our feet
          throw e;
        }
        if (!o.allowed) {
          if (lasting(o)) {
            done[ri] = true;
            if (/is exhausted/.test(o.message)) exhausted[ri] = true;
          } else if (/renewing its share/.test(o.message)) {
            load.renewing[ri]!++;
          } else {
            assert.fail(`unexpected refusal: ${o.code} ${o.message}`);
          }
          await pause(20);
          continue;
        }
        if (exhausted[ri]) load.allowedAfterExhausted++;
        done[ri] = false;
        load.allowed[ri]!++;
        load.served += ARG_TOKENS;
        const k = rnd() % RESULTS.length;
        try {
          await rep.respond(o.decisionId, id, RESULTS[k]);
        } catch (e) {
          if (!live().includes(rep)) return; // the response died with the replica: not served
          throw e;
        }
        load.served += RESULT_TOKENS[k]!;
        onProgress(load);
      }
    };
    await Promise.all(replicas.flatMap((_, ri) => Array.from({ length: WORKERS }, (_, w) => worker(ri, ri * 100 + w + 1))));
    assert.ok(live().every((r) => done[replicas.indexOf(r)]), `every live replica reached the end of the budget within the deadline (done: ${done.join(', ')})`);
    return load;
  }

  /** Every live replica refuses a fresh call, again and again across several syncs. */
  async function allRefuse(token: string, live: Replica[]): Promise<void> {
    for (const r of live) await until(async () => lasting(outcome(await r.check(token, 1))), `${r.name} to refuse`);
    for (let round = 0; round < 6; round++) {
      for (const r of live) {
        const o = outcome(await r.check(token, 1));
        assert.ok(lasting(o), `${r.name} refuses after exhaustion: ${JSON.stringify(o)}`);
        assert.match((o as { message: string }).message, /budget "(payments|support)-daily" (is exhausted: \d+ of 6000 tokens used this day|has \d+ of 6000 tokens left this day, and this call's arguments alone count \d+); it resets at /);
      }
      await pause(250);
    }
  }

  it('end concurrent load within limit + one result per call in flight, and no replica allows once the budget is used up', async () => {
    const token = await issuer.mint({ sub: 'alice', team: 'payments', audience: AUDIENCE, ttlSec: 600 });
    const load = await drive(token, () => replicas);
    for (const n of load.allowed) assert.ok(n > 0, `every replica served calls: ${load.allowed.join('/')}`);
    assert.equal(load.allowedAfterExhausted, 0, 'no replica allowed a call after it had seen the budget exhausted');

    // Every token served is in the shared state once the replicas have reported (next syncs).
    const st = await until(async () => { const e = await entry('payments-daily'); return e.reported === load.served ? e : null; }, 'KV to hold every charged token');
    const bound = 3 * WORKERS * RESULT_MAX;
    assert.ok(st.reported <= LIMIT + bound, `charged ${st.reported} ≤ limit ${LIMIT} + ${3 * WORKERS} calls in flight × ${RESULT_MAX}-token results = ${LIMIT + bound}`);
    assert.ok(st.committed >= LIMIT - 3 * ARG_TOKENS, `the budget was used up (${st.reported} used, ${st.committed - st.reported} leased)`);
    await allRefuse(token, replicas);
    console.log(`      (charged ${st.reported} of ${LIMIT}; overshoot ${Math.max(0, st.reported - LIMIT)} ≤ ${bound}; calls ${load.allowed.join('/')}; lease-renewal refusals ${load.renewing.join('/')})`);
  });

  it('a replica SIGKILLed mid-load loses at most its lease, and the budget still ends within its bound', async () => {
    const token = await issuer.mint({ sub: 'sam', team: 'support', audience: AUDIENCE, ttlSec: 600 });
    const victim = replicas[2]!;
    let live = [...replicas];
    let killedAt = -1;
    const load = await drive(token, () => live, (l) => {
      if (killedAt < 0 && l.served >= LIMIT * 0.4) {
        killedAt = l.served;
        live = live.filter((r) => r !== victim);
        victim.proc.kill('SIGKILL');
      }
    });
    assert.ok(killedAt > 0, 'the victim died mid-load');
    await victim.proc.exited;
    victim.close();
    assert.ok(load.allowed[2]! > 0, 'the victim had served calls');

    // Its lease is never given back: it stays committed, as spent (the survivors count it as used).
    const st = await until(async () => { const e = await entry('support-daily'); return e.committed >= LIMIT - 2 * ARG_TOKENS ? e : null; }, 'the survivors to report', 30_000);
    const leased = st.committed - st.reported; // the dead lease, and the survivors' own

    const lost = Math.max(0, LIMIT - load.served);
    assert.ok(lost <= LEASE_MAX + 2 * ARG_TOKENS, `capacity lost to the crash (${lost}) ≤ the dead replica's lease (at most ${LEASE_MAX})`);
    const bound = 3 * WORKERS * RESULT_MAX;
    assert.ok(load.served <= LIMIT + bound, `served ${load.served} ≤ ${LIMIT + bound}`);
    await allRefuse(token, live);
    replicas = live;
    console.log(`      (killed at ${killedAt} tokens; leased ${leased}; served ${load.served} of ${LIMIT}, lost ${lost}; KV used ${st.reported}; calls ${load.allowed.join('/')})`);
  });
});
