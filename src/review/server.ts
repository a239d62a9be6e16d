import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { LogFile } from '../decisionlog/files.js';
import type { Finding } from '../decisionlog/verify.js';
import { parseLine } from '../decisionlog/lines.js';
import { unfoldRecord } from '../decisionlog/fold.js';
import { revisionOf } from '../decisionlog/query.js';
import { PAGE_CSS, PAGE_HTML, PAGE_ICON, PAGE_JS } from './assets.js';
import { LogIndex } from './log-index.js';
import { burnDown, chartTeamFromParams, FilterError, filterFromParams, parseCursor, parseLimit, summary, timeline, type Summary } from './query.js';
import { barChart, burnChart } from './svg.js';
import type { VerifyState, VerifyWatch } from './verify-watch.js';

/**
 * `tollgate review`: a read-only web view over a decision log. GET (and HEAD) only; the page and
 * its script are fixed files under a strict CSP; every value from the log reaches the browser as
 * JSON (built into elements with textContent) or as escaped SVG text. On loopback the Host header
 * must name loopback (no DNS rebinding); anywhere else a password is required.
 */

export interface ReviewServerOptions {
  host: string;
  port: number;
  /** The files to index (re-listed at each refresh, so rotation is followed). */
  files: () => LogFile[];
  verify: VerifyWatch | null;
  /** HTTP Basic password (user name ignored); required unless host is loopback. */
  password: string | null;
  tls?: { cert: string; key: string } | null;
  now?: () => Date;
  /** Minimum time between two refreshes of the index. */
  refreshMs?: number;
}

export class ReviewConfigError extends Error {}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopback = (host: string): boolean => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const STATIC: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
  '/static/review.js': { type: 'text/javascript; charset=utf-8', body: PAGE_JS },
  '/static/review.css': { type: 'text/css; charset=utf-8', body: PAGE_CSS },
  // Browsers ask for an icon whatever the page says; a fixed one keeps the console free of 404s.
  '/favicon.ico': { type: 'image/svg+xml', body: PAGE_ICON },
  '/static/icon.svg': { type: 'image/svg+xml', body: PAGE_ICON },
};

/** JSON that is also safe if ever sniffed as HTML: <, >, & and the JS line separators escaped. */
export function jsonBody(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Errors before warnings; then by file (names sort in chain order) and line; placeless last. */
function byPlace(a: Finding, b: Finding): number {
  if (a.severity !== b.severity) return a.severity === 'error' ? -1 : 1;
  if ((a.file === null) !== (b.file === null)) return a.file === null ? 1 : -1;
  if (a.file !== b.file) return (a.file ?? '') < (b.file ?? '') ? -1 : 1;
  return (a.line ?? 0) - (b.line ?? 0);
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The index, kept up to date with the files; rebuilt from scratch if they were rewritten. */
class IndexHolder {
  index = new LogIndex();
  /** Bumped when the index is rebuilt (the log was rewritten). */
  generation = 0;
  private running: Promise<void> | null = null;
  private last = 0;
  constructor(private readonly files: () => LogFile[], private readonly refreshMs: number) {}

  /** Refreshes when due; concurrent callers share one refresh. */
  fresh(): Promise<void> {
    if (this.running) return this.running;
    if (Date.now() - this.last < this.refreshMs) return Promise.resolve();
    this.running = (async () => {
      try {
        if (!(await this.index.refresh(this.files()))) {
          const next = new LogIndex();
          await next.refresh(this.files());
          this.index = next;
          this.generation++;
        }
      } finally {
        this.last = Date.now();
        this.running = null;
      }
    })();
    return this.running;
  }
}

export class ReviewServer {
  private readonly server: Server;
  private readonly holder: IndexHolder;
  private readonly passwordDigest: Buffer | null;
  private readonly now: () => Date;
  /** Summaries by index size and filter: a page load asks for the same one three times (counts, two charts). */
  private readonly summaries = new Map<string, Summary>();

  private constructor(private readonly o: ReviewServerOptions) {
    this.holder = new IndexHolder(o.files, o.refreshMs ?? 1000);
    this.passwordDigest = o.password === null ? null : digest(o.password);
    this.now = o.now ?? (() => new Date());
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((e: Error) => this.fail(res, e));
    };
    this.server = o.tls ? createHttps({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, handler) : createHttp(handler);
  }

  /** Checks the exposure rules, starts listening and begins indexing. */
  static async start(o: ReviewServerOptions): Promise<ReviewServer> {
    if (!isLoopback(o.host) && o.password === null) {
      throw new ReviewConfigError(`refusing to serve decision records on ${o.host} without a login: give --password-file FILE (or bind to 127.0.0.1)`);
    }
    if (o.password !== null && o.password.length < 12) throw new ReviewConfigError('the review password must be at least 12 characters');
    const s = new ReviewServer(o);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(o.port, o.host, () => { s.server.off('error', reject); resolve(); });
    });
    void s.holder.fresh().catch(() => undefined);
    o.verify?.start();
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const h = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    return `${this.o.tls ? 'https' : 'http'}://${h}:${this.port}/`;
  }

  /** Waits for the index to catch up with the files (tests, benchmarks). */
  async indexed(): Promise<LogIndex> {
    await this.holder.fresh();
    return this.holder.index;
  }

  async close(): Promise<void> {
    this.o.verify?.stop();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private headers(res: ServerResponse, type: string): void {
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
    this.headers(res, type);
    res.statusCode = status;
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private fail(res: ServerResponse, e: Error): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = e instanceof HttpError ? e.status : e instanceof FilterError ? 400 : 500;
    this.headers(res, 'application/json; charset=utf-8');
    res.statusCode = status;
    res.end(jsonBody({ error: status === 500 ? `internal error: ${e.message}` : e.message }));
  }

  /** The Host header must name this loopback server: a page elsewhere cannot rebind a name to 127.0.0.1 and read the log. */
  private hostAllowed(req: IncomingMessage): boolean {
    if (!isLoopback(this.o.host)) return true;
    const host = req.headers.host ?? '';
    const m = /^(?:\[([0-9a-fA-F:]+)\]|([a-zA-Z0-9.-]+))(?::(\d+))?$/.exec(host);
    if (!m) return false;
    return isLoopback(m[1] ?? m[2] ?? '') && (m[3] === undefined || Number(m[3]) === this.port);
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.passwordDigest === null) return true;
    const h = req.headers.authorization ?? '';
    if (!h.startsWith('Basic ') || h.length > 1024) return false;
    const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    return timingSafeEqual(digest(decoded.slice(colon + 1)), this.passwordDigest);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.hostAllowed(req)) throw new HttpError(421, 'this server answers only to a loopback Host header');
    if (!this.authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="tollgate review", charset="UTF-8"');
      throw new HttpError(401, 'login required');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, 'read-only: only GET and HEAD');
    }
    const url = new URL(req.url ?? '/', 'http://review.invalid');
    const fixed = STATIC[url.pathname];
    if (fixed) {
      this.send(req, res, 200, fixed.type, fixed.body);
      return;
    }
    // Fresh data when catching up is quick; during a long first read, what is indexed so far.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.holder.fresh(), new Promise((r) => { timer = setTimeout(r, 250); })]);
    clearTimeout(timer);
    const index = this.holder.index;
    const q = url.searchParams;
    const json = (v: unknown): void => this.send(req, res, 200, 'application/json; charset=utf-8', jsonBody(v));
    const svg = (body: string): void => this.send(req, res, 200, 'image/svg+xml; charset=utf-8', body);
    switch (url.pathname) {
      case '/api/timeline':
        return json(timeline(index, filterFromParams(q, this.now()), parseCursor(q.get('cursor'), index.size), parseLimit(q.get('limit'))));
      case '/api/summary':
        return json(this.summary(index, q));
      case '/api/record':
        return json(this.record(index, q));
      case '/api/verify':
        return json(this.verifyView(this.o.verify?.state() ?? null));
      case '/api/status':
        return json({ indexed: index.size, lines: index.linesRead, invalid: index.invalid, memoryBytes: index.columnBytes() });
      case '/charts/denied-tools.svg':
        return svg(barChart('Top denied tools', this.summary(index, q).topDeniedTools));
      case '/charts/denied-teams.svg':
        return svg(barChart('Top denied teams', this.summary(index, q).topDeniedTeams));
      case '/charts/burndown.svg': {
        const team = chartTeamFromParams(q);
        return svg(burnChart(burnDown(index, filterFromParams(q, this.now()), team)));
      }
      default:
        throw new HttpError(404, 'no such page');
    }
  }

  private summary(index: LogIndex, q: URLSearchParams): Summary {
    const f = filterFromParams(q, this.now());
    // Keyed by the parsed filter, so relative times ("24h") resolve afresh each time.
    const key = `${this.holder.generation}|${index.size}|${JSON.stringify(f)}`;
    let s = this.summaries.get(key);
    if (!s) {
      if (this.summaries.size >= 32) this.summaries.clear();
      s = summary(index, f);
      this.summaries.set(key, s);
    }
    return s;
  }

  private record(index: LogIndex, q: URLSearchParams): unknown {
    const s = q.get('row') ?? '';
    if (!/^\d{1,10}$/.test(s) || Number(s) >= index.size) throw new HttpError(404, 'no such record (row out of range)');
    const row = Number(s);
    const place = index.place(row);
    const parsedAt = (p: typeof place): unknown => {
      const line = index.readLine(p);
      const parsed = line === null ? null : parseLine(line);
      if (!parsed || (parsed.kind !== 'record' && parsed.kind !== 'accounting')) return null;
      if (parsed.kind === 'accounting') return parsed.record;
      // Shown as authz had it: the copies the record folded are put back (as written if they do not resolve).
      try {
        return unfoldRecord(parsed.record);
      } catch {
        return parsed.record;
      }
    };
    const record = parsedAt(place) as Parameters<typeof revisionOf>[0] | null;
    if (record === null) throw new HttpError(409, `${place.file}:${place.line} no longer holds this record: the log changed under the index; reload`);
    const ap = index.accountingPlace(row);
    const state = this.o.verify?.state() ?? null;
    const here = state?.report?.findings.filter((f) => f.file === place.file && f.line === place.line) ?? [];
    const chain = state === null ? 'not verified (no local log files)'
      : state.report === null ? 'verification pending'
        : here.length > 0 ? here.map((f) => `${f.severity} ${f.kind}: ${f.message}`).join('; ')
          : state.report.ok ? 'in an intact chain' : 'no finding at this line (the chain is broken elsewhere; see above)';
    return {
      row, place: { file: place.file, line: place.line }, record, revision: revisionOf(record), tokens: index.tokens(row), chain,
      accounting: ap ? { place: { file: ap.file, line: ap.line }, record: parsedAt(ap) } : null,
    };
  }

  private verifyView(state: VerifyState | null): unknown {
    if (state === null) return { state: 'unavailable', ok: null, summary: 'chain verification reads local log files; this view reads the NATS replica (verify each instance\'s log with tollgate logs verify)', findings: [] };
    if (state.error) return { state: 'failed', ok: false, summary: `verification could not run: ${state.error}`, findings: [] };
    const r = state.report;
    if (r === null) return { state: 'running', ok: null, summary: 'verifying the hash chain and checkpoints…', findings: [] };
    // Errors first, earliest place first: the first is where the log stops being trustworthy
    // (an edited record before the checkpoint that no longer matches it).
    const findings = [...r.findings].sort(byPlace);
    const errors = findings.filter((f) => f.severity === 'error');
    const warnings = findings.length - errors.length;
    const first = errors[0];
    const summaryText = r.ok
      ? `INTACT: ${r.records} records (seq ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}), ${r.verifiedCheckpoints} of ${r.checkpoints} checkpoint signatures valid${r.signedThrough ? `, signed through seq ${r.signedThrough}` : ''}${warnings ? `; ${warnings} warning(s)` : ''}`
      : `BROKEN at ${first?.file ?? '-'}${first?.line ? ':' + first.line : ''}: ${first?.message ?? 'see findings'} (${errors.length} problem(s))`;
    return { state: state.running ? 'running' : 'done', ok: r.ok, warnings, summary: summaryText, checkedAt: state.checkedAt, findings: findings.slice(0, 50) };
  }
}
