import { resolve } from 'node:path';
import { describeChildExit, LocalMesh, DEFAULT_PORTS, type ChildExit } from '../mesh/local.js';
import { startLocalIdp } from '../identity/hydra/local-idp.js';
import { preflightUp } from '../mesh/preflight.js';
import { watchPolicyBuilds } from '../mesh/build-watch.js';
import { DEFAULT_STATE_DIR, removeMeshFile, writeMeshFile } from '../mesh/mesh-file.js';
import { prepareStateDir } from '../mesh/state-dir.js';
import type { ServerRunSpec } from '../servers/run.js';
import { loadServersFile } from '../servers/servers-file.js';
import { parseServerSpec, SourceError } from '../registry/source.js';
import { parseCommandArgs } from './args.js';
import { parseHostPort } from '../util/net.js';
import { serveGoverned } from './serve-governed.js';
import { SERVER_FLAGS, SERVER_FLAGS_USAGE, serverOptions, splitServerArgs } from './server-flags.js';
import { UsageError, type Command } from './types.js';

const USAGE = `Usage: tollgate up [--policies DIR] [--demo | --upstream URL | --server NAME=SOURCE… | --servers FILE] [flags] [-- SERVER ARGS]

Starts a governed MCP mesh on loopback, the way a cluster runs it, until Ctrl-C:
  dev OIDC issuer  http://127.0.0.1:5556      (keys kept in the state dir)
  NATS JetStream   tls://127.0.0.1:4222       (store in the state dir; TLS, one client certificate
                                              per component with least privilege, CA in <state>/pki)
  control plane    xDS on 127.0.0.1:18000     (mTLS; builds, signs and publishes policies/ on every save)
  authz            127.0.0.1:9191             (ext_authz + ext_proc, gRPC over mTLS; follows signed bundles)
  Envoy            http://127.0.0.1:10000/mcp (admin on 9901), configured only over xDS

  --policies DIR   Rego policies to build and enforce (default ./policies)
  --demo           govern the built-in demo MCP server (default when --upstream is not given)
  --upstream URL   govern this MCP server instead, e.g. http://127.0.0.1:3001/mcp
  --server NAME    the governed server's name in policy input and logs (default "demo")
  --server NAME=SOURCE  run a stdio server Tollgate installs and isolates (repeatable; SOURCE as in
                   tollgate run --from); each gets its own Envoy + authz pair; args after -- go to it
  --servers FILE   the servers to run, as YAML (docs/servers.md)
${SERVER_FLAGS_USAGE}  --state DIR      state directory: issuer keys, decision logs (default $TOLLGATE_STATE_DIR or ./.state);
                   made private (0700) when up creates it; an existing one is left as it is, with a
                   warning if other users can write in it or read it
                   up writes DIR/mesh.json (ports, issuer, audience, admin addresses), which token,
                   status, budget, logs and policy show read: give them the same --state (or
                   TOLLGATE_STATE_DIR) and nothing else
  --envoy-port N   (default 10000)    --admin-port N (default 9901)
  --authz-port N   (default 9191)     --issuer-port N (default 5556)
  --xds-port N     (default 18000)    --nats-port N   (default 4222)
  --metrics-port N (default 9464: authz /metrics, /readyz, /status)
  --controlplane-metrics-port N  the control plane's /metrics, /status (default 0: a free port,
                   printed and recorded in DIR/mesh.json)
  --no-controlplane  no NATS or control plane: authz builds --policies itself and Envoy gets a
                   static config (fewer processes; policy edits need a restart)
  --budgets FILE   enforce these token budgets (docs/budgets.md)
  --nats-cluster N run NATS as N nats-servers with routes on loopback (client ports --nats-port
                   and free ones); streams and buckets get 3 replicas, clients every seed URL
  --pins           enforce tool pins (docs/tool-pinning.md): every tool is hidden until approved with
                   tollgate tools approve (a dev approver key is made under the state dir)
  --otel-collector H:P  trace into this OpenTelemetry Collector (OTLP/gRPC, usually port 4317):
                   Envoy's spans (from the control plane's xDS config) and authz's MCP spans,
                   in one trace (docs/observability.md); needs the control plane
  --idp hydra      run a real authorization server instead of trusting the dev issuer: Ory Hydra on
                   --idp-port (default 4444; admin API on the next port, the sign-in page on the one
                   after), with dynamic client registration, so an MCP client logs in by itself
                   (docs/identity.md)
  --idp-users FILE who may sign in and their claims (default: <state>/idp-users.yaml, made on first
                   run with two demo users and random passwords)
  --verbose        echo every component's log

Certificates for the control plane, Envoy and authz come from a CA kept in <state>/pki/
(docs/security.md). Relative --policies and --budgets paths are taken from the current directory.

If Envoy, authz, the control plane or NATS exits while the mesh runs, up names it, with its exit
code or signal and last output, stops every other part and exits 1 (fail closed): nothing
restarts it, and a mesh missing a part is not the mesh the banner and mesh.json describe.

Before anything starts, up checks that opa, envoy (and nats-server) are installed, every port above
is free, --policies exists and compiles, and the --budgets file is valid; if not it exits 1 at once
naming each problem (file:line where there is one), the flag that changes it and the fix.
`;

/** host:port of the collector, checked here so a typo is a usage error, not a failed start. */
function collectorAddress(v: string): string {
  try {
    const { host, port } = parseHostPort(v);
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  } catch (e) {
    throw new UsageError(`--otel-collector must be host:port (OTLP/gRPC, e.g. 127.0.0.1:4317): ${(e as Error).message}`);
  }
}

function clusterSize(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new UsageError('--nats-cluster must be a number of servers from 1 to 5 (3 for a cluster that survives one loss)');
  return n;
}

/** How to read the mesh's NATS as a reviewer or change budgets as an operator (their credentials). */
function natsHelp(mesh: LocalMesh): string[] {
  const url = mesh.endpoints.nats;
  if (!url) return [];
  const flags = (name: string): string => {
    const t = mesh.natsCredentials.get(name)?.tls;
    return t ? `--nats ${url} --nats-ca ${t.ca} --nats-cert ${t.cert} --nats-key ${t.key}` : '';
  };
  return [
    'Read the central decision log and budgets (reviewer credential: read-only):',
    `  npx tollgate logs query ${flags('reviewer')}`,
    `  npx tollgate budget status ${flags('reviewer')}`,
    `Change budget limits with the operator credential: npx tollgate budget set NAME --limit N ${flags('operator')}`,
    '',
  ];
}

export const upCommand: Command = {
  name: 'up',
  summary: 'Start a local mesh on loopback',
  async run(argv) {
    const { own, serverArgs } = splitServerArgs(argv);
    const { values } = parseCommandArgs(own, {
      ...SERVER_FLAGS, servers: { type: 'string' },
      policies: { type: 'string' }, demo: { type: 'boolean' }, upstream: { type: 'string' }, server: { type: 'string', multiple: true },
      state: { type: 'string' }, 'envoy-port': { type: 'string' }, 'admin-port': { type: 'string' }, 'authz-port': { type: 'string' },
      'issuer-port': { type: 'string' }, verbose: { type: 'boolean' }, 'xds-port': { type: 'string' }, 'nats-port': { type: 'string' }, 'metrics-port': { type: 'string' },
      'controlplane-metrics-port': { type: 'string' },
      'no-controlplane': { type: 'boolean' }, budgets: { type: 'string' }, 'nats-cluster': { type: 'string' }, pins: { type: 'boolean' },
      'otel-collector': { type: 'string' },
      idp: { type: 'string' }, 'idp-port': { type: 'string' }, 'idp-users': { type: 'string' },
    });
    if (values.help) { process.stdout.write(USAGE); return 0; }
    if (values.demo && values.upstream) throw new UsageError('give either --demo or --upstream, not both');
    if (values['no-controlplane'] && values['otel-collector'] !== undefined) throw new UsageError('--otel-collector configures Envoy through the control plane (drop --no-controlplane)');
    if (values['no-controlplane'] && values['nats-cluster'] !== undefined) throw new UsageError('--nats-cluster needs the control plane (drop --no-controlplane)');
    if (values['no-controlplane'] && values['controlplane-metrics-port'] !== undefined) throw new UsageError('--controlplane-metrics-port needs the control plane (drop --no-controlplane)');
    let upstream: { host: string; port: number } | undefined;
    if (values.upstream) {
      let u: URL;
      try { u = new URL(values.upstream); } catch { throw new UsageError(`--upstream is not a URL: ${values.upstream}`); }
      if (u.protocol !== 'http:') throw new UsageError('--upstream must be an http:// URL (Envoy speaks plain HTTP to a local MCP server)');
      upstream = { host: u.hostname, port: Number(u.port || 80) };
    }
    const port = (v: string | undefined, d: number, zeroPicks = false): number => {
      if (v === undefined) return d;
      const n = Number(v);
      if (!Number.isInteger(n) || n < (zeroPicks ? 0 : 1) || n > 65535) throw new UsageError(`bad port "${v}"${zeroPicks ? ' (0 picks a free one)' : ''}`);
      return n;
    };
    const stateDir = values.state ?? process.env.TOLLGATE_STATE_DIR ?? '.state';
    const runSpecs = serversToRun(values.server ?? [], values.servers, serverArgs, serverOptions(values), resolve(stateDir));
    const plainNames = (values.server ?? []).filter((s) => !s.includes('='));
    if (plainNames.length > 1) throw new UsageError('--server NAME (without =SOURCE) names the one --upstream/--demo server: give it once');
    const meshPorts = {
      envoy: port(values['envoy-port'], DEFAULT_PORTS.envoy), envoyAdmin: port(values['admin-port'], DEFAULT_PORTS.envoyAdmin),
      authz: port(values['authz-port'], DEFAULT_PORTS.authz), issuer: port(values['issuer-port'], DEFAULT_PORTS.issuer),
      xds: port(values['xds-port'], DEFAULT_PORTS.xds), nats: port(values['nats-port'], DEFAULT_PORTS.nats),
      metrics: port(values['metrics-port'], DEFAULT_PORTS.metrics),
      controlPlaneMetrics: port(values['controlplane-metrics-port'], DEFAULT_PORTS.controlPlaneMetrics, true),
    };
    if (values.idp !== undefined && values.idp !== 'hydra') throw new UsageError(`--idp ${values.idp}: the one authorization server up can run is "hydra"`);
    if (values.idp === undefined && (values['idp-port'] !== undefined || values['idp-users'] !== undefined)) throw new UsageError('--idp-port and --idp-users go with --idp hydra');
    // Both paths are taken from the current directory, whatever directory the children run in.
    const policies = resolve(values.policies ?? 'policies');
    const budgets = values.budgets === undefined ? undefined : resolve(values.budgets);
    const controlPlane = !values['no-controlplane'];
    if (runSpecs.length) {
      if (values.idp) throw new UsageError('--idp hydra governs one server (--demo or --upstream), not --server NAME=SOURCE');
      if (values.demo || values.upstream || plainNames.length) throw new UsageError('--server NAME=SOURCE / --servers run servers; do not combine them with --demo, --upstream or a bare --server NAME');
      await preflightUp({ policies, ...(budgets ? { budgets } : {}), controlPlane });
      privateStateDir(stateDir);
      return serveGoverned(runSpecs, {
        policies, stateDir: resolve(stateDir), echo: values.verbose ?? false, controlPlane,
        ...(budgets ? { authzArgs: ['--budgets', budgets] } : {}), ports: meshPorts,
      });
    }
    if (values.pins && values['no-controlplane']) throw new UsageError('--pins needs the control plane (pins live in NATS): drop --no-controlplane');
    if (serverArgs.length) throw new UsageError('arguments after -- go to a server from --server NAME=SOURCE; there is none');
    await preflightUp({ policies, ...(budgets ? { budgets } : {}), controlPlane });
    privateStateDir(stateDir);
    process.stdout.write('Starting the Tollgate mesh (building policies with opa)…\n');
    const idpPort = port(values['idp-port'], 4444);
    if (idpPort > 65533) throw new UsageError('--idp-port needs the two ports after it free too');
    const idp = values.idp ? await startLocalIdp({
      stateDir: resolve(stateDir), resources: [`http://127.0.0.1:${meshPorts.envoy}/mcp`], port: idpPort,
      ...(values['idp-users'] ? { usersFile: values['idp-users'] } : {}), echo: values.verbose ?? false,
    }) : null;
    let mesh: LocalMesh;
    try {
      mesh = await LocalMesh.start({
        ...(idp ? { authorizationServer: idp.hydra.issuer } : {}),
        policies, stateDir, upstream, server: plainNames[0], echo: values.verbose ?? false,
        controlPlane, pins: values.pins ?? false,
        ...(budgets ? { budgets } : {}),
        ...(values['nats-cluster'] !== undefined ? { natsCluster: clusterSize(values['nats-cluster']) } : {}),
        ...(values['otel-collector'] !== undefined ? { otelCollector: collectorAddress(values['otel-collector']) } : {}),
        ports: meshPorts,
      });
    } catch (e) {
      await idp?.stop();
      throw e;
    }
    const e = mesh.endpoints;
    const absState = resolve(stateDir);
    const creds: Record<string, { ca: string; cert: string; key: string }> = {};
    for (const [name, c] of mesh.natsCredentials) if (c.tls) creds[name] = c.tls;
    const meshFile = writeMeshFile({
      schema: 'tollgate.mesh/v1', pid: process.pid, startedAt: new Date().toISOString(), stateDir: absState, policies, budgets: budgets ?? null,
      audience: mesh.audience, decisions: `${absState}/decisions`, natsCredentials: creds,
      endpoints: { mcp: e.mcp, issuer: e.issuer, authz: e.authz, authzAdmin: e.metrics, envoyAdmin: e.envoyAdmin, xds: e.xds, nats: e.nats, controlPlaneAdmin: e.controlPlaneMetrics },
    });
    // Commands find the mesh through its state dir; name it only where they would not look by default.
    const st = absState === resolve(DEFAULT_STATE_DIR) && !process.env.TOLLGATE_STATE_DIR ? '' : ` --state ${absState}`;
    process.stdout.write([
      '',
      'Tollgate mesh is up.',
      `  MCP endpoint (governed)   ${e.mcp}`,
      `  Resource metadata         ${e.resourceMetadata}`,
      `  MCP server (upstream)     ${e.upstream}${mesh.demo ? '   (demo server)' : ''}`,
      `  authz (gRPC)              ${e.authz}`,
      `  OIDC issuer               ${e.issuer}`,
      ...(e.xds ? [`  control plane (xDS)       ${e.xds}   (edit ${values.policies ?? 'policies'}/ and save: published and swapped live)`] : []),
      ...(e.nats ? [`  NATS JetStream            ${e.nats}   (TLS; one client certificate per component)`] : []),
      ...(mesh.sidecarConfig ? [`  sidecar defaults (xDS)    ${mesh.sidecarConfig}`] : []),
      ...(e.controlPlaneMetrics ? [`  control plane metrics     ${e.controlPlaneMetrics}/metrics   (xDS refusals, streams)`] : []),
      `  mesh CA and certificates  ${mesh.certs.pki.dir}   (xDS and authz gRPC are mTLS)`,
      `  Envoy admin               ${e.envoyAdmin}`,
      `  authz metrics / status    ${e.metrics}/metrics   (tollgate status)`,
      `  Decision log              ${stateDir}/decisions`,
      ...(mesh.approverKeys && e.nats ? [
        `  Tool pinning              on: tollgate tools pending --nats ${e.nats}`,
        `                            tollgate tools approve --nats ${e.nats} --server ${values.server ?? 'demo'} --tool NAME --key ${mesh.approverKeys.privateKey} --approver YOU`,
      ] : []),
      `  Mesh file                 ${meshFile}   (how every tollgate command finds this mesh)`,
      '',
      ...(idp ? [
        `Authorization server: Ory Hydra at ${idp.hydra.issuer} (sign-in page ${idp.app.url}, users in ${idp.usersFile})`,
        'Point an MCP client that speaks OAuth at the endpoint: it registers, sends you to sign in, and gets its token.',
      ] : [
        'Mint a dev token, then point any MCP client at the endpoint with it:',
        `  npx tollgate token${st} --sub alice --team payments`,
        `  TOKEN=$(npx tollgate token${st} --sub alice --team payments | tail -1)`,
      ]),
      '',
      'Look at it (each reads the mesh file; other flags override what it says):',
      `  npx tollgate status${st}`,
      `  npx tollgate logs query${st}`,
      ...(budgets ? [`  npx tollgate budget status${st}`] : []),
      '',
      ...natsHelp(mesh),
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'));
    const stopWatch = e.controlPlaneMetrics ? watchPolicyBuilds(e.controlPlaneMetrics, (t) => process.stdout.write(`${new Date().toISOString()} ${t}`)) : () => undefined;
    // Until Ctrl-C, or until a part of the mesh dies: then the whole mesh stops (fail closed).
    let unwatch = (): void => undefined;
    let onSignal = (): void => undefined;
    const died = new Promise<ChildExit>((resolve) => { unwatch = mesh.watchChildren(resolve); });
    const signalled = new Promise<null>((resolve) => { onSignal = () => resolve(null); process.once('SIGINT', onSignal); process.once('SIGTERM', onSignal); });
    const exit = await Promise.race([died, signalled]);
    unwatch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stopWatch();
    if (exit) {
      process.stderr.write(`tollgate up: ${describeChildExit(exit)}\n` +
        `tollgate up: nothing restarts ${exit.name}, so the whole mesh stops now (fail closed) instead of running without it. Fix the cause above and run tollgate up again.\n`);
    } else {
      process.stdout.write('\nStopping…\n');
    }
    removeMeshFile(absState);
    await mesh.stop();
    await idp?.stop();
    return exit ? 1 : 0;
  },
};

/** Makes the state directory private (0700) if up is the one creating it; says what is wrong with an existing one. */
function privateStateDir(stateDir: string): void {
  let warnings: string[];
  try {
    ({ warnings } = prepareStateDir(stateDir));
  } catch (e) {
    throw new UsageError(`--state ${stateDir}: ${(e as Error).message}`);
  }
  for (const w of warnings) process.stderr.write(`tollgate up: warning: ${w}\n`);
}

/** --server NAME=SOURCE flags and a --servers file as run specs; `--` args go to the only flag-given server. */
function serversToRun(flags: string[], file: string | undefined, serverArgs: string[], opts: ReturnType<typeof serverOptions>, stateDir: string): ServerRunSpec[] {
  const specs: ServerRunSpec[] = [];
  const fromFlags = flags.filter((s) => s.includes('='));
  if (serverArgs.length && fromFlags.length > 1) throw new UsageError('arguments after -- are ambiguous with several --server flags: use --servers FILE with args per server');
  for (const f of fromFlags) {
    let parsed;
    try { parsed = parseServerSpec(f); } catch (e) { if (e instanceof SourceError) throw new UsageError(e.message); throw e; }
    specs.push({ ...parsed, args: serverArgs, env: opts.env, isolation: opts.isolation, profile: opts.profile, registry: opts.registry, stateDir });
  }
  if (file) {
    let entries;
    try { entries = loadServersFile(file); } catch (e) { throw new UsageError((e as Error).message); }
    for (const e of entries) specs.push({ ...e, stateDir, registry: { ...e.registry, config: opts.registry.config } });
  }
  const names = specs.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`server name ${dup} is given twice`);
  return specs;
}
