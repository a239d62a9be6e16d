import { loadGatewayConfig } from '../gateway/config.js';
import { GatewayServer } from '../gateway/server.js';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';

const USAGE = `Usage: tollgate gateway --config FILE [--listen HOST:PORT] [--mode aggregate|optimizer]

One governed MCP endpoint for several governed servers. Tools are named <server>__<tool>; lists
are merged from what each server's sidecar lets the caller see; every call goes on through the
target server's sidecar with the caller's identity, delegated to the gateway by RFC 8693 token
exchange at the caller's authorization server (the records show caller and gateway). In
optimizer mode only find_tool and call_tool are listed.

Flags:
  --config FILE    gateway configuration (YAML; fields in docs/gateway.md) (required)
  --listen H:P     override the config's listen address
  --mode M         override the config's mode: aggregate or optimizer
  -h, --help       this help

Example:
  tollgate gateway --config gateway.yaml
`;

const FLAGS = { config: { type: 'string' }, listen: { type: 'string' }, mode: { type: 'string' } } as const;

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'One MCP endpoint for several governed servers, with find_tool/call_tool discovery',
  async run(argv) {
    const { values: v } = parseCommandArgs(argv, FLAGS);
    if (v.help) { process.stdout.write(USAGE); return 0; }
    if (!v.config) throw new UsageError('--config FILE is required');
    if (v.mode !== undefined && v.mode !== 'aggregate' && v.mode !== 'optimizer') throw new UsageError(`--mode must be aggregate or optimizer, not "${v.mode}"`);
    if (v.listen !== undefined && !/^[^\s:]+:\d{1,5}$/.test(v.listen)) throw new UsageError(`--listen must be HOST:PORT, not "${v.listen}"`);
    // Flags replace config fields before the config is checked, so what derives from them
    // (public_url, allowed_hosts) follows the flags.
    const cfg = loadGatewayConfig(v.config, { ...(v.listen !== undefined ? { listen: v.listen } : {}), ...(v.mode ? { mode: v.mode } : {}) });
    const g = await GatewayServer.start(cfg);
    process.stdout.write(`Tollgate gateway on ${g.url} (${cfg.mode}) for ${cfg.servers.map((s) => s.name).join(', ')}\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => { resolve(); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await g.close();
    return 0;
  },
};
