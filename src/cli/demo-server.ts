import { DemoMcpServer } from '../demo/server.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './types.js';

const USAGE = `Usage: tollgate demo-server [--host H] [--port N] [--json]

Runs the demo MCP server (tools: search_docs, get_customer, create_ticket, delete_records,
run_sql) on Streamable HTTP at http://H:N/mcp. It has no authentication of its own: put it
behind Tollgate.

  --host H   address to listen on (default 127.0.0.1)
  --port N   port (default 3001; 0 picks a free one)
  --json     answer with application/json instead of SSE streams
`;

export const demoServerCommand: Command = {
  name: 'demo-server',
  summary: 'Run the demo MCP server on its own',
  async run(argv) {
    const { values } = parseCommandArgs(argv, { host: { type: 'string' }, port: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) { process.stdout.write(USAGE); return 0; }
    const srv = await DemoMcpServer.start({ host: values.host ?? '127.0.0.1', port: Number(values.port ?? 3001), jsonResponses: values.json ?? false });
    process.stdout.write(`demo MCP server on ${srv.url}\n`);
    await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
    await srv.close();
    return 0;
  },
};
