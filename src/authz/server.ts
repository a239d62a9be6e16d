import * as grpc from '@grpc/grpc-js';
import { authorizationService, externalProcessorService } from '../envoy/protos.js';
import { meshServerCredentials, meshServerOptions, verifiedPeer } from '../pki/grpc.js';
import type { Authorizer } from './check.js';
import type { AuthzTls } from './config.js';
import { toCheckResponse, toRequestView, type CheckRequestMsg } from './grpc-check.js';
import { callTraceContext } from '../telemetry/grpc-context.js';

export interface AuthzServerOptions {
  host: string;
  port: number;
  authorizer: Authorizer;
  /** ext_proc Process handler (response accounting); omitted when budgets are off. */
  extProc?: grpc.handleBidiStreamingCall<unknown, unknown>;
  /** mTLS: every call must come from a mesh workload certificate (and an allowed peer, if listed). */
  tls?: AuthzTls | null;
  logger?: { warn(obj: object, msg: string): void };
}

interface Call { getAuthContext(): ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>; getPeer(): string }

/** Null when the caller may proceed, else why not (with tls; always null without). */
export function refusePeer(call: Call, tls: AuthzTls | null | undefined): string | null {
  if (!tls) return null;
  const p = verifiedPeer(call, tls.trustDomain);
  if (!p.ok) return p.message;
  if (tls.allowedPeers.length > 0 && !tls.allowedPeers.includes(p.spiffeId)) return `${p.spiffeId} is not an allowed caller of authz`;
  return null;
}

/** Envoy sets the gRPC deadline to its ext_authz timeout (grpc-timeout); epoch ms, or null if none. */
export function deadlineMs(d: grpc.Deadline): number | null {
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : null;
}

/** ext_authz and ext_proc on one gRPC port, as the sidecar config expects. */
export class AuthzServer {
  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  static async start(opts: AuthzServerOptions): Promise<AuthzServer> {
    // Idle connections are closed and dead peers detected (meshServerOptions); with TLS, a caller
    // without a mesh certificate is dropped at the handshake (meshServerCredentials).
    const server = new grpc.Server(meshServerOptions({
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
    }));
    // A mesh workload that may not call authz learns why (UNAUTHENTICATED), and the refusal is
    // logged; it never reaches the Check pipeline, so it can neither read decisions nor charge budgets.
    const refused = (call: Call, what: string): string | null => {
      const why = refusePeer(call, opts.tls);
      if (why) opts.logger?.warn({ peer: call.getPeer(), rpc: what, reason: why }, 'authz: caller refused (mTLS)');
      return why;
    };
    server.addService(authorizationService(), {
      Check: (call: grpc.ServerUnaryCall<CheckRequestMsg, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const why = refused(call, 'Check');
        if (why) { callback({ code: grpc.status.UNAUTHENTICATED, details: `tollgate authz: ${why}` }); return; }
        let view;
        try {
          view = toRequestView(call.request);
          view.deadline = deadlineMs(call.getDeadline());
          view.callTrace = callTraceContext(call.metadata);
        } catch (e) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: `unreadable CheckRequest: ${(e as Error).message}` });
          return;
        }
        opts.authorizer.check(view).then(
          (outcome) => callback(null, toCheckResponse(outcome)),
          // check() already turns failures into denials; this is the last line of fail-closed.
          (e: Error) => callback({ code: grpc.status.INTERNAL, details: e.message }),
        );
      },
    });
    const extProc = opts.extProc;
    if (extProc) {
      server.addService(externalProcessorService(), {
        Process: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const why = refused(call, 'Process');
          if (why) { call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `tollgate authz: ${why}` }); return; }
          extProc(call);
        },
      });
    }
    const creds = opts.tls ? meshServerCredentials({ cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.clientCa }) : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${opts.host}:${opts.port}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
    });
    return new AuthzServer(server, port);
  }

  /** Lets in-flight checks finish, then stops; forces after graceMs. */
  async close(graceMs = 3000): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      this.server.tryShutdown(() => { clearTimeout(t); resolve(); });
    });
  }
}
