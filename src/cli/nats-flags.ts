import { NatsSettingsError, parseServers, tlsFiles, type NatsSettings } from '../nats/settings.js';
import { UsageError } from './types.js';

/** The NATS flags every command that talks to NATS shares: one URL list, one credential. */
export const NATS_FLAGS = {
  nats: { type: 'string' },
  'nats-ca': { type: 'string' },
  'nats-cert': { type: 'string' },
  'nats-key': { type: 'string' },
} as const;

export const NATS_FLAGS_USAGE = `  --nats URL[,URL…]    NATS server(s), comma-separated seeds of one cluster
  --nats-ca FILE       CA of the NATS server certificate (TLS)
  --nats-cert FILE     client certificate: this component's NATS credential; its SPIFFE ID is
                       the NATS user, with only that component's permissions (docs/security.md)
  --nats-key FILE      the certificate's private key`;

export interface NatsFlagValues {
  nats?: string | undefined;
  'nats-ca'?: string | undefined;
  'nats-cert'?: string | undefined;
  'nats-key'?: string | undefined;
}

/** Settings from the flags; null when no --nats is given (and no TLS flag either). */
export function natsSettingsFromFlags(v: NatsFlagValues, fallbackUrl?: string): NatsSettings | null {
  try {
    const tls = tlsFiles({ ca: v['nats-ca'], cert: v['nats-cert'], key: v['nats-key'] });
    const url = v.nats ?? fallbackUrl;
    if (url === undefined) {
      if (tls) throw new UsageError('--nats-ca/--nats-cert/--nats-key need --nats URL');
      return null;
    }
    return { servers: parseServers(url, '--nats'), tls };
  } catch (e) {
    if (e instanceof NatsSettingsError) throw new UsageError(e.message);
    throw e;
  }
}
