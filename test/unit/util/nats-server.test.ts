import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { NatsServer, NatsSupercluster } from '../../../src/nats/server.js';

describe('nats-server launcher', () => {
  it('starts a real server with JetStream and stops it', async () => {
    const srv = await NatsServer.start();
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        const s = connect(srv.port, '127.0.0.1');
        s.once('data', (d) => { s.destroy(); resolve(d.toString()); });
        s.once('error', reject);
      });
      assert.match(banner, /^INFO .*"jetstream":true/);
    } finally {
      await srv.dispose();
    }
    assert.equal(srv.running, false);
  });

  it('refuses a supercluster of fewer than two regions, repeated names, and names that are no cluster name', async () => {
    await assert.rejects(NatsSupercluster.start({ regions: [{ name: 'east', size: 1 }] }), /at least two regions/);
    await assert.rejects(NatsSupercluster.start({ regions: [{ name: 'east', size: 1 }, { name: 'east', size: 1 }] }), /must differ: east, east/);
    await assert.rejects(NatsSupercluster.start({ regions: [{ name: 'east', size: 1 }, { name: 'us west', size: 1 }] }), /"us west" is not a region name/);
  });
});
