import { strict as assert } from 'node:assert';
import { podmanRunArgs } from '../../../src/servers/podman-args.js';
import { DEFAULT_PROFILE, egressAllowed, parseProfile } from '../../../src/servers/profile.js';
import { parseServerSpec, parseSource } from '../../../src/registry/source.js';
import { serverEnv } from '../../../src/servers/env.js';

describe('servers: sources', () => {
  it('parses pinned npm, PyPI, image and registry sources and refuses unpinned or odd ones', () => {
    assert.deepEqual(parseSource('npx:@modelcontextprotocol/server-filesystem@2026.8.31'), { kind: 'npx', pkg: '@modelcontextprotocol/server-filesystem', version: '2026.8.31' });
    assert.deepEqual(parseSource('uvx:mcp-server-time==2026.10.19'), { kind: 'uvx', pkg: 'mcp-server-time', version: '2026.10.19' });
    assert.deepEqual(parseSource('image:localhost/x:1'), { kind: 'image', ref: 'localhost/x:1' });
    assert.deepEqual(parseSource('io.github.x/time'), { kind: 'registry', name: 'io.github.x/time' });
    assert.throws(() => parseSource('npx:@modelcontextprotocol/server-filesystem'), /no version: pin one/);
    assert.throws(() => parseSource('npx:Bad Name@1'), /not an npm package name/);
    assert.throws(() => parseSource('git:foo'), /unknown source/);
    assert.throws(() => parseServerSpec('npx:a@1'), /NAME=SOURCE/);
    assert.throws(() => parseServerSpec('Bad=npx:a@1'), /lowercase/);
  });
});

describe('servers: permission profiles (ToolHive format)', () => {
  it('reads read/write mounts and the outbound allow-list, and opens exactly those', () => {
    const p = parseProfile({ read: ['/srv/data'], write: ['/tmp/out:/out'], network: { outbound: { insecure_allow_all: false, allow_host: ['api.example.com', '.example.org'], allow_port: [443] } } });
    assert.deepEqual(p.mounts, [{ host: '/srv/data', container: '/srv/data', writable: false }, { host: '/tmp/out', container: '/out', writable: true }]);
    assert.ok(egressAllowed(p, 'api.example.com', 443));
    assert.ok(egressAllowed(p, 'x.example.org', 443));
    assert.ok(!egressAllowed(p, 'api.example.com', 80));
    assert.ok(!egressAllowed(p, 'evil.com', 443));
    assert.ok(!egressAllowed(p, 'notexample.org', 443));
    assert.ok(!egressAllowed(DEFAULT_PROFILE, '127.0.0.1', 80));
  });

  it('refuses what it cannot honour', () => {
    assert.throws(() => parseProfile({ read: ['relative/path'] }), /absolute/);
    assert.throws(() => parseProfile({ privileged: true }), /never/);
    assert.throws(() => parseProfile({ network: { outbound: { allow_port: [0] } } }), /1-65535/);
    assert.throws(() => parseProfile({ mounts: [] }), /unknown field/);
  });
});

describe('servers: podman arguments', () => {
  it('locks the container down by default and passes variables by env file, never values', () => {
    const a = podmanRunArgs({ image: 'img', command: ['node', 's.js'], envFile: '/run/x/server.env', profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: null, relayScript: null });
    for (const f of [['--network', 'none'], ['--read-only'], ['--security-opt', 'no-new-privileges'], ['--cap-drop', 'all'], ['--user', '65532:65532'], ['--pids-limit', '256'], ['--env-file', '/run/x/server.env']]) {
      const i = a.indexOf(f[0]!);
      assert.ok(i >= 0 && (f.length === 1 || a[i + 1] === f[1]), `${f.join(' ')} in ${a.join(' ')}`);
    }
    assert.deepEqual(a.slice(-4), ['--', 'img', 'node', 's.js']);
  });

  it('server env: only PATH/HOME/LANG inherited, operator variables named', () => {
    process.env.TOLLGATE_TEST_SECRET_SHOULD_NOT_LEAK = 'x';
    const { env, names } = serverEnv({ env: ['A=1'] }, '/home/x');
    assert.deepEqual(names, ['A']);
    assert.equal(env.TOLLGATE_TEST_SECRET_SHOULD_NOT_LEAK, undefined);
    assert.equal(env.HOME, '/home/x');
    delete process.env.TOLLGATE_TEST_SECRET_SHOULD_NOT_LEAK;
  });
});
