#!/usr/bin/env node
import { UsageError, type Command } from './types.js';

interface Entry { name: string; summary: string; load: () => Promise<Command> }

// Loaded on demand so `tollgate token` does not pay for gRPC, WASM and NATS start-up.
const COMMANDS: Entry[] = [
  { name: 'up', summary: 'Start a local mesh on loopback: OIDC issuer, NATS, control plane, authz, Envoy, demo MCP server', load: async () => (await import('./up.js')).upCommand },
  { name: 'run', summary: 'Run a stdio MCP server from npm, PyPI, an image or the registry, governed by the mesh', load: async () => (await import('./run.js')).runCommand },
  { name: 'bridge', summary: 'Serve a stdio MCP server over Streamable HTTP (the container command of MCPServer spec.source pods)', load: async () => (await import('./bridge.js')).bridgeCommand },
  { name: 'images', summary: 'Build the server images MCPServer spec.source runs from (images build-server SOURCE)', load: async () => (await import('./images.js')).imagesCommand },
  { name: 'registry', summary: 'List, show, verify and sign entries of the signed MCP server registry', load: async () => (await import('./registry.js')).registryCommand },
  { name: 'token', summary: 'Mint a dev token from the local OIDC issuer', load: async () => (await import('./token.js')).tokenCommand },
  { name: 'authz', summary: 'Run the authz service (Envoy ext_authz + ext_proc over gRPC)', load: async () => (await import('./authz.js')).authzCommand },
  { name: 'controlplane', summary: 'Build, sign and publish policy bundles; serve xDS to sidecars', load: async () => (await import('./controlplane.js')).controlplaneCommand },
  { name: 'policy', summary: 'Build, check, test, explain and replay policies', load: async () => (await import('./policy.js')).policyCommand },
  { name: 'logs', summary: 'Query, tail, summarise and verify decision logs', load: async () => (await import('./logs.js')).logsCommand },
  { name: 'review', summary: 'A read-only web view of the decision log for security review (timeline, chain status, charts)', load: async () => (await import('./review.js')).reviewCommand },
  { name: 'tools', summary: 'Tool discovery (search, eval) and tool pinning (pending, diff, approve, revoke)', load: async () => (await import('./tools.js')).toolsCommand },
  { name: 'budget', summary: 'Show, set and reset token budgets', load: async () => (await import('./budget.js')).budgetCommand },
  { name: 'status', summary: 'Show whether authz is ready: policy revision, rejected bundles, decision log, budgets', load: async () => (await import('./status.js')).statusCommand },
  { name: 'cert', summary: 'Get this pod\'s workload certificate from the control plane (cluster mTLS)', load: async () => (await import('./cert.js')).certCommand },
  { name: 'inject', summary: 'Add the Envoy (and authz) sidecars to Kubernetes YAML, offline', load: async () => (await import('./inject.js')).injectCommand },
  { name: 'gateway', summary: 'One MCP endpoint for several governed servers (aggregate or find_tool/call_tool)', load: async () => (await import('./gateway.js')).gatewayCommand },
  { name: 'operator', summary: 'Reconcile MCPServer, MCPPolicy and TokenBudget objects (leader-elected)', load: async () => (await import('./operator.js')).operatorCommand },
  { name: 'demo-server', summary: 'Run the demo MCP server on its own', load: async () => (await import('./demo-server.js')).demoServerCommand },
];

function help(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'tollgate — governance mesh for MCP servers',
    '',
    'Usage: tollgate <command> [flags]   (tollgate <command> --help for its flags)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const { version } = await import('../util/version.js');
    process.stdout.write(`tollgate ${version}\n`);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`tollgate: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const cmd = await entry.load();
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tollgate ${name}: ${e.message}\nRun \`tollgate ${name} --help\` for usage.\n`);
      return 2;
    }
    process.stderr.write(`tollgate ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

// `tollgate logs query --json | head -1`: the reader closing the pipe ends the output, it is not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: Error) => { process.stderr.write(`tollgate: ${e.stack ?? e.message}\n`); process.exitCode = 1; },
);
