import { CoreV1Api, CustomObjectsApi, makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { SidecarRegistration } from '../controlplane/registrations.js';
import { registrationFromPod, type PodRegistrationContext } from './registrations.js';
import type { PodLike } from './types.js';

/**
 * Keeps the control plane's sidecar registrations equal to the injected pods the API server knows
 * (`controlplane serve --registrations-from-kube`): a pod created gets its registration, a pod
 * deleted or finished loses it. MCPServer objects contribute each server's RFC 9728 resource URL.
 * Informers relist after a watch expires, so a missed event costs a delay, never a wrong answer.
 */

export interface KubeRegistrationsOptions {
  kc: KubeConfig;
  trustDomain: string;
  listenHost: string;
  apply: (regs: SidecarRegistration[]) => void;
  log: (msg: string) => void;
  /** Delay before a failed watch is restarted (default 2 s). */
  retryMs?: number;
}

type Watched<T> = Informer<T & KubernetesObject> & ObjectCache<T & KubernetesObject>;
interface McpServerObject { metadata?: { name?: string; namespace?: string }; spec?: { resource?: string } }

export class KubeRegistrations {
  private pending = false;
  private stopped = false;
  /** Why each injected pod has no registration, so each reason is logged once. */
  private readonly skipped = new Map<string, string>();
  private last = '';

  private constructor(
    private readonly opts: KubeRegistrationsOptions,
    private readonly pods: Watched<PodLike>,
    private readonly servers: Watched<McpServerObject>,
  ) {}

  static async start(opts: KubeRegistrationsOptions): Promise<KubeRegistrations> {
    const core = opts.kc.makeApiClient(CoreV1Api);
    const custom = opts.kc.makeApiClient(CustomObjectsApi);
    const pods = makeInformer(opts.kc, '/api/v1/pods', () => core.listPodForAllNamespaces() as never) as unknown as Watched<PodLike>;
    const servers = makeInformer(opts.kc, '/apis/tollgate.dev/v1alpha1/mcpservers',
      () => custom.listClusterCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', plural: 'mcpservers' }) as never) as unknown as Watched<McpServerObject>;
    const self = new KubeRegistrations(opts, pods, servers);
    const informers: [string, Watched<unknown>][] = [['pods', pods as Watched<unknown>], ['MCPServers', servers as Watched<unknown>]];
    for (const [what, inf] of informers) {
      inf.on('add', () => self.schedule());
      inf.on('update', () => self.schedule());
      inf.on('delete', () => self.schedule());
      inf.on('error', (e: unknown) => {
        if (self.stopped) return;
        opts.log(`registrations: watching ${what} failed (${(e as Error)?.message ?? String(e)}); restarting the watch`);
        setTimeout(() => { if (!self.stopped) void inf.start().catch(() => undefined); }, opts.retryMs ?? 2000).unref();
      });
    }
    await pods.start();
    // Without the CRD there are no MCPServers: registrations still come from the pods.
    await servers.start().catch((e: Error) => opts.log(`registrations: cannot list MCPServers (${e.message}); resource URLs default until it works`));
    self.recompute();
    return self;
  }

  /** Registrations from the informers' current view. */
  current(): SidecarRegistration[] {
    const resources = new Map<string, string>();
    for (const s of this.servers.list()) {
      const { name, namespace } = s.metadata ?? {};
      if (name && namespace && typeof s.spec?.resource === 'string') resources.set(`${namespace}/${name}`, s.spec.resource);
    }
    const ctx: PodRegistrationContext = {
      trustDomain: this.opts.trustDomain, listenHost: this.opts.listenHost,
      resourceOf: (ns, server) => resources.get(`${ns}/${server}`),
    };
    const out: SidecarRegistration[] = [];
    const seen = new Set<string>();
    for (const pod of this.pods.list()) {
      const r = registrationFromPod(pod, ctx);
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      seen.add(key);
      if ('registration' in r) {
        this.skipped.delete(key);
        out.push(r.registration);
      } else if (!r.skipped.startsWith('not injected') && this.skipped.get(key) !== r.skipped) {
        this.skipped.set(key, r.skipped);
        this.opts.log(`registrations: no sidecar registration for pod ${key}: ${r.skipped}`);
      }
    }
    for (const k of this.skipped.keys()) if (!seen.has(k)) this.skipped.delete(k);
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.pods.stop(), this.servers.stop()].map((p) => Promise.resolve(p).catch(() => undefined)));
  }

  /** Coalesces a burst of events (a Deployment rolling) into one recompute. */
  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (!this.stopped) this.recompute();
    });
  }

  private recompute(): void {
    const regs = this.current();
    const text = JSON.stringify(regs);
    if (text === this.last) return;
    this.last = text;
    this.opts.apply(regs);
    this.opts.log(`registrations: ${regs.length} sidecar(s) registered from the API server`);
  }
}
