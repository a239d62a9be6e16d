import { strict as assert } from 'node:assert';
import { podmanRunArgs } from '../../../src/servers/podman-args.js';
import { DEFAULT_PROFILE } from '../../../src/servers/profile.js';
import { imageRefProblem, isExactSemver, isPep440Version, parseSource, SourceError } from '../../../src/registry/source.js';
import { runnableOf, validateServerJson, type ServerJson } from '../../../src/registry/server-json.js';

const refused = (s: string, want: RegExp): void => assert.throws(() => parseSource(s), (e: Error) => e instanceof SourceError && want.test(e.message), s);

describe('servers: source rules', () => {
  it('npx: takes exact semver versions only', () => {
    for (const v of ['1.2.3', '0.0.0', '2026.8.31', '1.0.0-rc.1', '1.0.0-alpha-1.0a', '1.0.0+build.5', '2.0.0-rc.1+build.05', '1.0.0-0.3.7', '1.0.0-x-y-z.--']) {
      assert.deepEqual(parseSource(`npx:@scope/pkg@${v}`), { kind: 'npx', pkg: '@scope/pkg', version: v }, v);
    }
    for (const v of ['latest', 'next', '1', '1.2', '1.x', '^1.2.3', '~1.2.3', '>=1.0.0', '1.2.3 - 2', 'v1.2.3', '=1.2.3', '01.2.3', '1.02.3', '1.2.3-01',
      '1.2.3-', '1.2.3+', '1.2.3-a..b', '1.2.3+a_b', '1.2.3.4', '*', '']) {
      refused(`npx:pkg@${v}`, /npm package pkg: ".*" is not an exact version: npx: sources pin one semver version MAJOR\.MINOR\.PATCH/);
    }
  });

  it('npx: and uvx: refuse versions that npm or pip would install as a local archive', () => {
    for (const v of ['1.0.0.tgz', '1.0.0-x.tgz', '1.0.0+b.tar', '1.0.0-a.tar.gz', '1.0.0-a.zip', '1.0.0+x.whl', '1.0.0-A.TGZ']) refused(`npx:probe-srv@${v}`, /is not an exact version/);
    for (const v of ['1.0.zip', '1.0.tar.gz', '1.0.whl', '1.0.tgz', '1.0.tar']) refused(`uvx:probepkg@${v}`, /PyPI package probepkg: ".*" is not an exact version: uvx: sources pin one PEP 440/);
    refused('npx:probe-srv@http://127.0.0.1:18765/probe.tgz?x=', /not an exact version/);
  });

  it('uvx: takes PEP 440 public versions in normalised form', () => {
    for (const v of ['1', '1.0', '2026.10.19', '1.0a1', '1.0b2', '1.0rc1', '1.0.post1', '1.0.dev3', '1.0rc1.post2.dev3', '1!2.0', '2025.01.05']) {
      assert.equal((parseSource(`uvx:mcp-server-time@${v}`) as { version: string }).version, v, v);
      assert.equal((parseSource(`uvx:mcp-server-time==${v}`) as { version: string }).version, v, v);
    }
    for (const v of ['latest', '1.*', '>=1', '1.0+local', '1.0-rc1', 'v1.0', '1.0RC1', '1.0.', '.1', 'rc1', '1!', '!1', 'a!1', '1.0.post', '1.0.dev1.post1', '1.0.rc1', '=1.0', '']) {
      refused(`uvx:mcp-server-time@${v}`, /is not an exact version: uvx: sources pin one PEP 440 public version/);
    }
  });

  it('image: takes plain image references and refuses podman transports and odd names', () => {
    for (const r of ['localhost/x:1', 'alpine', 'alpine:3.20', 'docker.io/library/alpine:3', 'registry.example/team/fetch:1.2', 'localhost:5000/a/b_c__d.e-f--g:v1_2',
      'ghcr.io/o/r@sha256:' + 'a'.repeat(64), 'ghcr.io/o/r:1@sha256:' + '0'.repeat(64), 'Reg.Example:443/x', '127.0.0.1:5000/x:1', 'localhost/tollgate-server-npm-a:1.0.0-c5cc12be0e9d']) {
      assert.deepEqual(parseSource(`image:${r}`), { kind: 'image', ref: r }, r);
    }
    for (const r of ['oci:/tmp/probe-src/basedir', 'oci-archive:/tmp/x.tar', 'docker-archive:/tmp/x.tar', 'dir:/tmp/x', 'dir:5000/x', 'containers-storage:localhost/x:1',
      'containers-storage:x', 'docker://alpine', 'docker-daemon:alpine:3', 'sif:/x.sif', 'tarball:/x.tar', 'ostree:x@/repo', 'OCI:/tmp/x', 'http://127.0.0.1/x']) {
      refused(`image:${r}`, /is not an image reference: .*(transport|URL)/);
    }
    for (const r of ['', '--user=0', '-v', 'UPPER/Case', 'a:b/c', 'foo:/tmp/x', 'x/', '/x', 'x//y', 'a/.b', 'a/b.', 'a/b..c', 'a/b___c', 'a/b-.c', 'x:', 'x:.t', 'x:' + 't'.repeat(129),
      'x@sha256:abc', 'x@md5:' + 'a'.repeat(64), 'x@sha256:' + 'A'.repeat(64), 'a b', 'a\nb', 'ex-.com/x', 'ex.com:99999999/x', 'x:1:2', 'x@y@sha256:' + 'a'.repeat(64), 'a'.repeat(256)]) {
      refused(`image:${r}`, /is not an image reference/);
    }
    assert.equal(imageRefProblem('localhost/x', { bare: true }), null);
    assert.match(imageRefProblem('localhost/x:1', { bare: true })!, /not an image name without tag or digest/);
  });

  it('checks image references in linear time', () => {
    const start = Date.now();
    for (const r of [`a${'-'.repeat(50_000)}!`, `${'a.'.repeat(30_000)}/x`, `a/${'a_'.repeat(30_000)}-`, `x:${'a'.repeat(100_000)}`]) imageRefProblem(r);
    for (const v of [`1.0.0-${'a.'.repeat(30_000)}`, `${'1.'.repeat(30_000)}x`]) { isExactSemver(v); isPep440Version(v); }
    assert.ok(Date.now() - start < 1000);
  });

  it('registry entries: NAME and NAME@VERSION, both parts checked', () => {
    assert.deepEqual(parseSource('io.github.x/time'), { kind: 'registry', name: 'io.github.x/time' });
    assert.deepEqual(parseSource('io.github.modelcontextprotocol/time@2026.10.19'), { kind: 'registry', name: 'io.github.modelcontextprotocol/time@2026.10.19' });
    assert.deepEqual(parseSource('io.github.x/time@2.0.0-rc.1+build.5'), { kind: 'registry', name: 'io.github.x/time@2.0.0-rc.1+build.5' });
    refused('io.github.x/time@', /"" is not an entry version/);
    refused('io.github.x/time@^1', /"\^1" is not an entry version/);
    refused('@1.0.0', /"" is not a registry entry name/);
    refused('a@b@1', /"a@b" is not a registry entry name/);
    refused('io.github.x/time@1/../x', /not an entry version/);
  });
});

const entry = (pkg: Record<string, unknown>): Record<string, unknown> => ({ name: 'io.example/probe', version: '1.0.0', packages: [{ transport: { type: 'stdio' }, ...pkg }] });

describe('registry: package identifiers and versions follow the source rules', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ registryType: 'oci', identifier: '--user=0' }, /"--user=0" is not an image reference: it starts with "-", like a podman option/],
    [{ registryType: 'oci', identifier: '--privileged', version: '1' }, /identifier "--privileged" is not an image name without tag or digest/],
    [{ registryType: 'oci', identifier: 'oci:/tmp/probe-src/basedir' }, /podman transport/],
    [{ registryType: 'oci', identifier: 'localhost/x', version: '--user=0' }, /"localhost\/x:--user=0" is not an image reference/],
    [{ registryType: 'oci', identifier: 'localhost/x:1', version: '2' }, /not an image name without tag or digest/],
    [{ registryType: 'oci', identifier: 'localhost/x', version: '' }, /version must be a non-empty string/],
    [{ registryType: 'npm', identifier: 'http://127.0.0.1:18765/probe.tgz?x=', version: '1.0.0' }, /"http:\/\/127\.0\.0\.1:18765\/probe\.tgz\?x=" is not an npm package name/],
    [{ registryType: 'npm', identifier: '--registry=http://evil', version: '1.0.0' }, /not an npm package name/],
    [{ registryType: 'npm', identifier: 'probe-srv', version: '1.0.0.tgz' }, /npm package probe-srv: "1\.0\.0\.tgz" is not an exact version/],
    [{ registryType: 'npm', identifier: 'probe-srv', version: 'latest' }, /not an exact version/],
    [{ registryType: 'pypi', identifier: 'probepkg', version: '1.0.zip' }, /PyPI package probepkg: "1\.0\.zip" is not an exact version/],
    [{ registryType: 'pypi', identifier: '/tmp/probe-src/w', version: '1.0' }, /not a PyPI package name/],
    [{ registryType: 'pypi', identifier: 'probepkg', version: '>=1' }, /not an exact version/],
  ];

  it('validateServerJson refuses them, naming the package', () => {
    for (const [pkg, want] of bad) {
      assert.throws(() => validateServerJson(entry(pkg)), (e: Error) => e.message.startsWith('invalid server.json: packages[0]: ') && want.test(e.message), JSON.stringify(pkg));
    }
  });

  it('runnableOf refuses them too, for an entry that did not come through validateServerJson', () => {
    for (const [pkg, want] of bad) {
      assert.throws(() => runnableOf(entry(pkg) as unknown as ServerJson), (e: Error) => e instanceof SourceError && /^registry entry io\.example\/probe@1\.0\.0: /.test(e.message) && want.test(e.message), JSON.stringify(pkg));
    }
    assert.throws(() => runnableOf(entry({ registryType: 'nuget', identifier: 'x', version: '1.0.0' }) as unknown as ServerJson), /registryType must be npm, pypi or oci/);
  });

  it('takes good packages and runs them as the matching source', () => {
    const cases: Array<[Record<string, unknown>, unknown]> = [
      [{ registryType: 'npm', identifier: '@modelcontextprotocol/server-everything', version: '2026.8.31' }, { kind: 'npx', pkg: '@modelcontextprotocol/server-everything', version: '2026.8.31' }],
      [{ registryType: 'pypi', identifier: 'mcp-server-time', version: '2026.10.19' }, { kind: 'uvx', pkg: 'mcp-server-time', version: '2026.10.19' }],
      [{ registryType: 'oci', identifier: 'ghcr.io/o/server', version: '1.2.3' }, { kind: 'image', ref: 'ghcr.io/o/server:1.2.3' }],
      [{ registryType: 'oci', identifier: 'ghcr.io/o/server:1.2.3' }, { kind: 'image', ref: 'ghcr.io/o/server:1.2.3' }],
    ];
    for (const [pkg, source] of cases) assert.deepEqual(runnableOf(validateServerJson(entry(pkg))).source, source);
  });
});

describe('servers: podman arguments end options before the image', () => {
  it('puts "--" before the image, so an image name is never read as an option', () => {
    const a = podmanRunArgs({ image: 'localhost/x:1', command: ['--user=0', '-v'], envFile: null, profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: null, relayScript: null });
    assert.deepEqual(a.slice(-4), ['--', 'localhost/x:1', '--user=0', '-v']);
    assert.equal(a.indexOf('--'), a.length - 4);
    const e = podmanRunArgs({ image: 'img', command: ['s'], envFile: null, profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: '/tmp/e', relayScript: '/tmp/r.mjs' });
    assert.deepEqual(e.slice(e.indexOf('--')), ['--', 'img', 'node', '/opt/tollgate/egress-relay.mjs', 's']);
    for (const image of ['--user=0', '-v', '']) {
      assert.throws(() => podmanRunArgs({ image, command: [], envFile: null, profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: null, relayScript: null }), /is not an image name/);
    }
  });
});
