import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort, parseHostPort } from '../../../src/util/net.js';

describe('util/net', () => {
  it('freePort picks bindable ports below the ephemeral range, where outgoing connections cannot take them', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const p of ports) {
      assert.ok(p >= 10000 && p < low, `port ${p} outside 10000..${low - 1}`);
      await new Promise<void>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(p, '127.0.0.1', () => s.close(() => resolve()));
      });
    }
  });

  it('parseHostPort reads host:port, [v6]:port and a bare port, and refuses the rest', () => {
    assert.deepEqual(parseHostPort('10.0.0.1:80'), { host: '10.0.0.1', port: 80 });
    assert.deepEqual(parseHostPort('[::1]:9000'), { host: '::1', port: 9000 });
    assert.deepEqual(parseHostPort('4222'), { host: '127.0.0.1', port: 4222 });
    assert.throws(() => parseHostPort('host:99999'), /out of range/);
    assert.throws(() => parseHostPort('nope'), /expected host:port/);
  });
});
