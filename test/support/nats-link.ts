import { NatsLink } from '../../src/nats/connect.js';

/** Links opened by a test, closed by closeLinks() in its afterEach. */
const open: NatsLink[] = [];

/** A NATS link without TLS, as the capabilities get it from the runtime. */
export function plainLink(url: string, name = 'test'): NatsLink {
  const link = NatsLink.open({ servers: [url], tls: null }, { name });
  open.push(link);
  return link;
}

export async function closeLinks(): Promise<void> {
  for (const l of open.splice(0)) await l.close();
}
