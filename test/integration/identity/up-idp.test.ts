import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { freePort } from '../../../src/util/net.js';
import { selfCommand } from '../../../src/util/self.js';
import { projectRoot } from '../../../src/util/tools.js';
import { TestBrowser, TestOAuthProvider } from '../../support/oauth-browser.js';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Three consecutive free ports: Hydra public, Hydra admin, the sign-in page. */
async function freeRun(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65000 && await portFree(p + 1) && await portFree(p + 2)) return p;
  }
  throw new Error('no three consecutive free ports');
}

describe('tollgate up --idp hydra', function () {
  this.timeout(180_000);
  let state: string;
  let up: ManagedProcess | null = null;

  before(() => { state = mkdtempSync(join(tmpdir(), 'tollgate-up-idp-')); });
  after(async () => {
    await up?.stop(15_000);
    rmSync(state, { recursive: true, force: true });
  });

  it('starts Hydra and the sign-in page with the mesh; an MCP client logs in by itself and calls a tool', async () => {
    const users = join(state, 'users.yaml');
    writeFileSync(users, 'users:\n  - username: dora\n    password: dora-password\n    claims: { team: payments, groups: [dba] }\n');
    const [envoy, admin, authz, issuer, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const idpPort = await freeRun();
    const self = selfCommand();
    up = await ManagedProcess.start('up', self.cmd, [...self.args, 'up', ...(process.env.TOLLGATE_TEST_ECHO === '1' ? ['--verbose'] : []), '--no-controlplane', '--idp', 'hydra', '--idp-port', String(idpPort), '--idp-users', users,
      '--state', state, '--envoy-port', String(envoy), '--admin-port', String(admin), '--authz-port', String(authz), '--issuer-port', String(issuer), '--metrics-port', String(metrics)],
    { readyPattern: /Press Ctrl-C to stop/, timeoutMs: 150_000, cwd: projectRoot(), echo: process.env.TOLLGATE_TEST_ECHO === '1' });
    assert.match(up.output, new RegExp(`Authorization server: Ory Hydra at http://127.0.0.1:${idpPort}`));
    const mcp = `http://127.0.0.1:${envoy}/mcp`;
    const provider = new TestOAuthProvider(new TestBrowser({ username: 'dora', password: 'dora-password' }));
    await assert.rejects(new Client({ name: 'a', version: '1' }).connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider })), UnauthorizedError);
    const code = provider.landed?.searchParams.get('code');
    assert.ok(code, provider.landed?.href);
    await new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider }).finishAuth(code);
    // `up` keeps Envoy's 1 s authz deadline; on a loaded test machine the mesh's first allowed checks
    // (cold policy, log, connections) can miss it with a 504. Login is what this test is about, so
    // exactly that answer is retried, a few times at most.
    for (let attempt = 1; ; attempt++) {
      const c = new Client({ name: 'a', version: '1' });
      try {
        await c.connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider }));
        // dora is a payments DBA: the example policy lets her delete expired sessions.
        const r = await c.callTool({ name: 'delete_records', arguments: { table: 'sessions', where: 'expired_at < now()' } });
        assert.notEqual(r.isError, true);
        await c.close();
        break;
      } catch (e) {
        await c.close().catch(() => undefined);
        if (!(e instanceof StreamableHTTPError && e.code === 504) || attempt === 4) throw e;
      }
    }
  });

  it('refuses --idp with anything but hydra, clearly', async () => {
    const self = selfCommand();
    const p = await ManagedProcess.start('up-bad', self.cmd, [...self.args, 'up', '--idp', 'okta', '--state', state], { cwd: projectRoot() });
    assert.equal(await p.exited, 2);
    assert.match(p.output, /--idp okta: the one authorization server up can run is "hydra"/);
  });
});
