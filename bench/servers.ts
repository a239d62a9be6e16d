import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ManagedProcess } from '../src/util/process.js';
import { freePort, waitForPort } from '../src/util/net.js';
import { projectRoot } from '../src/util/tools.js';
import { selfCommand } from '../src/util/self.js';
import { AUTHZ_NODE_FLAGS } from '../src/authz/node-flags.js';
import { SERVER_CORE, startPinned } from './proc.js';
import { NatsServer } from '../src/nats/server.js';

/** The three ext_authz servers compared, each started the same way: its own process on SERVER_CORE. */
export type ServerKind = 'ceiling' | 'tollgate' | 'tollgate-nolog' | 'tollgate-budgets' | 'opa-envoy' | 'opa-envoy-jwt' | 'opa-envoy-log';

export const SERVER_KINDS: readonly ServerKind[] = ['ceiling', 'tollgate', 'opa-envoy', 'tollgate-nolog', 'tollgate-budgets', 'opa-envoy-jwt', 'opa-envoy-log'];

/**
 * The peer as users deploy it: `jwtAuthn` behind Envoy's jwt_authn filter (the policy only
 * decodes the token; verification is Envoy's, outside this measurement), `decisionLog` with
 * its console decision log on (one JSON line per decision, at info level).
 */
export interface PeerVariant { jwtAuthn: boolean; decisionLog: boolean }

export interface ServerUnderTest {
  kind: ServerKind;
  /** What the report calls it. */
  title: string;
  target: string;
  proc: ManagedProcess;
  /** Tollgate's admin endpoint (/metrics), when the server has one. */
  adminUrl?: string;
  /** What runs beside it for this configuration (the budgets' NATS server), stopped with it. */
  companions?: { dispose(): Promise<void> }[];
}

/** Stops a server and whatever was started for it. */
export async function stopServer(s: ServerUnderTest): Promise<void> {
  await s.proc.stop();
  for (const c of s.companions ?? []) await c.dispose();
}

/**
 * Token budgets as a team deploys them (docs/budgets.md): one per team of the workload, shared
 * through NATS leases (several replicas would share them), limits far above what a run spends so
 * that every decision stays the policy's. What the budgets cost is the tokenizer on every call's
 * arguments and the lease bookkeeping; Check never waits on NATS.
 */
function budgetsFile(natsUrl: string): string {
  return [
    'budgets:',
    ...['payments', 'support'].flatMap((team) => [
      `  - name: ${team}-daily`,
      `    scope: { team: ${team} }`,
      '    limit: 1000000000000',
      '    window: day',
    ]),
    'nats:',
    `  url: ${natsUrl}`,
    '',
  ].join('\n');
}

export interface IdentitySetup {
  issuerUrl: string;
  audience: string;
  /** The issuer's JWKS document (the peer verifies in Rego against it, as data). */
  jwks: unknown;
  algorithms: string[];
}

export interface ServerSetup {
  identity: IdentitySetup;
  server: string;
  namespace: string;
  /** Scratch space (decision logs, state, the peer's data file). */
  workDir: string;
  policiesDir: string;
  opaEnvoy: string;
  /** Extra node flags for the tollgate process (e.g. --cpu-prof). */
  nodeFlags?: string[];
  echo?: boolean;
}

/**
 * A sibling script of this file, runnable the way this process runs: the .ts source through tsx,
 * or the compiled .js under dist/.
 */
function siblingScript(name: string): { cmd: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const file = join(dirname(here), `${name}.${fromSource ? 'ts' : 'js'}`);
  return { cmd: process.execPath, args: fromSource ? ['--import', 'tsx', file] : [file] };
}

export async function startCeiling(s: ServerSetup): Promise<ServerUnderTest> {
  const port = await freePort();
  const script = siblingScript('noop-authz');
  const proc = await startPinned({
    name: 'ceiling', cmd: script.cmd, args: [...script.args, '--listen', `127.0.0.1:${port}`], core: SERVER_CORE,
    readyPattern: /noop authz listening on/, echo: s.echo,
  });
  return { kind: 'ceiling', title: 'ceiling (no-op grpc-js)', target: `127.0.0.1:${port}`, proc };
}

export async function startTollgate(s: ServerSetup, opts: { decisionLog: boolean; budgets?: boolean } = { decisionLog: true }): Promise<ServerUnderTest> {
  const port = await freePort();
  // Each instance needs its own admin port: two on the default 9464 (tollgate and tollgate-nolog
  // run side by side) made the second exit with EADDRINUSE right after its gRPC listener came up.
  // Kept on rather than "off" so the measured process is the one a pod runs, metrics included.
  const metricsPort = await freePort();
  const kind: ServerKind = opts.budgets ? 'tollgate-budgets' : opts.decisionLog ? 'tollgate' : 'tollgate-nolog';
  const state = join(s.workDir, kind);
  mkdirSync(state, { recursive: true });
  const nats = opts.budgets ? await NatsServer.start({ storeDir: join(state, 'nats') }) : null;
  if (nats) writeFileSync(join(state, 'budgets.yaml'), budgetsFile(nats.url));
  const self = selfCommand();
  const args = [
    // The flags every launcher gives authz (a pod's, the local mesh's), then the run's own (later wins).
    ...AUTHZ_NODE_FLAGS, ...(s.nodeFlags ?? []), ...self.args, 'authz',
    '--listen', `127.0.0.1:${port}`,
    '--policies', resolve(s.policiesDir),
    '--issuer', s.identity.issuerUrl,
    '--audience', s.identity.audience,
    '--server', s.server, '--namespace', s.namespace,
    '--state', state,
    '--metrics-listen', `127.0.0.1:${metricsPort}`,
    ...(opts.decisionLog ? ['--decision-log', join(state, 'decisions')] : ['--no-decision-log']),
    ...(nats ? ['--budgets', join(state, 'budgets.yaml')] : []),
  ];
  let proc: ManagedProcess;
  try {
    proc = await startPinned({
      name: kind, cmd: self.cmd, args, core: SERVER_CORE, readyPattern: /authz listening on/, cwd: projectRoot(), echo: s.echo,
    });
  } catch (e) {
    await nats?.dispose();
    throw e;
  }
  const title = opts.budgets ? 'tollgate, budgets over NATS leases' : opts.decisionLog ? 'tollgate authz' : 'tollgate (no decision log)';
  return { kind, title, target: `127.0.0.1:${port}`, proc, adminUrl: `http://127.0.0.1:${metricsPort}`, ...(nats ? { companions: [nats] } : {}) };
}

/** The peer's policy directory: bench/policies/envoy, found from source or from dist/. */
export function peerPolicyDir(name = 'envoy'): string {
  const dir = join(projectRoot(), 'bench', 'policies', name);
  if (!existsSync(dir)) throw new Error(`peer policy not found at ${dir}`);
  return dir;
}

/**
 * opa-envoy-plugin as its docs run it: `run --server` with the ext_authz gRPC plugin, the policy
 * and its data from files, decision logs off (the default: none configured), console logs at
 * error level so logging costs it nothing either.
 */
export async function startOpaEnvoy(s: ServerSetup, variant: PeerVariant = { jwtAuthn: false, decisionLog: false }): Promise<ServerUnderTest> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const kind: ServerKind = variant.jwtAuthn ? 'opa-envoy-jwt' : variant.decisionLog ? 'opa-envoy-log' : 'opa-envoy';
  const dataDir = join(s.workDir, `${kind}-data`);
  mkdirSync(dataDir, { recursive: true });
  const dataFile = join(dataDir, 'data.json');
  writeFileSync(dataFile, JSON.stringify({
    bench: {
      identity: {
        issuer: s.identity.issuerUrl,
        audience: s.identity.audience,
        // io.jwt.decode_verify takes a JWKS as a JSON string in its "cert" constraint.
        jwks: JSON.stringify(s.identity.jwks),
        algorithms: s.identity.algorithms,
        jwt_authn: variant.jwtAuthn,
      },
    },
  }));
  const args = [
    'run', '--server',
    '--addr', `127.0.0.1:${httpPort}`,
    // The console decision logger writes at info level: the logging variant needs it.
    '--log-level', variant.decisionLog ? 'info' : 'error',
    '--set', `plugins.envoy_ext_authz_grpc.addr=127.0.0.1:${grpcPort}`,
    '--set', 'plugins.envoy_ext_authz_grpc.path=envoy/authz/result',
    '--set', `decision_logs.console=${variant.decisionLog}`,
    // Tests are not policy (and stub Tollgate-only builtins); sql.rego calls tollgate.sql.analyze,
    // a Tollgate host builtin the peer lacks: bench/policies/envoy-sql stands in for it.
    '--ignore', '*_test.rego', '--ignore', 'sql.rego',
    // Tollgate's tool catalogue, grants and argument checks, shared rather than copied.
    peerPolicyDir(), peerPolicyDir('envoy-sql'), join(s.policiesDir, 'lib'), join(s.policiesDir, 'data.json'), dataFile,
  ];
  const proc = await startPinned({
    name: kind, cmd: s.opaEnvoy, args, core: SERVER_CORE, echo: s.echo,
    ready: () => waitForPort(grpcPort, '127.0.0.1', 60_000),
  });
  const title = variant.jwtAuthn ? 'opa-envoy-plugin behind jwt_authn' : variant.decisionLog ? 'opa-envoy-plugin, console decision log' : 'opa-envoy-plugin';
  return { kind, title, target: `127.0.0.1:${grpcPort}`, proc };
}

export function startServer(kind: ServerKind, s: ServerSetup): Promise<ServerUnderTest> {
  switch (kind) {
    case 'ceiling': return startCeiling(s);
    case 'tollgate': return startTollgate(s, { decisionLog: true });
    case 'tollgate-nolog': return startTollgate(s, { decisionLog: false });
    case 'tollgate-budgets': return startTollgate(s, { decisionLog: true, budgets: true });
    case 'opa-envoy': return startOpaEnvoy(s);
    case 'opa-envoy-jwt': return startOpaEnvoy(s, { jwtAuthn: true, decisionLog: false });
    case 'opa-envoy-log': return startOpaEnvoy(s, { jwtAuthn: false, decisionLog: true });
  }
}
