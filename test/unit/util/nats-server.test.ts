import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { NatsServer } from '../../../src/util/nats-server.js';

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
});
