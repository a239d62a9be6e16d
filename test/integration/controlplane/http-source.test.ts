import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { readBundle, writeBundle } from '../../../src/bundle/archive.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { HttpBundleSource } from '../../../src/policy/sources/http.js';
import { signBundle } from '../../../src/bundle/sign.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { toolInput, writePolicy } from './support.js';

/** A minimal OPA bundle server: one bundle, a strong ETag, 304 on If-None-Match. */
class BundleServer {
  body: Buffer = Buffer.alloc(0);
  status = 200;
  readonly requests: IncomingHttpHeaders[] = [];
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<BundleServer> {
    let self: BundleServer | null = null;
    const server = createServer((req, res) => {
      const s = self!;
      s.requests.push(req.headers);
      if (s.status !== 200) { res.writeHead(s.status).end('unavailable'); return; }
      const etag = `"${createHash('sha256').update(s.body).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) { res.writeHead(304, { etag }).end(); return; }
      res.writeHead(200, { etag, 'content-type': 'application/gzip', 'content-length': s.body.length }).end(s.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    self = new BundleServer(server, `http://127.0.0.1:${port}/bundles/authz.tar.gz`);
    return self;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('HTTP bundle source against a node:http bundle server', function () {
  this.timeout(60000);
  let work: string;
  let bundleA: Buffer;
  let bundleB: Buffer;
  let server: BundleServer;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-http-source-'));
    writePolicy(join(work, 'a'), ['a']);
    writePolicy(join(work, 'b'), ['b']);
    bundleA = await buildPolicyBundle(join(work, 'a'), { revision: 'http-a' });
    bundleB = await buildPolicyBundle(join(work, 'b'), { revision: 'http-b' });
  });
  after(() => rmSync(work, { recursive: true, force: true }));
  beforeEach(async () => { server = await BundleServer.start(); });
  afterEach(() => server.close());

  it('loads, then gets 304 with If-None-Match and does not reload, then loads a changed bundle', async () => {
    server.body = bundleA;
    const holder = new PolicyHolder();
    const swaps: string[] = [];
    holder.onSwap((r) => swaps.push(r));
    const src = new HttpBundleSource({ holder, url: server.url, pollMs: 3600_000 });
    await src.start();
    try {
      assert.equal(holder.get()!.revision, 'http-a');
      assert.equal(holder.get()!.evaluate(toolInput('a')).allow, true);
      assert.equal(server.requests[0]!['if-none-match'], undefined);

      assert.deepEqual(await src.poll(), { kind: 'not-modified' });
      assert.match(server.requests[1]!['if-none-match'] ?? '', /^"[0-9a-f]{16}"$/);
      assert.deepEqual(swaps, ['http-a']);
      assert.deepEqual(src.counts, { notModified: 1, downloaded: 1, errors: 0 });

      server.body = bundleB;
      assert.deepEqual(await src.poll(), { kind: 'swapped', revision: 'http-b' });
      assert.equal(holder.get()!.evaluate(toolInput('b')).allow, true);
      assert.deepEqual(swaps, ['http-a', 'http-b']);
    } finally {
      await src.stop();
    }
  });

  it('with keys configured, refuses unsigned and tampered bundles and keeps the last good one', async () => {
    const keys = await keyPair('ES256');
    server.body = await writeBundle(await signBundle(await readBundle(bundleA), keys.signing));
    const holder = new PolicyHolder();
    const src = new HttpBundleSource({ holder, url: server.url, pollMs: 3600_000, keys: [keys.verification] });
    await src.start();
    try {
      assert.equal(holder.get()!.revision, 'http-a');

      server.body = bundleB; // unsigned
      const r1 = await src.poll();
      assert.equal(r1.kind, 'rejected');
      assert.match(src.status().lastError!.message, /^bundle revision http-b from http:\/\/127\.0\.0\.1:\d+\/bundles\/authz\.tar\.gz rejected: bundle is not signed: \/\.signatures\.json is missing$/);
      // The refused bundle's ETag is remembered: it is not downloaded and refused again.
      assert.deepEqual(await src.poll(), { kind: 'not-modified' });
      assert.equal(src.status().rejections, 1);

      const tampered = await signBundle(await readBundle(bundleB), keys.signing);
      tampered.set('/policy.wasm', Buffer.concat([tampered.get('/policy.wasm')!, Buffer.from([0])]));
      server.body = await writeBundle(tampered);
      assert.equal((await src.poll()).kind, 'rejected');
      assert.match(src.status().lastError!.message, /\/policy\.wasm: SHA-256 digest mismatch/);

      assert.equal(holder.get()!.revision, 'http-a');
      assert.equal(src.status().rejections, 2);
    } finally {
      await src.stop();
    }
  });

  it('reports an unreachable or failing server without touching the policy', async () => {
    server.body = bundleA;
    const holder = new PolicyHolder();
    const src = new HttpBundleSource({ holder, url: server.url, pollMs: 3600_000 });
    await src.start();
    try {
      server.status = 503;
      const r = await src.poll();
      assert.equal(r.kind, 'error');
      assert.match(src.status().sourceError!, /HTTP 503/);
      assert.equal(src.status().rejections, 0);
      assert.equal(holder.get()!.revision, 'http-a');
    } finally {
      await src.stop();
    }
  });
});
