import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { keyFile } from '../../../src/identity/keystore.js';
import { createVerifier } from '../../../src/identity/verifier.js';
import { projectRoot } from '../../../src/util/tools.js';
import { freePort } from '../../../src/util/net.js';

const AUD = 'http://127.0.0.1:10000/mcp';
const run = promisify(execFile);

interface Result { code: number; stdout: string; stderr: string }

async function tollgate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join('src', 'cli', 'main.ts'), ...args], {
      cwd: projectRoot(), env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function lastLine(s: string): string {
  return s.trimEnd().split('\n').at(-1) ?? '';
}

describe('tollgate token', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'tollgate-token-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('creates the key if needed; an issuer started later serves it and the token verifies', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r = await tollgate(['token', '--sub', 'alice', '--team', 'payments', '--agent', 'claude', '--groups', 'eng,oncall',
      '--scope', 'tools:read tools:write', '--act', 'agent-x', '--act', 'orchestrator', '--ttl', '15m', '--issuer', url, '--state', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sub=alice team=payments agent=claude/);
    assert.match(r.stdout, /created a new ES256 signing key/);
    assert.equal((await stat(keyFile(dir))).mode & 0o777, 0o600);

    const issuer = await DevIssuer.start({ port, stateDir: dir });
    try {
      const id = await createVerifier({ issuer: url, audience: [AUD], algorithms: ['ES256'], clockToleranceSec: 0, claims: { team: 'team', groups: 'groups', agent: 'agent' } })
        .verify(lastLine(r.stdout));
      assert.deepEqual(
        [id.sub, id.team, id.agent, id.groups, id.scopes, id.delegation],
        ['alice', 'payments', 'claude', ['eng', 'oncall'], ['tools:read', 'tools:write'], [{ sub: 'agent-x' }, { sub: 'orchestrator' }]],
      );
      assert.equal(id.expiresAt - (id.claims.iat as number), 900);
    } finally {
      await issuer.close();
    }
  });

  it('uses the defaults and $TOLLGATE_STATE_DIR, reusing an existing key', async () => {
    const first = await tollgate(['token', '--sub', 'bob'], { TOLLGATE_STATE_DIR: dir });
    assert.equal(first.code, 0, first.stderr);
    const second = await tollgate(['token', '--sub', 'bob', '--aud', 'http://a/mcp', '--aud', 'http://b/mcp', '--claim', 'tier=3'], { TOLLGATE_STATE_DIR: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /created/);
    const [h, p] = lastLine(second.stdout).split('.');
    const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString()) as { kid: string };
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.equal(payload.iss, 'http://127.0.0.1:5556');
    assert.deepEqual(payload.aud, ['http://a/mcp', 'http://b/mcp']);
    assert.equal(payload.tier, 3);
    assert.equal((payload.exp as number) - (payload.iat as number), 3600);
    assert.match(first.stdout, new RegExp(`key ${header.kid}`));
    const defaultAud = JSON.parse(Buffer.from(lastLine(first.stdout).split('.')[1] ?? '', 'base64url').toString()) as { aud: string };
    assert.equal(defaultAud.aud, AUD);
  });

  it('documents every flag in --help', async () => {
    const r = await tollgate(['token', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--sub', '--team', '--agent', '--groups', '--scope', '--act', '--ttl', '--aud', '--issuer', '--state', '--alg', '--claim', '--help']) {
      assert.ok(r.stdout.includes(flag), flag);
    }
    assert.match(r.stdout, /tail -1/);
  });

  it('refuses bad input with a usage error and exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['token'], /--sub is required/],
      [['token', '--sub', 'a', '--ttl', 'soon'], /bad duration/],
      [['token', '--sub', 'a', '--ttl', '0s'], /--ttl must be from 1s to 365d, got "0s"/],
      // Past what a Date holds this was a RangeError (exit 1); past a year it is no dev token.
      [['token', '--sub', 'a', '--ttl', '99999999999d'], /--ttl must be from 1s to 365d, got "99999999999d"/],
      [['token', '--sub', 'a', '--ttl', '366d'], /--ttl must be from 1s to 365d/],
      [['token', '--sub', 'a', '--aud', 'not-a-url'], /--aud/],
      [['token', '--sub', 'a', '--alg', 'HS256'], /--alg/],
      [['token', '--sub', 'a', '--claim', 'exp=1'], /--claim cannot set "exp"/],
      [['token', '--sub', 'a', '--bogus'], /Unknown option/],
    ];
    for (const [args, msg] of cases) {
      const r = await tollgate([...args, '--state', dir]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, msg);
      assert.equal(r.stdout, '');
    }
  });
});
