import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeChildExit, LocalMesh, type ChildExit } from '../../../src/mesh/local.js';
import { readMeshFile } from '../../../src/mesh/mesh-file.js';
import { freePort } from '../../../src/util/net.js';
import { projectRoot } from '../../../src/util/tools.js';
import { RunningCli, runTollgate } from '../../support/cli.js';

/**
 * A local mesh whose Envoy (or another of its processes) dies does not go on saying it is up:
 * LocalMesh reports the first unexpected exit, and `tollgate up` stops the whole mesh and exits 1,
 * naming the process, how it ended and its last output.
 */

const waitFor = async <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
};

describe('local mesh: a process that dies (fail closed)', function () {
  this.timeout(180_000);
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'tollgate-child-exit-'));
    dirs.push(d);
    return d;
  };
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('LocalMesh.watchChildren reports Envoy killed, but not authz restarted or the mesh stopped', async () => {
    const mesh = await LocalMesh.start({
      policies: join(projectRoot(), 'policies'), stateDir: join(tmp(), 'state'),
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    const seen: ChildExit[] = [];
    try {
      const exited = new Promise<ChildExit>((resolve) => { mesh.watchChildren((e) => { seen.push(e); resolve(e); }, 100); });
      await mesh.restartAuthz();
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(seen, [], 'a restart on purpose is no failure');
      const pid = mesh.envoy.pid;
      await mesh.envoy.kill();
      const e = await waitFor(exited, 10_000, 'report of the dead Envoy');
      assert.equal(e.name, 'envoy');
      assert.equal(e.pid, pid);
      assert.equal(e.signal, 'a signal');
      assert.match(describeChildExit(e), new RegExp(`^envoy \\(pid ${pid}\\) exited unexpectedly: killed by a signal`));
    } finally {
      await mesh.stop();
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(seen.length, 1, 'reported once; stopping the rest is not reported');
  });

  it('tollgate up: private new state dir; status checks Envoy; Envoy exiting stops the whole mesh with exit 1', async () => {
    const state = join(tmp(), 'new', 'state');
    const ports: string[] = [];
    for (const f of ['--envoy-port', '--admin-port', '--authz-port', '--issuer-port', '--metrics-port']) ports.push(f, String(await freePort()));
    const up = new RunningCli(['up', '--no-controlplane', '--state', state, '--policies', join(projectRoot(), 'policies'), ...ports]);
    try {
      await up.waitFor(/Press Ctrl-C to stop/, 150_000);
      assert.equal(statSync(state).mode & 0o777, 0o700, 'a state dir up makes is private');
      assert.doesNotMatch(up.stderr, /warning: state directory/);
      const mesh = readMeshFile(state)!;
      const st = await runTollgate(['status', '--state', state]);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.match(st.stdout, /envoy +http:\S+: LIVE/);

      // Envoy's admin API has no authentication: any local process can stop it like this.
      const quit = await fetch(`${mesh.endpoints.envoyAdmin}/quitquitquit`, { method: 'POST' });
      assert.equal(quit.status, 200);
      const code = await waitFor(up.closed, 60_000, 'exit of tollgate up');
      assert.equal(code, 1, `stdout: ${up.stdout}\nstderr: ${up.stderr}`);
      assert.match(up.stderr, /tollgate up: envoy \(pid \d+\) exited unexpectedly: exit code 0/);
      assert.match(up.stderr, /nothing restarts envoy, so the whole mesh stops now \(fail closed\)/);
      assert.ok(!existsSync(join(state, 'mesh.json')), 'the mesh file is removed: no command finds a mesh that is not there');
      await assert.rejects(fetch(`${mesh.endpoints.authzAdmin}/status`), 'authz was stopped with the rest');
    } finally {
      await up.stop();
    }
  });

  it('tollgate up: warns about, but does not chmod, an existing state dir others can write in', async () => {
    const state = tmp();
    chmodSync(state, 0o777);
    const ports: string[] = [];
    for (const f of ['--envoy-port', '--admin-port', '--authz-port', '--issuer-port', '--metrics-port']) ports.push(f, String(await freePort()));
    const up = new RunningCli(['up', '--no-controlplane', '--state', state, '--policies', join(projectRoot(), 'policies'), ...ports]);
    try {
      await up.waitFor(/Press Ctrl-C to stop/, 150_000);
      assert.match(up.stderr, /tollgate up: warning: state directory \S+ is writable by every user \(mode 0777\)/);
      assert.equal(statSync(state).mode & 0o777, 0o777);
    } finally {
      assert.equal(await up.stop(), 0);
    }
  });
});
