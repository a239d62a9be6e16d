import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsLink } from '../../src/nats/connect.js';
import { issueNatsCredentials, type ComponentSpec, type NatsCredentials } from '../../src/nats/credentials.js';
import { LocalPki } from '../../src/pki/index.js';
import { NatsServer } from '../../src/nats/server.js';

/** The components of a mesh, each with its own NATS credential (as `tollgate up` issues them). */
export const MESH_COMPONENTS: ComponentSpec[] = [
  { name: 'controlplane', role: 'controlplane', namespace: 'tollgate-system' },
  { name: 'authz-demo', role: 'authz' },
  { name: 'authz-other', role: 'authz' },
  { name: 'reviewer', role: 'reviewer', namespace: 'tollgate-system' },
  { name: 'operator', role: 'operator', namespace: 'tollgate-system' },
];

/** A real nats-server with TLS and per-component users, and links per component. */
export class SecureNats {
  private readonly links: NatsLink[] = [];

  private constructor(readonly dir: string, readonly pki: LocalPki, readonly creds: NatsCredentials, readonly server: NatsServer) {}

  static async start(components: ComponentSpec[] = MESH_COMPONENTS): Promise<SecureNats> {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-secure-nats-'));
    const pki = await LocalPki.open(join(dir, 'pki'));
    const creds = await issueNatsCredentials(pki, components);
    const server = await NatsServer.start({ tls: creds.server, users: creds.users, storeDir: join(dir, 'nats') });
    return new SecureNats(dir, pki, creds, server);
  }

  get url(): string { return this.server.url; }

  tlsOf(name: string): NonNullable<ReturnType<NatsCredentials['clients']['get']>>['tls'] {
    const c = this.creds.clients.get(name);
    if (!c) throw new Error(`no component ${name}`);
    return c.tls;
  }

  /** A link with component `name`'s credential, closed by stop(). */
  link(name: string): NatsLink {
    const l = NatsLink.open({ servers: [this.url], tls: this.tlsOf(name) }, { name: `test ${name}` });
    this.links.push(l);
    return l;
  }

  async stop(): Promise<void> {
    for (const l of this.links.splice(0)) await l.close();
    await this.server.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
