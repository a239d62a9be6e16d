import type { RunningEnvoy } from './run.js';

/**
 * Whether Envoy actually listens where its config says. A listener Envoy could not bind (port
 * taken) is rejected (`listener_manager.lds.update_rejected`) while Envoy itself stays up and
 * LIVE, so "Envoy started" proves nothing about the governed port: a client would reach whatever
 * holds it.
 */

interface ListenersDoc {
  listener_statuses?: { name?: string; local_address?: { socket_address?: { port_value?: number } } }[];
}

export class ListenerNotBoundError extends Error {
  constructor(readonly listener: string, readonly port: number, detail: string) {
    super(`Envoy did not open its ${listener} listener on port ${port}: ${detail}`);
    this.name = 'ListenerNotBoundError';
  }
}

async function counter(envoy: RunningEnvoy, stat: string): Promise<number> {
  const text = await envoy.admin(`/stats?filter=${encodeURIComponent(`^${stat.replace(/\./g, '\\.')}$`)}`);
  const m = /:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The line of Envoy's log that says why a bind failed, if it said so. */
function bindError(output: string, port: number): string | undefined {
  return output.split('\n').find((l) => l.includes(`:${port}`) && /cannot bind|address already in use/i.test(l))?.trim();
}

/**
 * Resolves once `name` is bound to `port`; rejects as soon as Envoy reports the listener rejected
 * (or after `timeoutMs`) with the reason from Envoy's log when there is one.
 */
export async function waitForListener(envoy: RunningEnvoy, name: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!envoy.running) throw new ListenerNotBoundError(name, port, `Envoy exited: ${envoy.output.slice(-1500)}`);
    const doc = JSON.parse(await envoy.admin('/listeners?format=json')) as ListenersDoc;
    const bound = (doc.listener_statuses ?? []).some((l) => l.name === name && l.local_address?.socket_address?.port_value === port);
    if (bound) return;
    const why = bindError(envoy.output, port);
    const rejected = (await counter(envoy, 'listener_manager.lds.update_rejected')) + (await counter(envoy, 'listener_manager.listener_create_failure'));
    if (why || rejected > 0) {
      throw new ListenerNotBoundError(name, port, why ?? 'Envoy rejected the listener (listener_manager.lds.update_rejected); the port is probably taken by another process');
    }
    if (Date.now() > deadline) throw new ListenerNotBoundError(name, port, `not bound after ${timeoutMs} ms (see the control plane log for xDS refusals)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
