import { spawn, type ChildProcess } from 'node:child_process';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { LineFramer } from './lines.js';
import { isJsonRpcMessage } from '../mcp/jsonrpc.js';
import type { LaunchSpec } from './types.js';

/** Largest single JSON-RPC message accepted from a server (larger: the process is killed). */
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const STDERR_TAIL_BYTES = 16 * 1024;

export interface ChildEvents {
  message: (m: JSONRPCMessage) => void;
  /** A line on stdout that is not JSON-RPC: servers sometimes print banners there. */
  noise: (line: string) => void;
  exit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/** The SDK's type for what jsonrpc.ts recognises; the SDK's transport validates the rest. */
function isMessage(v: unknown): v is JSONRPCMessage {
  return isJsonRpcMessage(v);
}

/**
 * One stdio MCP server process: newline-delimited JSON-RPC on stdin/stdout, stderr kept as a
 * bounded tail for the operator's log (never shown to callers: it may hold secrets).
 */
export class StdioChild {
  private readonly child: ChildProcess;
  private stderrTail = '';
  private exitedFlag = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly spec: LaunchSpec, private readonly on: ChildEvents) {
    this.child = spawn(spec.command, spec.args, { env: spec.env, cwd: spec.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (done) return;
        done = true;
        this.exitedFlag = true;
        resolve({ code, signal });
        this.on.exit(code, signal);
      };
      this.child.once('exit', finish);
      // spawn failures (ENOENT, EACCES) arrive as 'error' without an 'exit'.
      this.child.once('error', (e) => { this.stderrTail += `\ncannot start ${spec.command}: ${e.message}`; finish(127, null); });
    });
    const framer = new LineFramer(MAX_MESSAGE_BYTES, (line) => this.onLine(line), () => {
      this.stderrTail += `\n[tollgate] a message over ${MAX_MESSAGE_BYTES} bytes: killing the server`;
      this.kill('SIGKILL');
    });
    this.child.stdout!.on('data', (b: Buffer) => framer.push(b));
    this.child.stderr!.on('data', (b: Buffer) => { this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-STDERR_TAIL_BYTES); });
    // A write to a dead process fails with EPIPE; the exit handler reports it, so swallow it here.
    this.child.stdin!.on('error', () => undefined);
  }

  get pid(): number | undefined { return this.child.pid; }
  get running(): boolean { return !this.exitedFlag; }
  get stderr(): string { return this.stderrTail; }

  /**
   * Writes one message as a line; false when the process is gone. The bridge's HTTP edge bounds
   * nesting (parseMcpBody), so encoding a client's message cannot overflow the stack here.
   */
  send(m: JSONRPCMessage): boolean {
    if (this.exitedFlag || !this.child.stdin!.writable) return false;
    this.child.stdin!.write(JSON.stringify(m) + '\n');
    return true;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exitedFlag) this.child.kill(signal);
  }

  /** Closes stdin (the stdio way to ask a server to exit), then SIGTERM, then SIGKILL. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.exitedFlag) return;
    this.child.stdin!.end();
    const t1 = setTimeout(() => this.kill('SIGTERM'), graceMs);
    const t2 = setTimeout(() => this.kill('SIGKILL'), graceMs * 2);
    await this.exited;
    clearTimeout(t1);
    clearTimeout(t2);
  }

  private onLine(line: string): void {
    let v: unknown;
    try { v = JSON.parse(line); } catch { this.on.noise(line); return; }
    if (isMessage(v)) this.on.message(v);
    else this.on.noise(line);
  }
}
