import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listLogFiles, type LogFile } from '../decisionlog/files.js';
import { stateDirOf } from '../mesh/mesh-file.js';
import { isLoopback, ReviewConfigError, ReviewServer } from '../review/server.js';
import { VerifyWatch } from '../review/verify-watch.js';
import { parseCommandArgs } from './args.js';
import { createLogsCommand, SOURCE_HELP, SOURCE_OPTIONS } from './logs.js';
import { UsageError, type Command } from './types.js';

export const DEFAULT_REVIEW_PORT = 8790;

const HELP = `Usage: tollgate review [--dir DIR | --state DIR | --nats URL] [--host H] [--port P] [--password-file FILE]

Serves a read-only web view of the decision log for a security reviewer: a timeline with filters,
each record in full (masked input, reasons, delegation chain, revision, tokens, its accounting
record), the chain's verification status with the file:line of any break, the top denied tools
and teams, and each team's budget burn-down. Stays fast on large logs: records are indexed once
(offsets and filter fields) and followed as the log grows; pages are cut on the server.
Docs: docs/review.md.

Listening (loopback by default; anywhere else a login is required). On loopback, any local user
or process can read every record unless --password-file is given: use it on a shared machine.
  --host H               address to bind (default 127.0.0.1)
  --port P               port (default ${DEFAULT_REVIEW_PORT}; 0 picks a free one)
  --password-file FILE   HTTP Basic login: the password is the file's first line (12+
                         characters; any user name). Required for a non-loopback --host
  --tls-cert FILE, --tls-key FILE
                         serve HTTPS with this certificate (PEM); advised with --password-file

Verification (local log only; the same check as tollgate logs verify):
  --key PUBKEY           public key(s) trusted for checkpoint signatures (default: the log's own)
  --witness FILE         the log's witness (default DIR.witness.jsonl beside DIR, if it exists)
  --strict               warnings count as failures

${SOURCE_HELP}
  -h, --help             this text
`;

export interface ReviewIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Stops the server; by default SIGINT/SIGTERM do. */
  signal?: AbortSignal;
  /** Called once the server listens (tests read the port from it). */
  listening?: (server: ReviewServer) => void;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
}

/**
 * Copies the NATS replica into a private spool file through `tollgate logs query --json
 * --accounting` (the same reader, TLS and credentials), so the index can seek in it like in a
 * local log. A snapshot: restart to see newer records.
 */
async function spoolNats(argv: string[], io: ReviewIo, spool: string): Promise<void> {
  const fd = openSync(spool, 'w', 0o600);
  let err = '';
  try {
    const code = await createLogsCommand({ out: (s) => { writeSync(fd, s); }, err: (s) => { err += s; }, env: io.env }).run(['query', '--json', '--accounting', ...argv]);
    if (code !== 0) throw new Error(`reading the NATS replica failed: ${err.trim()}`);
  } finally {
    closeSync(fd);
  }
}

/** The source flags given, to hand on to `logs query`. */
function sourceArgs(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(SOURCE_OPTIONS)) if (k !== 'dir' && typeof v[k] === 'string') out.push(`--${k}`, v[k] as string);
  return out;
}

export function createReviewCommand(partial: Partial<ReviewIo> = {}): Command {
  const io: ReviewIo = { out: (s) => { process.stdout.write(s); }, err: (s) => { process.stderr.write(s); }, env: process.env, ...partial };
  return {
    name: 'review',
    summary: 'A read-only web view of the decision log for security review',
    async run(argv: string[]): Promise<number> {
      const { values: v } = parseCommandArgs(argv, {
        ...SOURCE_OPTIONS, host: { type: 'string' }, port: { type: 'string' }, 'password-file': { type: 'string' },
        'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, key: { type: 'string' }, witness: { type: 'string' }, strict: { type: 'boolean' },
      });
      if (v.help) {
        io.out(HELP);
        return 0;
      }
      const host = v.host ?? '127.0.0.1';
      const portText = v.port ?? String(DEFAULT_REVIEW_PORT);
      if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`--port must be 0..65535, got "${portText}"`);
      if (!!v['tls-cert'] !== !!v['tls-key']) throw new UsageError('--tls-cert and --tls-key go together');
      const password = v['password-file'] ? readText(v['password-file'], '--password-file').split(/\r?\n/)[0]! : null;
      const tls = v['tls-cert'] && v['tls-key'] ? { cert: readText(v['tls-cert'], '--tls-cert'), key: readText(v['tls-key'], '--tls-key') } : null;
      if (!isLoopback(host) && password === null) throw new UsageError(`refusing to serve decision records on ${host} without a login: give --password-file FILE (or bind to 127.0.0.1)`);
      const nats = typeof v.nats === 'string';
      if (nats && v.dir) throw new UsageError('give either --dir or --nats, not both');
      if (nats && (v.key || v.witness || v.strict)) throw new UsageError('--key, --witness and --strict verify local log files; they do not go with --nats');

      let files: () => LogFile[];
      let verify: VerifyWatch | null = null;
      let spoolDir: string | null = null;
      if (nats) {
        spoolDir = mkdtempSync(join(tmpdir(), 'tollgate-review-'));
        const spool = join(spoolDir, 'replica.jsonl');
        await spoolNats(sourceArgs(v), io, spool);
        const name = `nats:${typeof v.stream === 'string' ? v.stream : 'TOLLGATE_DECISIONS'}`;
        files = () => [{ name, path: spool, index: 1 }];
      } else {
        // As for `logs`: --dir, else DIR/decisions of --state / $TOLLGATE_STATE_DIR / ./.state. The
        // checkpoint keys beside that log and its witness are what the chain is verified with.
        const dir = v.dir ?? join(stateDirOf(v.state, io.env).dir, 'decisions');
        if (!existsSync(dir) || !statSync(dir).isDirectory() || listLogFiles(dir).length === 0) {
          io.err(`tollgate review: no decision log in ${dir}: pass --dir DIR or --state DIR, set TOLLGATE_STATE_DIR, or read the central copy with --nats URL\n`);
          return 1;
        }
        files = () => listLogFiles(dir);
        const flags = [...(v.key ? ['--key', v.key] : []), ...(v.witness ? ['--witness', v.witness] : []), ...(v.strict ? ['--strict'] : [])];
        verify = new VerifyWatch({ dir, files, flags });
      }

      let server: ReviewServer;
      try {
        server = await ReviewServer.start({ host, port: Number(portText), files, verify, password, tls });
      } catch (e) {
        if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
        if (e instanceof ReviewConfigError) throw new UsageError(e.message);
        throw e;
      }
      io.out(`tollgate review: serving ${server.url} (read-only${password ? ', login required' : ', loopback only'}); Ctrl-C stops\n`);
      if (password && !tls) io.err('tollgate review: warning: the password travels in clear without --tls-cert/--tls-key\n');
      io.listening?.(server);
      await new Promise<void>((resolve) => {
        if (io.signal) {
          if (io.signal.aborted) resolve();
          else io.signal.addEventListener('abort', () => resolve(), { once: true });
          return;
        }
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await server.close();
      if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
      return 0;
    },
  };
}

export const reviewCommand: Command = createReviewCommand();
