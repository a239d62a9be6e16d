import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createCa, issueCertificate, LocalPki, meshClientCredentials, meshServerCredentials, verifiedPeer, type CertFiles } from '../../../src/pki/index.js';
import { MESH_CONNECTION_IDLE_MS, MESH_HANDSHAKE_TIMEOUT_MS, meshServerOptions } from '../../../src/pki/grpc.js';
import { eventually } from '../xds/harness.js';

/**
 * The mesh gRPC servers (authz, xDS) drop an unauthenticated connection at the TLS layer and
 * promptly, instead of keeping it open until a call arrives: a probe held 4,000 certificate-less
 * TLS connections and 19,900 silent TCP connections open on authz until it ran out of descriptors.
 */

const HANDSHAKE_MS = 400;
const ME = 'spiffe://tollgate.local/ns/default/sa/demo';

const whoAmI: grpc.MethodDefinition<Buffer, Buffer> = {
  path: '/tollgate.test.Probe/WhoAmI',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

interface Ended { ms: number; error: string | null; bytes: number }

/**
 * Resolves when the socket is closed, with how long it lived and what it read. The server is
 * expected to close it; after `capMs` the test does, so a server that keeps it open fails an
 * assertion on `ms` instead of timing out.
 */
function lifetime(s: Socket, capMs = 5000): Promise<Ended> {
  const t0 = Date.now();
  let error: string | null = null;
  let bytes = 0;
  const cap = setTimeout(() => s.destroy(), capMs);
  s.on('data', (b: Buffer) => { bytes += b.length; });
  s.on('error', (e: Error) => { error = e.message; });
  return new Promise((resolve) => s.on('close', () => { clearTimeout(cap); resolve({ ms: Date.now() - t0, error, bytes }); }));
}

describe('trust: mesh gRPC servers refuse unauthenticated connections at the handshake', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: LocalPki;
  let serving: CertFiles;
  let client: CertFiles;
  let server: grpc.Server;
  let port: number;
  let calls: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-handshake-'));
    pki = await LocalPki.open(join(dir, 'pki'));
    serving = await pki.issue('authz', { commonName: 'authz', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-authz'], ips: ['127.0.0.1'], usage: 'server' });
    client = await pki.issue('client', { commonName: 'default/demo', uris: [ME], usage: 'client' });
    calls = 0;
    server = new grpc.Server(meshServerOptions());
    server.addService({ WhoAmI: whoAmI } as grpc.ServiceDefinition, {
      WhoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        calls++;
        const p = verifiedPeer(call, 'tollgate.local');
        if (!p.ok) { cb({ code: grpc.status.UNAUTHENTICATED, details: p.message }); return; }
        cb(null, Buffer.from(p.spiffeId));
      },
    });
    port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', meshServerCredentials(serving, 100, HANDSHAKE_MS), (e, p) => (e ? rej(e) : res(p))));
  });

  after(() => {
    server?.forceShutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tlsTo = (extra: ConnectionOptions): Promise<Ended> => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(serving.ca), servername: '', ALPNProtocols: ['h2'], ...extra });
    // Once the handshake is through (from the client's side), speak HTTP/2 as grpc-js would.
    s.on('secureConnect', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    return lifetime(s);
  };

  const call = (creds: grpc.ChannelCredentials): Promise<{ err: grpc.ServiceError | null; who?: string }> => new Promise((resolve) => {
    const c = new grpc.Client(`127.0.0.1:${port}`, creds);
    c.makeUnaryRequest(whoAmI.path, whoAmI.requestSerialize, whoAmI.responseDeserialize, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, res) => {
      c.close();
      resolve({ err, ...(res ? { who: res.toString() } : {}) });
    });
  });

  it('the defaults: a 10 s handshake, a 5 min idle limit, server keepalive pings', () => {
    assert.equal(MESH_HANDSHAKE_TIMEOUT_MS, 10_000);
    assert.equal(MESH_CONNECTION_IDLE_MS, 300_000);
    assert.deepEqual(meshServerOptions({ 'grpc.max_receive_message_length': 1 }), {
      'grpc.max_connection_idle_ms': 300_000, 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_receive_message_length': 1,
    });
    assert.throws(() => meshServerCredentials(serving, 0, 0), /handshake timeout must be a positive number/);
  });

  it('(a) TLS without a client certificate: the connection is closed at the handshake, no call is served', async () => {
    const before = calls;
    const r = await tlsTo({});
    assert.ok(r.ms < HANDSHAKE_MS, `closed after ${r.ms} ms, the handshake itself must fail`);
    assert.equal(r.bytes, 0, 'no HTTP/2 byte was sent back');
    const g = await call(grpc.credentials.createSsl(readFileSync(serving.ca)));
    assert.equal(g.err?.code, grpc.status.UNAVAILABLE, g.err?.details);
    assert.equal(calls, before, 'the handler never ran');
  });

  it('(b) a certificate from another CA, even with a mesh SPIFFE ID: closed at the handshake, no call is served', async () => {
    const other = await createCa('not the mesh');
    const forged = await issueCertificate(other, { commonName: 'default/demo', uris: [ME], usage: 'client' });
    const before = calls;
    const r = await tlsTo({ cert: forged.certPem, key: forged.keyPem });
    assert.ok(r.ms < HANDSHAKE_MS, `closed after ${r.ms} ms`);
    assert.equal(r.bytes, 0, 'no HTTP/2 byte was sent back');
    const g = await call(grpc.credentials.createSsl(readFileSync(serving.ca), Buffer.from(forged.keyPem), Buffer.from(forged.certPem)));
    assert.equal(g.err?.code, grpc.status.UNAVAILABLE, g.err?.details);
    assert.equal(calls, before, 'the handler never ran');
  });

  it('(c) a plain TCP connection that sends nothing is closed at the handshake timeout', async () => {
    const r = await lifetime(netConnect(port, '127.0.0.1'));
    assert.ok(r.ms >= HANDSHAKE_MS - 50, `closed after ${r.ms} ms, before the timeout`);
    assert.ok(r.ms < HANDSHAKE_MS + 1000, `still open after ${r.ms} ms`);
  });

  it('(c) …and so is one that trickles bytes: the timeout counts from the accept, not from the last byte', async () => {
    const s = netConnect(port, '127.0.0.1');
    const ended = lifetime(s);
    // A TLS record header announcing a ClientHello, then one byte at a time, well within the timeout.
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    const drip = setInterval(() => { if (!s.destroyed) s.write(Buffer.from([0])); }, HANDSHAKE_MS / 8);
    try {
      const r = await ended;
      assert.ok(r.ms < HANDSHAKE_MS + 1000, `still open after ${r.ms} ms`);
    } finally {
      clearInterval(drip);
    }
  });

  it('(c) many silent connections at once are all closed by the timeout', async () => {
    const socks = Array.from({ length: 200 }, () => netConnect(port, '127.0.0.1'));
    const t0 = Date.now();
    const ends = await Promise.all(socks.map((x) => lifetime(x)));
    assert.ok(ends.every((r) => r.ms < HANDSHAKE_MS + 1000), `longest: ${Math.max(...ends.map((r) => r.ms))} ms`);
    assert.ok(Date.now() - t0 < HANDSHAKE_MS + 2000, `took ${Date.now() - t0} ms`);
  });

  it('(d) a mesh client still completes the handshake and is served, with its verified identity', async () => {
    const g = await call(meshClientCredentials(client));
    assert.equal(g.err, null, g.err?.details);
    assert.equal(g.who, ME);
    // The raw TLS connection with the mesh certificate stays up past the handshake timeout.
    const s = tlsConnect({ host: '127.0.0.1', port, servername: '', ca: readFileSync(serving.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] });
    const ended = lifetime(s);
    await new Promise<void>((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
    await new Promise((r) => setTimeout(r, HANDSHAKE_MS * 2));
    assert.equal(s.destroyed, false, 'a verified connection is not subject to the handshake timeout');
    s.destroy();
    await ended;
  });

  it('a renewed pair is served and the handshake still requires a mesh certificate', async () => {
    const first = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: '', ca: readFileSync(serving.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });
    const renewed = await pki.issue('authz-renewed', { commonName: 'authz', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-authz'], ips: ['127.0.0.1'], usage: 'server' });
    copyFileSync(renewed.key, serving.key);
    copyFileSync(renewed.cert, serving.cert);
    await eventually('the renewed certificate to be served', () => new Promise<string | undefined>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: '', ca: readFileSync(serving.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] }, () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.destroy();
        resolve(serial !== first ? serial : undefined);
      });
      s.on('error', () => resolve(undefined));
    }), 5000);
    const r = await tlsTo({});
    assert.ok(r.ms < HANDSHAKE_MS, `closed after ${r.ms} ms`);
    assert.equal(r.bytes, 0);
    assert.equal((await call(grpc.credentials.createSsl(readFileSync(serving.ca)))).err?.code, grpc.status.UNAVAILABLE);
    assert.equal((await lifetime(netConnect(port, '127.0.0.1'))).ms < HANDSHAKE_MS + 1000, true, 'the handshake timeout survives a reload');
    assert.equal((await call(meshClientCredentials(client))).who, ME);
  });
});

describe('trust: mesh gRPC server options close connections that never make a call', function () {
  this.timeout(30_000);

  it('grpc.max_connection_idle_ms closes a verified HTTP/2 connection with no call (grpc-js honours the option)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-idle-'));
    const server = new grpc.Server(meshServerOptions({ 'grpc.max_connection_idle_ms': 300 }));
    try {
      const pki = await LocalPki.open(join(dir, 'pki'));
      const serving = await pki.issue('s', { commonName: 's', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/s'], ips: ['127.0.0.1'], usage: 'server' });
      const client = await pki.issue('c', { commonName: 'c', uris: [ME], usage: 'client' });
      const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', meshServerCredentials(serving, 0), (e, p) => (e ? rej(e) : res(p))));
      const session = http2Connect(`https://127.0.0.1:${port}`, { ca: readFileSync(serving.ca), cert: readFileSync(client.cert), key: readFileSync(client.key) });
      session.on('error', () => undefined);
      const t0 = Date.now();
      const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
      await new Promise<void>((resolve) => session.once('close', () => resolve()));
      await goaway;
      assert.ok(Date.now() - t0 < 3000, `closed after ${Date.now() - t0} ms`);
    } finally {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without TLS (authz on the pod\'s loopback) a silent TCP connection is an idle HTTP/2 session, closed too', async () => {
    const server = new grpc.Server(meshServerOptions({ 'grpc.max_connection_idle_ms': 300 }));
    try {
      const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
      const r = await lifetime(netConnect(port, '127.0.0.1'));
      assert.ok(r.ms < 3000, `closed after ${r.ms} ms`);
    } finally {
      server.forceShutdown();
    }
  });
});
