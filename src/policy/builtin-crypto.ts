import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { HostBuiltin } from './builtin-context.js';
import { stringArg } from './builtin-args.js';

/** crypto.* digests and HMACs over the UTF-8 bytes of their string operands, as lowercase hex. */

function digest(alg: string): HostBuiltin {
  return (x) => createHash(alg).update(stringArg(x, 1), 'utf8').digest('hex');
}

function hmac(alg: string): HostBuiltin {
  return (x, key) => createHmac(alg, Buffer.from(stringArg(key, 2), 'utf8')).update(stringArg(x, 1), 'utf8').digest('hex');
}

/** crypto.hmac.equal: constant-time comparison, so policies can check MACs without a timing leak. */
function hmacEqual(a: unknown, b: unknown): boolean {
  const x = Buffer.from(stringArg(a, 1), 'utf8');
  const y = Buffer.from(stringArg(b, 2), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function cryptoBuiltins(): Record<string, HostBuiltin> {
  return {
    'crypto.md5': digest('md5'),
    'crypto.sha1': digest('sha1'),
    'crypto.sha256': digest('sha256'),
    'crypto.hmac.md5': hmac('md5'),
    'crypto.hmac.sha1': hmac('sha1'),
    'crypto.hmac.sha256': hmac('sha256'),
    'crypto.hmac.sha512': hmac('sha512'),
    'crypto.hmac.equal': hmacEqual,
  };
}
