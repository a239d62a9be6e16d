import { join } from 'node:path';
import { generateSigningKeyPair, signingKeyFromText, type SigningKey } from '../../src/bundle/keys.js';
import { BundlePublisher } from '../../src/controlplane/publisher.js';
import { provisionStreams } from '../../src/controlplane/streams.js';
import { NatsLink } from '../../src/nats/connect.js';
import { issueNatsCredentials } from '../../src/nats/credentials.js';
import type { NatsTlsFiles } from '../../src/nats/settings.js';
import { LocalPki } from '../../src/pki/index.js';
import { readBundle, type BundleFiles } from '../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../src/policy/build.js';
import { NatsCluster } from '../../src/nats/server.js';
import { writePolicy } from '../../test/integration/controlplane/support.js';

/**
 * What `make bench-nats-scale` (and its test) runs against: a TLS NATS cluster of `size` nodes
 * with per-component credentials, the mesh's streams and buckets created by the control plane's
 * own code with `replicas` copies, a bundle-signing key and a small policy bundle.
 */
export interface BenchCluster {
  cluster: NatsCluster;
  control: NatsLink;
  /** A reviewer: reads budget state. */
  reader: NatsLink;
  publisher: BundlePublisher;
  signing: SigningKey;
  verificationKeyPem: string;
  bundle: BundleFiles;
  authzTls: NatsTlsFiles;
  replicas: number;
  close(): Promise<void>;
}

async function until<T>(what: string, ms: number, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function startBenchCluster(workDir: string, o: { size?: number; replicas?: number } = {}): Promise<BenchCluster> {
  const size = o.size ?? 3;
  const replicas = o.replicas ?? Math.min(3, size);
  const creds = await issueNatsCredentials(await LocalPki.open(join(workDir, 'pki')), [
    { name: 'controlplane', role: 'controlplane' }, { name: 'authz', role: 'authz' }, { name: 'reviewer', role: 'reviewer' },
  ]);
  const cluster = await NatsCluster.start({ size, tls: creds.server, users: creds.users, storeDir: join(workDir, 'nats') });
  const control = NatsLink.open({ servers: cluster.urls, tls: creds.clients.get('controlplane')!.tls }, { name: 'bench controlplane' });
  const reader = NatsLink.open({ servers: cluster.urls, tls: creds.clients.get('reviewer')!.tls }, { name: 'bench reviewer' });
  try {
    const nc = await control.ready(20_000);
    // The cluster elects its JetStream meta leader first; provisioning waits for it.
    await until('creating the streams and buckets', 60_000, () => provisionStreams(nc, () => undefined, replicas));
    const publisher = await BundlePublisher.open(nc, { replicas });
    const pair = await generateSigningKeyPair('EdDSA');
    const signing = await signingKeyFromText(pair.privatePem, 'bench signing key', { kid: pair.kid });
    const policyDir = join(workDir, 'policy');
    writePolicy(policyDir, ['search']);
    const bundle = await readBundle(await buildPolicyBundle(policyDir));
    return {
      cluster, control, reader, publisher, signing, verificationKeyPem: pair.publicPem, bundle, authzTls: creds.clients.get('authz')!.tls, replicas,
      close: async () => { await reader.close(); await control.close(); await cluster.dispose(); },
    };
  } catch (e) {
    await reader.close();
    await control.close();
    await cluster.dispose();
    throw e;
  }
}
