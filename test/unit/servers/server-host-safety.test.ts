import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSource } from '../../../src/registry/source.js';
import { envFileProblem, envFileText, podmanInvocation } from '../../../src/servers/container-env.js';
import { buildServerLayer, npmImage } from '../../../src/servers/image.js';
import { installNpm, installPypi } from '../../../src/servers/install.js';
import { cacheDirName, checkImageRef, localServerImage } from '../../../src/servers/names.js';
import { RunRefused, startServer } from '../../../src/servers/run.js';
import { podmanRunArgs } from '../../../src/servers/podman-args.js';
import { DEFAULT_PROFILE } from '../../../src/servers/profile.js';

/**
 * What installing and starting a server may do to the host: no package scripts, no source builds,
 * no operator variable in podman's own environment, no shared image or cache between two sources,
 * nothing but an image reference in a Containerfile. Programs that would touch the host (npm,
 * python, podman) are fakes that record how they were called.
 */

/** An executable node script at `path` (the shebang is this node, so no PATH lookup). */
function fakeProgram(path: string, body: string): string {
  writeFileSync(path, `#!${process.execPath}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Sets environment variables for one test; the returned function restores them. */
function withEnv(vars: Record<string, string>): () => void {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

async function waitFor(file: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let tmp: string;
beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'tollgate-host-safety-')); });
afterEach(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('servers: installing runs no package code on the host', () => {
  it('npm install gets --ignore-scripts', async () => {
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    const log = join(tmp, 'npm-args.json');
    // A fake npm: records its arguments and lays out the package as npm would.
    fakeProgram(join(bin, 'npm'), `
const fs = require('node:fs'), path = require('node:path');
const argv = process.argv.slice(2);
fs.writeFileSync(${JSON.stringify(log)}, JSON.stringify(argv));
const prefix = argv[argv.indexOf('--prefix') + 1];
const spec = argv[argv.length - 1];
const at = spec.lastIndexOf('@');
const dir = path.join(prefix, 'node_modules', ...spec.slice(0, at).split('/'));
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: spec.slice(at + 1), bin: 'server.js' }));`);
    const restore = withEnv({ PATH: `${bin}:${process.env.PATH ?? ''}` });
    try {
      await installNpm('@probe/srv', '1.0.0', join(tmp, 'cache'));
    } finally { restore(); }
    const argv = JSON.parse(readFileSync(log, 'utf8')) as string[];
    assert.equal(argv[0], 'install');
    assert.ok(argv.includes('--ignore-scripts'), `npm ${argv.join(' ')}`);
  });

  it('pip install in the virtualenv takes wheels only (--only-binary=:all:)', async () => {
    const log = join(tmp, 'pip-args.json');
    // A fake python: `-m venv DIR` makes DIR/bin with a fake pip and the console script.
    const python = fakeProgram(join(tmp, 'python3'), `
const fs = require('node:fs'), path = require('node:path');
const dir = process.argv[process.argv.length - 1];
fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
fs.writeFileSync(path.join(dir, 'bin', 'pip'), '#!' + process.execPath + '\\nrequire("node:fs").writeFileSync(' + JSON.stringify(${JSON.stringify(log)}) + ', JSON.stringify(process.argv.slice(2)));\\n', { mode: 0o755 });
fs.writeFileSync(path.join(dir, 'bin', 'probe-srv'), '', { mode: 0o755 });`);
    const restore = withEnv({ TOLLGATE_PYTHON: python });
    try {
      await installPypi('probe-srv', '1.0.0', join(tmp, 'cache'));
    } finally { restore(); }
    const argv = JSON.parse(readFileSync(log, 'utf8')) as string[];
    assert.equal(argv[0], 'install');
    assert.ok(argv.includes('--only-binary=:all:'), `pip ${argv.join(' ')}`);
  });
});

describe('servers: podman never gets the server\'s variables', () => {
  const hostile = ['LD_PRELOAD=/tmp/x.so', 'CONTAINERS_CONF=/tmp/evil.conf', 'CONTAINER_HOST=tcp://203.0.113.1:1', 'PATH=/tmp/evil:/usr/bin', 'API_KEY=s3cret-value'];

  it('podman runs with a fixed environment; variables go only through --env-file', () => {
    const saved = process.env.CONTAINERS_STORAGE_CONF;
    delete process.env.CONTAINERS_STORAGE_CONF;
    try {
      const args = podmanRunArgs({ image: 'img', command: [], envFile: '/state/podman-env/server.env', profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: null, relayScript: null });
      const inv = podmanInvocation(args);
      assert.deepEqual(Object.keys(inv.env).sort(), ['CONTAINERS_CONF', 'PATH']);
      assert.equal(inv.args[inv.args.indexOf('--env-file') + 1], '/state/podman-env/server.env');
      assert.ok(!inv.args.includes('--env'), 'no variable named on the command line');
      assert.ok(!podmanRunArgs({ image: 'img', command: [], envFile: null, profile: DEFAULT_PROFILE, name: 'x', egressSocketDir: null, relayScript: null }).includes('--env-file'));
    } finally {
      if (saved !== undefined) process.env.CONTAINERS_STORAGE_CONF = saved;
    }
  });

  it('env file: exact values or a refusal naming the variable, never its value', () => {
    assert.equal(envFileText({ A: 'x=y #z', B: '' }), 'A=x=y #z\nB=\n');
    for (const bad of ['a\nLD_PRELOAD=/x.so', 'a\r', '"quoted"', ' lead', 'trail\t']) assert.ok(envFileProblem(bad), JSON.stringify(bad));
    assert.throws(() => envFileText({ KEY: 'sec\nret' }), (e: Error) => e.message.includes('KEY') && !e.message.includes('sec'));
  });

  it('startServer (--isolation podman): podman\'s env is fixed, values reach only a 0600 env file removed on stop', async function () {
    this.timeout(20_000);
    const log = join(tmp, 'podman.json');
    // A fake podman: records its environment, arguments and env file, then exits (no container).
    const podman = fakeProgram(join(tmp, 'podman'), `
const fs = require('node:fs');
const argv = process.argv.slice(2);
const i = argv.indexOf('--env-file');
const envFile = i >= 0 ? { text: fs.readFileSync(argv[i + 1], 'utf8'), mode: (fs.statSync(argv[i + 1]).mode & 0o777).toString(8), path: argv[i + 1] } : null;
fs.writeFileSync(${JSON.stringify(log)} + '.tmp', JSON.stringify({ argv, env: process.env, envFile }));
fs.renameSync(${JSON.stringify(log)} + '.tmp', ${JSON.stringify(log)});
process.exit(1);`);
    const restore = withEnv({ TOLLGATE_PODMAN: podman });
    let server;
    try {
      server = await startServer({
        name: 'probe', source: parseSource('image:localhost/tollgate-test-none:1'), args: [], env: { env: hostile },
        isolation: 'podman', stateDir: join(tmp, 'state'),
      });
      // The first session starts the server process (here: the fake podman).
      await fetch(server.bridge.url, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
      }).then((r) => r.text()).catch(() => undefined);
      await waitFor(log);
    } finally { restore(); }
    const seen = JSON.parse(readFileSync(log, 'utf8')) as { argv: string[]; env: Record<string, string>; envFile: { text: string; mode: string; path: string } | null };
    for (const k of ['LD_PRELOAD', 'CONTAINER_HOST', 'API_KEY']) assert.equal(seen.env[k], undefined, `${k} in podman's environment`);
    assert.notEqual(seen.env.CONTAINERS_CONF, '/tmp/evil.conf');
    assert.ok(!(seen.env.PATH ?? '').includes('/tmp/evil'), `podman's PATH: ${seen.env.PATH}`);
    assert.ok(!seen.argv.some((a) => a.includes('s3cret-value') || a.includes('LD_PRELOAD')), `podman ${seen.argv.join(' ')}`);
    assert.ok(!seen.argv.includes('--env') || !seen.argv.some((a, i) => seen.argv[i - 1] === '--env' && /^(API_KEY|LD_PRELOAD|PATH)$/.test(a)));
    assert.ok(seen.envFile, 'an --env-file');
    assert.equal(seen.envFile.mode, '600');
    for (const v of hostile) assert.ok(seen.envFile.text.split('\n').includes(v), `${v.split('=')[0]} in the env file`);
    await server.stop();
    assert.equal(existsSync(seen.envFile.path), false, 'env file removed on stop');
  });

  it('startServer (--isolation podman) refuses a value the env file cannot carry', async () => {
    await assert.rejects(startServer({
      name: 'probe', source: parseSource('image:localhost/tollgate-test-none:1'), args: [], env: { env: ['KEY=a\nLD_PRELOAD=/x.so'] },
      isolation: 'podman', stateDir: join(tmp, 'state'),
    }), (e: Error) => e instanceof RunRefused && e.message.includes('KEY'));
  });
});

describe('servers: names of installs and local images are injective', () => {
  // Split by hand, not parseSource: the names must stay apart whatever the source grammar admits.
  const src = (s: string): { kind: 'npx' | 'uvx'; pkg: string; version: string } => {
    const at = s.lastIndexOf('@');
    return { kind: s.startsWith('npx:') ? 'npx' : 'uvx', pkg: s.slice(4, at), version: s.slice(at + 1) };
  };

  it('local image names: scope, unscoped look-alike, version spellings never share one', () => {
    const pairs = [
      ['npx:@modelcontextprotocol/server-filesystem@2026.8.31', 'npx:modelcontextprotocol-server-filesystem@2026.8.31'],
      ['npx:a~b@1.0.0', 'npx:a-b@1.0.0'],
      ['npx:a@1.0.0+x', 'npx:a@1.0.0-x'],
      ['uvx:pkg@1!0', 'uvx:pkg@1-0'],
    ];
    for (const [a, b] of pairs) assert.notEqual(localServerImage(src(a!), 'abc'), localServerImage(src(b!), 'abc'), `${a} vs ${b}`);
    const scoped = localServerImage(src('npx:@modelcontextprotocol/server-filesystem@2026.8.31'), '0123456789ab');
    assert.match(scoped, /^localhost\/tollgate-run\/tollgate-server-npm\/modelcontextprotocol\/server-filesystem:2026\.8\.31-[0-9a-f]{16}-0123456789ab$/);
    const long = localServerImage(src(`npx:a@1.0.0-${'x'.repeat(200)}`), 'py3.11-0123456789ab');
    assert.ok(long.slice(long.lastIndexOf(':') + 1).length <= 128);
  });

  it('install cache directories: distinct for sources a character mapping would merge', () => {
    for (const [a, b] of [['npx:@a/b_c@1.0.0', 'npx:@a_b/c@1.0.0'], ['uvx:pkg@1!0', 'uvx:pkg@1_0'], ['uvx:Pkg@1.0', 'uvx:pkg@1.0']]) {
      assert.notEqual(cacheDirName(src(a!)).toLowerCase(), cacheDirName(src(b!)).toLowerCase(), `${a} vs ${b}`);
    }
  });

  it('npmImage: an unscoped look-alike does not get the scoped package\'s existing image', async () => {
    const log = join(tmp, 'podman-calls');
    // A fake podman: reports a base image id, says every image exists (so nothing is built).
    const podman = fakeProgram(join(tmp, 'podman'), `
const fs = require('node:fs');
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(argv) + '\\n');
if (argv[0] === 'image' && argv[1] === 'inspect') process.stdout.write('sha256:' + 'ab'.repeat(32) + '\\n');
process.exit(argv[0] === 'image' ? 0 : 1);`);
    const installed = (pkg: string): Parameters<typeof npmImage>[0] => {
      const dir = join(tmp, pkg.replace(/[@/]/g, '_'));
      mkdirSync(join(dir, 'node_modules', ...pkg.split('/')), { recursive: true });
      writeFileSync(join(dir, 'node_modules', ...pkg.split('/'), 'package.json'), JSON.stringify({ version: '2026.8.31', bin: 'dist/index.js' }));
      return { kind: 'npx', pkg, version: '2026.8.31', dir, command: 'node', args: [] };
    };
    const restore = withEnv({ TOLLGATE_PODMAN: podman });
    try {
      const a = await npmImage(installed('@modelcontextprotocol/server-filesystem'));
      const b = await npmImage(installed('modelcontextprotocol-server-filesystem'));
      assert.notEqual(a.image, b.image);
    } finally { restore(); }
  });
});

describe('servers: only image references go into a Containerfile', () => {
  it('checkImageRef takes references and refuses lines, options and URLs', () => {
    for (const ok of ['localhost/tollgate:0.1.0', 'registry.example.com:5000/mcp/x@sha256:' + 'a'.repeat(64), 'Docker.io/library/node:20_x']) assert.equal(checkImageRef(ok, 'x'), ok);
    for (const bad of ['img\nRUN id\nUSER 0', '--privileged', 'http://evil/x', 'a b', '', 'x'.repeat(256)]) assert.throws(() => checkImageRef(bad, 'x'), /not an image reference/, JSON.stringify(bad));
  });

  it('buildServerLayer refuses a --from or tag with a line break before podman runs', async () => {
    const log = join(tmp, 'podman-calls');
    const podman = fakeProgram(join(tmp, 'podman'), `require('node:fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify(process.argv.slice(2)) + '\\n'); process.exit(1);`);
    const restore = withEnv({ TOLLGATE_PODMAN: podman });
    try {
      await assert.rejects(buildServerLayer('localhost/x:1', tmp, 'localhost/tollgate:1\nRUN id\nUSER 0', true), /not an image reference/);
      await assert.rejects(buildServerLayer('localhost/x:1\nRUN id', tmp, 'localhost/tollgate:1', true), /not an image reference/);
      const restoreBase = withEnv({ TOLLGATE_BASE_IMAGE: 'base\nRUN id' });
      try { await assert.rejects(buildServerLayer('localhost/x:1', tmp, undefined, true), /not an image reference/); } finally { restoreBase(); }
    } finally { restore(); }
    assert.equal(existsSync(log), false, 'podman was not run');
  });
});
