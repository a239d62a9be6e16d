import { resolve } from 'node:path';
import { DEFAULT_PORTS } from '../mesh/local.js';
import { parseSource, SourceError } from '../registry/source.js';
import { parseCommandArgs } from './args.js';
import { serveGoverned } from './serve-governed.js';
import { SERVER_FLAGS, SERVER_FLAGS_USAGE, serverOptions, splitServerArgs } from './server-flags.js';
import { UsageError, type Command } from './types.js';

const USAGE = `Usage: tollgate run NAME [--from SOURCE] [flags] [-- SERVER ARGS]

Runs a stdio MCP server, bridged to Streamable HTTP, behind the Tollgate mesh (Envoy + authz on
loopback): every call to it is identified, judged by policy, budgeted and recorded.

  NAME             the server's name in policy input and logs; without --from, a registry entry
  --from SOURCE    npx:PKG@VERSION   npm package (installed into .tools/servers, cached by version)
                   uvx:PKG@VERSION   PyPI package (installed into its own virtualenv)
                   image:REF         container image (needs --isolation podman)
                   ENTRY[@VERSION]   registry entry (signatures checked; see tollgate registry)
${SERVER_FLAGS_USAGE}  --policies DIR   Rego policies (default ./policies)
  --state DIR      state directory (default $TOLLGATE_STATE_DIR or ./.state)
  --no-controlplane  authz builds --policies itself (no NATS, no control plane)
  --budgets FILE   enforce these token budgets (docs/budgets.md)
  --envoy-port N (default 10000)  --authz-port N (9191)  --issuer-port N (5556)  --admin-port N (9901)
  --xds-port N (18000)  --nats-port N (4222)  --metrics-port N (9464)
  --verbose        echo every component's log

Example:
  tollgate run fs --from npx:@modelcontextprotocol/server-filesystem@2026.8.31 -- /data
See docs/servers.md.
`;

export const MESH_FLAGS = {
  policies: { type: 'string' }, state: { type: 'string' }, 'no-controlplane': { type: 'boolean' }, budgets: { type: 'string' }, verbose: { type: 'boolean' },
  'envoy-port': { type: 'string' }, 'admin-port': { type: 'string' }, 'authz-port': { type: 'string' }, 'issuer-port': { type: 'string' },
  'xds-port': { type: 'string' }, 'nats-port': { type: 'string' }, 'metrics-port': { type: 'string' },
} as const;

export const runCommand: Command = {
  name: 'run',
  summary: 'Run a stdio MCP server from npm, PyPI, an image or the registry, governed by the mesh',
  async run(argv) {
    const { own, serverArgs } = splitServerArgs(argv);
    const { values, positionals } = parseCommandArgs(own, { from: { type: 'string' }, ...SERVER_FLAGS, ...MESH_FLAGS }, true);
    if (values.help) { process.stdout.write(USAGE); return 0; }
    if (positionals.length !== 1) throw new UsageError('give exactly one server NAME');
    const name = positionals[0]!;
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name) && values.from) throw new UsageError(`server name "${name}" must be lowercase letters, digits and dashes`);
    let source;
    try { source = parseSource(values.from ?? name); } catch (e) { if (e instanceof SourceError) throw new UsageError(e.message); throw e; }
    const port = (v: string | undefined, d: number): number => {
      if (v === undefined) return d;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`bad port "${v}"`);
      return n;
    };
    const stateDir = resolve(values.state ?? process.env.TOLLGATE_STATE_DIR ?? '.state');
    const serverName = values.from ? name : name.split('/').pop()!.replace(/@.*$/, '').toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const opts = serverOptions(values);
    return serveGoverned([{ name: serverName, source, args: serverArgs, env: opts.env, isolation: opts.isolation, profile: opts.profile, registry: opts.registry, stateDir }], {
      policies: values.policies ?? 'policies', stateDir, echo: values.verbose ?? false, controlPlane: !values['no-controlplane'],
      ...(values.budgets ? { authzArgs: ['--budgets', values.budgets] } : {}),
      ports: {
        envoy: port(values['envoy-port'], DEFAULT_PORTS.envoy), envoyAdmin: port(values['admin-port'], DEFAULT_PORTS.envoyAdmin),
        authz: port(values['authz-port'], DEFAULT_PORTS.authz), issuer: port(values['issuer-port'], DEFAULT_PORTS.issuer),
        xds: port(values['xds-port'], DEFAULT_PORTS.xds), nats: port(values['nats-port'], DEFAULT_PORTS.nats),
        metrics: port(values['metrics-port'], DEFAULT_PORTS.metrics),
      },
    });
  },
};
