import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { loadPinnedKeys } from '../../../src/registry/config.js';
import { newKeyPair } from '../../../src/registry/signature.js';
import { addEntry, verifyRegistry } from '../../../src/registry/store.js';
import { startGoverned, stopGoverned } from '../../../src/servers/governed.js';
import { RunRefused, startServer } from '../../../src/servers/run.js';
import { parseSource } from '../../../src/registry/source.js';
import { selfCommand } from '../../../src/util/self.js';
import { connectClient } from '../../support/mcp-client.js';

const run = promisify(execFile);

const TIME_ENTRY = {
  $schema: 'https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json',
  name: 'io.github.modelcontextprotocol/time',
  description: 'Time and timezone conversion',
  version: '2026.10.19',
  packages: [{
    registryType: 'pypi', identifier: 'mcp-server-time', version: '2026.10.19', transport: { type: 'stdio' },
    packageArguments: [{ type: 'named', name: '--local-timezone', value: 'UTC' }],
  }],
};

/** Issue 14: a signed registry; tampered or unsigned entries are refused; provenance reaches policy. */
describe('servers Tollgate runs: the signed registry', function () {
  this.timeout(300_000);
  let dir: string;
  let registry: string;
  let config: string;
  let keyPem: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-registry-'));
    registry = join(dir, 'registry');
    const pair = newKeyPair();
    keyPem = pair.privatePem;
    writeFileSync(join(dir, 'registry.pub.pem'), pair.publicPem);
    config = join(dir, 'tollgate-registry.yaml');
    writeFileSync(config, 'registry: ./registry\ntrusted_keys: [registry.pub.pem]\n');
    await addEntry(registry, Buffer.from(JSON.stringify(TIME_ENTRY, null, 2)), keyPem);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const keys = () => loadPinnedKeys([join(dir, 'registry.pub.pem')]);
  const entryFile = () => join(registry, 'servers', 'io.github.modelcontextprotocol_time@2026.10.19.json');
  const spec = (allowUnverified = false) => ({
    name: 'registry-time', source: parseSource('io.github.modelcontextprotocol/time'), args: [], env: {}, isolation: 'none' as const,
    stateDir: dir, registry: { config, allowUnverified },
  });

  it('verifies a signed entry, and names what is wrong with a tampered, unsigned or foreign-signed one', async () => {
    assert.deepEqual((await verifyRegistry(registry, await keys())).map((s) => [s.name, s.verified]), [['io.github.modelcontextprotocol/time', true]]);

    const tampered = readFileSync(entryFile(), 'utf8').replace('mcp-server-time', 'mcp-server-evil');
    writeFileSync(entryFile(), tampered);
    const [t] = await verifyRegistry(registry, await keys());
    assert.equal(t!.verified, false);
    assert.ok(t!.problems.some((p) => /sha256 mismatch/.test(p)), t!.problems.join('; '));
    assert.ok(t!.problems.some((p) => /entry signature/.test(p)), t!.problems.join('; '));

    // Re-signed by someone else's key: the content matches its signature, but the key is not pinned.
    const other = newKeyPair();
    await addEntry(registry, Buffer.from(tampered), other.privatePem);
    const [f] = await verifyRegistry(registry, await keys());
    assert.equal(f!.verified, false);
    assert.ok(f!.problems.some((p) => /not pinned/.test(p)), f!.problems.join('; '));

    rmSync(join(registry, 'index.json.sig'));
    const [u] = await verifyRegistry(registry, await keys());
    assert.ok(u!.problems.some((p) => /not signed/.test(p)));
  });

  it('tollgate registry verify fails on a tampered entry; tollgate run refuses it', async () => {
    const self = selfCommand();
    const ok = await run(self.cmd, [...self.args, 'registry', 'verify', '--config', config]);
    assert.match(ok.stdout, /verified\s+io.github.modelcontextprotocol\/time@2026.10.19/);
    writeFileSync(entryFile(), readFileSync(entryFile(), 'utf8').replace('"UTC"', '"Europe/Paris"'));
    await assert.rejects(run(self.cmd, [...self.args, 'registry', 'verify', '--config', config]), (e: { code?: number; stdout?: string }) => e.code === 1 && /UNVERIFIED.*sha256 mismatch/.test(e.stdout ?? ''));
    await assert.rejects(startServer(spec()), (e: unknown) => e instanceof RunRefused && /not verified.*--allow-unverified/.test(e.message));
  });

  it('policy sees the provenance: a verified entry is served, the same entry run unverified is denied by policy', async () => {
    const state = join(dir, 'state');
    const meshOpts = { policies: 'test/fixtures/servers-policy', stateDir: state, ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 } };
    let g = await startGoverned([spec()], meshOpts);
    try {
      assert.deepEqual(g[0]!.server.provenance, { source: 'uvx:mcp-server-time@2026.10.19', registry: registry, entry: 'io.github.modelcontextprotocol/time', version: '2026.10.19', verified: true });
      const c = await connectClient(g[0]!.mesh.endpoints.mcp, await g[0]!.mesh.token({ sub: 'alice' }));
      const r = await c.callTool({ name: 'get_current_time', arguments: { timezone: 'UTC' } });
      assert.match(JSON.stringify(r), /UTC/);
      await c.close();
    } finally { await stopGoverned(g); }

    writeFileSync(entryFile(), readFileSync(entryFile(), 'utf8').replace('Time and timezone', 'Totally harmless'));
    g = await startGoverned([spec(true)], { ...meshOpts, stateDir: join(dir, 'state2') });
    try {
      assert.equal(g[0]!.server.provenance.verified, false);
      await assert.rejects(connectClient(g[0]!.mesh.endpoints.mcp, await g[0]!.mesh.token({ sub: 'alice' })), (e: unknown) => e instanceof McpError && /must come from a verified registry entry/.test(e.message));
    } finally { await stopGoverned(g); }
  });
});
