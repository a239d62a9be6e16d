import { describeChildExit, type ChildExit, type LocalMeshOptions } from '../mesh/local.js';
import { startGoverned, stopGoverned } from '../servers/governed.js';
import type { ServerRunSpec } from '../servers/run.js';
import { RunRefused } from '../servers/run.js';

/** Starts servers Tollgate runs behind the mesh, prints where they are, and waits for Ctrl-C. */
export async function serveGoverned(specs: ServerRunSpec[], mesh: Omit<LocalMeshOptions, 'upstream' | 'server' | 'issuer'>): Promise<number> {
  process.stdout.write(`Installing and starting ${specs.map((s) => s.name).join(', ')} behind the Tollgate mesh…\n`);
  let all;
  try {
    all = await startGoverned(specs, mesh);
  } catch (e) {
    if (e instanceof RunRefused) { process.stderr.write(`tollgate: ${e.message}\n`); return 3; }
    throw e;
  }
  const lines = ['', 'Tollgate is governing:'];
  for (const { server, mesh: m } of all) {
    const p = server.provenance;
    lines.push(
      `  ${server.name}`,
      `    MCP endpoint (governed)  ${m.endpoints.mcp}`,
      `    source                   ${p.source}${p.entry ? `   (registry entry ${p.entry}@${p.version}, ${p.verified ? 'verified' : 'NOT verified'})` : ''}`,
      `    server env (names only)  ${server.envNames.join(', ') || '(none)'}`,
      `    authz metrics / status   ${m.endpoints.metrics}/metrics`,
    );
  }
  const first = all[0]!.mesh;
  lines.push(
    `  OIDC issuer               ${first.endpoints.issuer}`,
    `  Decision log              ${mesh.stateDir}/decisions${all.length > 1 ? ` (and ${mesh.stateDir}/servers/<name>/decisions)` : ''}`,
    '',
    'Mint a token for a server (its endpoint is the audience), then point an MCP client at that endpoint:',
    `  npx tollgate token --sub alice --team payments --aud ${first.endpoints.mcp}`,
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  process.stdout.write(lines.join('\n'));
  // Until Ctrl-C, or until a part of any server's mesh dies: then everything stops (fail closed),
  // as `up` does for its own mesh.
  const unwatch: Array<() => void> = [];
  let onSignal = (): void => undefined;
  const died = new Promise<ChildExit>((resolve) => { for (const g of all) unwatch.push(g.mesh.watchChildren(resolve)); });
  const signalled = new Promise<null>((resolve) => { onSignal = () => resolve(null); process.once('SIGINT', onSignal); process.once('SIGTERM', onSignal); });
  const exit = await Promise.race([died, signalled]);
  for (const u of unwatch) u();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (exit) {
    process.stderr.write(`tollgate: ${describeChildExit(exit)}\ntollgate: nothing restarts ${exit.name}, so every governed server stops now (fail closed). Fix the cause above and start again.\n`);
  } else {
    process.stdout.write('\nStopping…\n');
  }
  await stopGoverned(all);
  return exit ? 1 : 0;
}
