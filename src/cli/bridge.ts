import { StdioBridge } from '../bridge/server.js';
import { LOOPBACK_HOSTNAMES } from '../bridge/host-check.js';
import { createLogger } from '../util/log.js';
import { readLaunchFile } from '../servers/launch-file.js';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';

const USAGE = `Usage: tollgate bridge --launch-file FILE [flags] [-- SERVER-ARGS...]
       tollgate bridge [flags] -- PROGRAM [ARGS...]

Serves one stdio MCP server over Streamable HTTP (a server process per session). This is the
server container's command in pods the operator runs from MCPServer spec.source: Envoy forwards
governed calls to it on loopback. With --launch-file, the server's command comes from the image
(/opt/server/tollgate-launch.json, written by tollgate images build-server) and the arguments
after -- are appended to it; without, the arguments after -- are the whole command.

  --launch-file FILE   JSON {"command": [...]} naming the stdio server's command
  --name NAME          server name, for logs and errors (default mcp)
  --host H             address to listen on (default 127.0.0.1)
  --port N             port (default 8080)
  --path P             MCP endpoint path (default /mcp)
  --allow-host NAME    host name the Host/Origin header may carry besides loopback names
                       (repeatable; the operator passes the Service's names and the resource host)
  --max-sessions N     most concurrent sessions (default 32)

The server gets this process's environment (in a pod: what the Deployment gives the container,
secretEnv included), nothing else.
`;

export const bridgeCommand: Command = {
  name: 'bridge',
  summary: 'Serve a stdio MCP server over Streamable HTTP (the container command of spec.source servers)',
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {
      'launch-file': { type: 'string' }, name: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, path: { type: 'string' },
      'allow-host': { type: 'string', multiple: true }, 'max-sessions': { type: 'string' },
    }, true);
    if (values.help) { process.stdout.write(USAGE); return 0; }
    const port = Number(values.port ?? 8080);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: "${values.port}" is not a port`);
    const maxSessions = Number(values['max-sessions'] ?? 32);
    if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new UsageError('--max-sessions must be a whole number ≥ 1');
    const path = values.path ?? '/mcp';
    if (!path.startsWith('/')) throw new UsageError('--path must start with /');
    const base = values['launch-file'] ? readLaunchFile(values['launch-file']).command : [];
    const command = [...base, ...positionals];
    if (command.length === 0) throw new UsageError('nothing to run: give --launch-file FILE or -- PROGRAM [ARGS...]');
    const hosts = (values['allow-host'] ?? []).map((h) => h.toLowerCase());
    if (hosts.some((h) => !/^[a-z0-9.-]{1,253}$/.test(h))) throw new UsageError('--allow-host takes host names (letters, digits, dots, dashes)');
    const name = values.name ?? 'mcp';
    const log = createLogger('tollgate-bridge');
    const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const bridge = await StdioBridge.start({
      name, host: values.host ?? '127.0.0.1', port, path, maxSessions,
      allowedHostnames: [...LOOPBACK_HOSTNAMES, ...hosts],
      launch: () => ({ command: command[0]!, args: command.slice(1), env, label: name }),
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
    });
    log.info({ url: bridge.url, command: command[0] }, 'bridge ready');
    await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
    await bridge.close();
    return 0;
  },
};
