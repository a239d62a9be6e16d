import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BASE_IMAGE, ENVOY_IMAGE_REPO, ENVOY_VERSION, TOLLGATE_IMAGE_REPO, baseImage, envoyImage, tollgateImage } from '../../../src/containers/images.js';
import { containersConf, podman, podmanEnv } from '../../../src/containers/podman.js';
import { projectRoot } from '../../../src/util/tools.js';

function envFile(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(projectRoot(), 'images', 'images.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function withEnv(vars: Record<string, string | undefined>, fn: () => void | Promise<void>): Promise<void> {
  const saved: Record<string, string | undefined> = {};
  for (const k of Object.keys(vars)) { saved[k] = process.env[k]; if (vars[k] === undefined) delete process.env[k]; else process.env[k] = vars[k]; }
  return Promise.resolve().then(fn).finally(() => {
    for (const k of Object.keys(saved)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k]; }
  });
}

describe('container image names', () => {
  it('match images/images.env and the Makefile, which build them', () => {
    const env = envFile();
    assert.equal(DEFAULT_BASE_IMAGE, env.TOLLGATE_BASE_IMAGE);
    assert.equal(DEFAULT_BASE_IMAGE, `localhost/tollgate-base:${env.TOLLGATE_DEBIAN_SUITE}-${env.TOLLGATE_BASE_REVISION}`);
    assert.equal(TOLLGATE_IMAGE_REPO, env.TOLLGATE_IMAGE_REPO);
    assert.equal(ENVOY_IMAGE_REPO, env.TOLLGATE_ENVOY_IMAGE_REPO);
    const makefile = readFileSync(join(projectRoot(), 'Makefile'), 'utf8');
    assert.match(makefile, new RegExp(`^ENVOY_VERSION := ${ENVOY_VERSION.replace(/\./g, '\\.')}$`, 'm'));
  });

  it('default to the local tags and give way to the variables make exports', async () => {
    const version = (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
    await withEnv({ TOLLGATE_BASE_IMAGE: undefined, TOLLGATE_IMAGE: undefined, TOLLGATE_ENVOY_IMAGE: undefined }, () => {
      assert.equal(baseImage(), DEFAULT_BASE_IMAGE);
      assert.equal(tollgateImage(), `localhost/tollgate:${version}`);
      assert.equal(envoyImage(), `localhost/tollgate-envoy:${ENVOY_VERSION}`);
    });
    await withEnv({ TOLLGATE_BASE_IMAGE: 'b:1', TOLLGATE_IMAGE: 't:2', TOLLGATE_ENVOY_IMAGE: 'e:3' }, () => {
      assert.deepEqual([baseImage(), tollgateImage(), envoyImage()], ['b:1', 't:2', 'e:3']);
    });
  });
});

describe('podman runner', () => {
  it("uses the project's containers.conf unless CONTAINERS_CONF names another", async () => {
    await withEnv({ CONTAINERS_CONF: undefined }, () => {
      assert.equal(containersConf(), join(projectRoot(), '.tools', 'podman', 'containers.conf'));
      assert.equal(podmanEnv({ PATH: '/bin' }).CONTAINERS_CONF, containersConf());
    });
    await withEnv({ CONTAINERS_CONF: '/etc/x.conf' }, () => assert.equal(podmanEnv({}).CONTAINERS_CONF, '/etc/x.conf'));
  });

  it("keeps the operator's CONTAINERS_STORAGE_CONF in a minimal environment, and a server's cannot set it", async () => {
    await withEnv({ CONTAINERS_STORAGE_CONF: '/srv/storage.conf' }, () => {
      assert.equal(podmanEnv({ PATH: '/bin' }).CONTAINERS_STORAGE_CONF, '/srv/storage.conf');
      assert.equal(podmanEnv({ PATH: '/bin', CONTAINERS_STORAGE_CONF: '/tmp/evil.conf' }).CONTAINERS_STORAGE_CONF, '/srv/storage.conf');
    });
    await withEnv({ CONTAINERS_STORAGE_CONF: undefined }, () => assert.equal('CONTAINERS_STORAGE_CONF' in podmanEnv({ PATH: '/bin' }), false));
  });

  it('says how to install podman when the binary is missing', async () => {
    await withEnv({ TOLLGATE_PODMAN: '/nonexistent/podman' }, async () => {
      await assert.rejects(podman(['info']), /cannot run \/nonexistent\/podman: .*make podman/);
    });
  });

  it('reports a non-zero exit with its output and kills a command that overruns', async () => {
    // /bin/sh stands in for the binary so this runs where podman is absent: the runner's job is
    // process handling, which does not depend on what the binary is.
    await withEnv({ TOLLGATE_PODMAN: '/bin/sh' }, async () => {
      const r = await podman(['-c', 'cat; echo oops >&2; exit 4'], { input: 'in' });
      assert.deepEqual(r, { code: 4, stdout: 'in', stderr: 'oops\n' });
      await assert.rejects(podman(['-c', 'sleep 5'], { timeoutMs: 200 }), /did not finish within 200 ms/);
    });
  });
});
