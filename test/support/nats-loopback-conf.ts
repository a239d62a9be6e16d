/**
 * Turns the nats.conf the Kubernetes manifests ship into one a nats-server on loopback can run, and
 * changes nothing else: the ports and the route URLs (pod DNS names → 127.0.0.1 ports), and the
 * paths (store, pid file, TLS files) into a test directory. Every rewrite must apply exactly as
 * often as expected, so a change in the manifests' shape fails loudly instead of testing
 * something else.
 */

export interface LoopbackMember {
  clientPort: number;
  httpPort: number;
  routePort: number;
  /** Route port of member i (tollgate-nats-i), for every member; empty: a config without a cluster. */
  routePorts: number[];
  storeDir: string;
  pidFile: string;
  /** Directory with tls.crt, tls.key and ca.crt (the Secret's keys). */
  tlsDir: string;
}

function replaceOnce(text: string, re: RegExp, by: string, what: string): string {
  const hits = text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))?.length ?? 0;
  if (hits !== 1) throw new Error(`nats.conf: expected one ${what}, found ${hits}`);
  return text.replace(re, by);
}

const pathSafe = (p: string): string => {
  if (!/^[A-Za-z0-9/_.-]+$/.test(p)) throw new Error(`path ${p} has characters a bare nats.conf value cannot hold`);
  return p;
};

export function loopbackNatsConf(conf: string, m: LoopbackMember): string {
  let c = conf;
  c = replaceOnce(c, /^port: 4222$/m, `listen: "127.0.0.1:${m.clientPort}"`, 'client port 4222');
  c = replaceOnce(c, /^http_port: 8222$/m, `http: "127.0.0.1:${m.httpPort}"`, 'monitoring port 8222');
  c = replaceOnce(c, /^pid_file: \/var\/run\/nats\/nats\.pid$/m, `pid_file: ${pathSafe(m.pidFile)}`, 'pid_file');
  c = replaceOnce(c, /^ {2}store_dir: \/data\/jetstream$/m, `  store_dir: ${pathSafe(m.storeDir)}`, 'store_dir');
  const clustered = m.routePorts.length > 0;
  if (clustered) c = replaceOnce(c, /^ {2}port: 6222$/m, `  listen: "127.0.0.1:${m.routePort}"`, 'cluster port 6222');
  else if (/^cluster \{/m.test(c)) throw new Error('nats.conf: a cluster block, but no route ports given');
  const tlsRefs = c.match(/\/etc\/nats-tls\//g)?.length ?? 0;
  const expected = clustered ? 6 : 3;
  if (tlsRefs !== expected) throw new Error(`nats.conf: expected the TLS files named ${expected} times (client${clustered ? ' and route' : ''} TLS), found ${tlsRefs}`);
  c = c.split('/etc/nats-tls/').join(`${pathSafe(m.tlsDir)}/`);
  let routes = 0;
  c = c.replace(/nats-route:\/\/tollgate-nats-(\d+)\.[a-z0-9.-]+:6222/g, (_, i: string) => {
    const port = m.routePorts[Number(i)];
    if (port === undefined) throw new Error(`nats.conf routes to tollgate-nats-${i}, which has no loopback port`);
    routes++;
    return `nats-route://127.0.0.1:${port}`;
  });
  if (routes !== m.routePorts.length) throw new Error(`nats.conf: expected ${m.routePorts.length} routes, found ${routes}`);
  return c;
}

export interface LoopbackClient {
  /** Client port of member i (tollgate-nats-i), for every member. */
  clientPorts: number[];
  /** The credential Secret's files (tls.crt, tls.key, ca.crt) on this machine. */
  ca: string;
  cert: string;
  key: string;
}

const SEED = /^tls:\/\/tollgate-nats-(\d+)\.tollgate-nats-headless\.[a-z0-9-]+\.svc:4222$/;
const MOUNTED = { '--nats-ca': 'ca.crt', '--nats-cert': 'tls.crt', '--nats-key': 'tls.key' } as const;

/** A manifest's seed list (every StatefulSet pod's tls:// URL) moved to the loopback ports. */
export function loopbackSeeds(list: string, clientPorts: number[], field: string): string {
  const seeds = list.split(',').map((u) => {
    const m = SEED.exec(u);
    if (!m) throw new Error(`${field} seed ${u} is not a tollgate-nats pod's tls:// URL`);
    const port = clientPorts[Number(m[1])];
    if (port === undefined) throw new Error(`${field} names tollgate-nats-${m[1]}, which has no loopback port`);
    return `tls://127.0.0.1:${port}`;
  });
  if (seeds.length !== clientPorts.length) throw new Error(`${field} names ${seeds.length} servers, the cluster has ${clientPorts.length}`);
  return seeds.join(',');
}

/**
 * The NATS flags of a manifest's container args (--nats, --nats-ca/-cert/-key, and --replicas when
 * present), with the seeds moved to loopback and the mounted credential to local files. Every
 * seed must name a StatefulSet pod and every file the credential mount, or it throws.
 */
export function loopbackNatsArgs(args: string[], c: LoopbackClient): string[] {
  const value = (flag: string): string => {
    const i = args.indexOf(flag);
    if (i < 0 || i + 1 >= args.length) throw new Error(`the container args have no ${flag}`);
    return args[i + 1]!;
  };
  const out = ['--nats', loopbackSeeds(value('--nats'), c.clientPorts, '--nats')];
  for (const [flag, file] of Object.entries(MOUNTED) as [keyof typeof MOUNTED, string][]) {
    const v = value(flag);
    if (!v.endsWith(`/${file}`)) throw new Error(`${flag} ${v} is not the mounted ${file}`);
    out.push(flag, flag === '--nats-ca' ? c.ca : flag === '--nats-cert' ? c.cert : c.key);
  }
  if (args.includes('--replicas')) out.push('--replicas', value('--replicas'));
  return out;
}
