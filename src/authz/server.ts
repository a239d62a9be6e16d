import * as grpc from '@grpc/grpc-js';
import { authorizationService, externalProcessorService } from '../envoy/protos.js';
import type { Authorizer } from './check.js';
import { toCheckResponse, toRequestView, type CheckRequestMsg } from './grpc-check.js';

export interface AuthzServerOptions {
  host: string;
  port: number;
  authorizer: Authorizer;
  /** ext_proc Process handler (response accounting); omitted when budgets are off. */
  extProc?: grpc.handleBidiStreamingCall<unknown, unknown>;
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
    const server = new grpc.Server({
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
    });
    server.addService(authorizationService(), {
      Check: (call: grpc.ServerUnaryCall<CheckRequestMsg, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        let view;
        try {
          view = toRequestView(call.request);
          view.deadline = deadlineMs(call.getDeadline());
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
    if (opts.extProc) server.addService(externalProcessorService(), { Process: opts.extProc });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
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
