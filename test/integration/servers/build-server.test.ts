import { strict as assert } from 'node:assert';
import { tollgateImage } from '../../../src/containers/images.js';
import { imageExists, podman, podmanAvailability, podmanOk } from '../../../src/containers/podman.js';
import { LAUNCH_FILE, serverImageName } from '../../../src/servers/image-contract.js';
import { parseLaunchFile } from '../../../src/servers/launch-file.js';
import { parseSource } from '../../../src/registry/source.js';
import { runTollgate } from '../../support/cli.js';
import { VERSIONS } from './support.js';

/**
 * `tollgate images build-server`: the image MCPServer spec.source runs from has the name the
 * operator derives, the launch file the bridge reads, and a server that answers MCP over stdio
 * with no network and a read-only root, as the pod runs it.
 */
describe('tollgate images build-server (the spec.source image contract)', function () {
  this.timeout(600_000);
  const prefix = 'localhost/tollgate-test-build-server';
  let image = '';

  before(async function () {
    const a = await podmanAvailability();
    if (!a.ok) { console.log(`      skipped: ${a.reason}`); this.skip(); }
    if (!(await imageExists(tollgateImage()))) { console.log(`      skipped: ${tollgateImage()} not built (make images)`); this.skip(); }
  });

  after(async () => { if (image) await podman(['rmi', '-f', image]).catch(() => undefined); });

  it('builds the npm server image under the derived name; its launch command speaks MCP over stdio without network', async () => {
    const r = await runTollgate(['images', 'build-server', VERSIONS.filesystem, '--prefix', prefix], { timeoutMs: 500_000 });
    assert.equal(r.code, 0, r.stderr);
    const source = parseSource(VERSIONS.filesystem);
    assert.ok(source.kind === 'npx');
    image = r.stdout.trim();
    assert.equal(image, serverImageName(source, prefix), 'the builder and the operator agree on the name');
    const launch = parseLaunchFile(await podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', 'cat', image, LAUNCH_FILE]), LAUNCH_FILE);
    assert.equal(launch.source, VERSIONS.filesystem);
    const cli = await podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', 'node', image, '/opt/tollgate/dist/src/cli/main.js', '--help']);
    assert.match(cli, /tollgate — governance mesh/, 'the tollgate CLI (and so the bridge) is in the image');
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) + '\n';
    const out = await podman(['run', '-i', '--rm', '--network', 'none', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--entrypoint', launch.command[0]!, image, ...launch.command.slice(1), '/tmp'], { input: init, timeoutMs: 120_000 });
    const answer = JSON.parse(out.stdout.split('\n')[0]!) as { id?: number; result?: { serverInfo?: { name?: string } } };
    assert.equal(answer.id, 1, `${out.stdout}\n${out.stderr}`);
    assert.equal(answer.result?.serverInfo?.name, 'secure-filesystem-server');
  });

  it('refuses an unpinned or image: source with a clear error', async () => {
    const r1 = await runTollgate(['images', 'build-server', 'npx:@modelcontextprotocol/server-filesystem']);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /has no version: pin one/);
    const r2 = await runTollgate(['images', 'build-server', 'image:example/x:1']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /an image: source must already follow the contract/);
  });
});
