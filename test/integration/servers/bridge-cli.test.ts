import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { freePort } from '../../../src/util/net.js';
import { projectRoot } from '../../../src/util/tools.js';
import { RunningCli, runTollgate } from '../../support/cli.js';

/**
 * `tollgate bridge --launch-file`, the container command of MCPServer spec.source pods, as a
 * process: the launch file's command plus the arguments after -- is the stdio server, and only
 * loopback names and the --allow-host names may reach it.
 */
describe('tollgate bridge (the spec.source container command)', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-bridge-cli-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the launch file\'s stdio server over Streamable HTTP and refuses unknown Host names', async () => {
    const launch = join(dir, 'tollgate-launch.json');
    const loader = pathToFileURL(join(projectRoot(), 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    writeFileSync(launch, JSON.stringify({ command: [process.execPath, '--import', loader, join(projectRoot(), 'test/fixtures/conformance-server.ts')], source: 'test fixture' }));
    const port = await freePort();
    const cli = new RunningCli(['bridge', '--launch-file', launch, '--name', 'fs', '--port', String(port), '--allow-host', 'fs.tools.svc']);
    try {
      await cli.waitFor(/bridge ready/, 30_000);
      const client = new Client({ name: 't', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
      const tools = await client.listTools();
      assert.ok(tools.tools.length > 0, 'the fixture lists its tools through the bridge');
      await client.close();
      // node:http, not fetch: fetch does not send a Host header of the caller's choosing.
      const init = (host: string): Promise<number> => new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
          res.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }));
      });
      assert.equal(await init('evil.example'), 403, 'a name not allowed is refused (DNS rebinding)');
      assert.equal(await init('fs.tools.svc:8080'), 200, 'the Service name Envoy forwards with is allowed');
    } finally {
      await cli.stop();
    }
  });

  it('a broken launch file or nothing to run is a clear error, not a crash', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ command: [] }));
    const r1 = await runTollgate(['bridge', '--launch-file', bad]);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /bad\.json: command: Too small/);
    const r2 = await runTollgate(['bridge']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /nothing to run: give --launch-file FILE or -- PROGRAM/);
  });
});
