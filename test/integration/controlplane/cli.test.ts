import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { controlplaneCommand } from '../../../src/cli/controlplane.js';
import { NatsServer } from '../../../src/nats/server.js';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { loadVerificationKeys } from '../../../src/bundle/keys.js';
import { writePolicy } from './support.js';

/** Runs the command with stdout/stderr captured. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    return { code: await controlplaneCommand.run(argv), out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

describe('tollgate controlplane CLI', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-cp-cli-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('documents every flag in --help', async () => {
    const serve = await run(['serve', '--help']);
    assert.equal(serve.code, 0);
    for (const f of ['--policies', '--signing-key', '--key-id', '--nats', '--entrypoint', '--debounce', '--poll', '--bucket', '--kv-bucket', '--policy-set', '--keep', '--scope', '--once', '--help']) {
      assert.ok(serve.out.includes(f), `serve --help lacks ${f}`);
    }
    const keys = await run(['keys', '--help']);
    for (const f of ['--out', '--alg', '--force', '--help']) assert.ok(keys.out.includes(f), `keys --help lacks ${f}`);
    assert.equal((await run(['--help'])).code, 0);
    const nope = await run(['nope']);
    assert.equal(nope.code, 2);
    assert.match(nope.err, /^tollgate controlplane: unknown subcommand "nope" \(one of: serve, keys, nats-certs\)\n\nUsage: tollgate controlplane/);
  });

  it('keys writes a private key readable only by its owner and refuses to overwrite it', async () => {
    const r = await run(['keys', '--out', dir, '--alg', 'ES256']);
    assert.equal(r.code, 0);
    const kid = /key id:\s+(\S+)/.exec(r.out)![1];
    assert.equal(statSync(join(dir, 'bundle-signing.key.pem')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'bundle-signing.key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const [pub] = await loadVerificationKeys(join(dir, 'bundle-signing.pub.pem'));
    assert.equal(pub!.kid, kid);
    assert.equal(pub!.alg, 'ES256');
    await assert.rejects(run(['keys', '--out', dir]), /exists; pass --force/);
    await assert.rejects(run(['keys', '--out', dir, '--alg', 'HS256', '--force']), /--alg must be one of RS256, ES256, EdDSA/);
  });

  it('serve --once publishes, is a no-op when nothing changed, and fails on a broken policy', async () => {
    const srv = await NatsServer.start();
    try {
      await run(['keys', '--out', join(dir, 'keys')]);
      const pol = join(dir, 'policies');
      writePolicy(pol, ['a']);
      const args = ['serve', '--once', '--policies', pol, '--signing-key', join(dir, 'keys', 'bundle-signing.key.pem'), '--nats', srv.url, '--state', join(dir, 'state')];
      const first = await run(args);
      assert.equal(first.code, 0, first.err);
      assert.match(first.err, /published revision 1 as current\/000000000001-/);
      const second = await run(args);
      assert.equal(second.code, 0, second.err);
      assert.match(second.err, /unchanged: revision 1 already has this content/);

      writeFileSync(join(pol, 'authz.rego'), 'package tollgate.authz\n\nallow if {\n');
      const third = await run(args);
      assert.equal(third.code, 1);
      assert.match(third.err, /build failed, nothing published/);

      const nc = await connect({ servers: srv.url });
      assert.equal((await (await BundlePublisher.open(nc)).current())?.revision, 1);
      await nc.close();
    } finally {
      await srv.dispose();
    }
  });

  it('serve refuses missing required flags with a usage error', async () => {
    await assert.rejects(run(['serve', '--signing-key', 'k']), /--policies DIR is required/);
    await assert.rejects(run(['serve', '--policies', dir]), /--signing-key FILE is required/);
    await assert.rejects(run(['serve', '--policies', dir, '--signing-key', 'k', '--keep', '1']), /--keep must be an integer of at least 2/);
  });
});
