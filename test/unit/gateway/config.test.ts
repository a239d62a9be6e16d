import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { refuseHost } from '../../../src/bridge/host-check.js';
import { loadGatewayConfig, parseGatewayConfig } from '../../../src/gateway/config.js';

describe('gateway config: allowed_hosts (DNS-rebinding protection)', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-gwcfg-')); writeFileSync(join(dir, 'secret'), 's\n'); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const base = (extra: Record<string, unknown>) => parseGatewayConfig({
    identity: { issuer: 'https://idp.example.com' }, delegation: { client_id: 'gw', client_secret_file: 'secret' },
    servers: [{ name: 'a', url: 'http://127.0.0.1:1/mcp' }], ...extra,
  }, dir);

  it('defaults to loopback names when listening on loopback', () => {
    const c = base({ listen: '127.0.0.1:9000' });
    assert.deepEqual(c.allowedHostnames.sort(), ['127.0.0.1', '[::1]', 'localhost']);
    assert.equal(refuseHost('localhost:9000', undefined, c.allowedHostnames), null);
    assert.match(refuseHost('evil.example.com', 'http://evil.example.com', c.allowedHostnames) ?? '', /Host "evil\.example\.com"/);
    assert.match(refuseHost('127.0.0.1:9000', 'http://evil.example.com', c.allowedHostnames) ?? '', /Origin/);
  });

  it('defaults to the public URL\'s host name only when listening elsewhere', () => {
    const c = base({ listen: '0.0.0.0:9000', public_url: 'https://MCP.example.com/mcp' });
    assert.deepEqual(c.allowedHostnames, ['mcp.example.com']);
    assert.notEqual(refuseHost('127.0.0.1:9000', undefined, c.allowedHostnames), null);
  });

  it('takes an explicit list, lower-cased, and refuses a port or pattern in it', () => {
    assert.deepEqual(base({ allowed_hosts: ['Gw.Internal', '[::1]'] }).allowedHostnames, ['gw.internal', '[::1]']);
    assert.throws(() => base({ allowed_hosts: ['gw.internal:443'] }), /allowed_hosts\.0: must be a host name without port/);
    assert.throws(() => base({ allowed_hosts: ['*.example.com'] }), /allowed_hosts\.0/);
    assert.throws(() => base({ allowed_hosts: [] }), /allowed_hosts/);
  });

  it('command-line overrides of listen derive public_url and allowed hosts from the flag', () => {
    const file = join(dir, 'gw.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:9000\nidentity: {issuer: https://idp.example.com}\ndelegation: {client_id: gw, client_secret_file: secret}\nservers: [{name: a, url: "http://127.0.0.1:1/mcp"}]\n');
    const c = loadGatewayConfig(file, { listen: 'gw.internal:9443', mode: 'optimizer' });
    assert.equal(c.publicUrl, 'http://gw.internal:9443/mcp');
    assert.deepEqual(c.allowedHostnames, ['gw.internal']);
    assert.equal(c.mode, 'optimizer');
    assert.throws(() => loadGatewayConfig(file, { mode: 'fast' }), /mode/);
  });
});
