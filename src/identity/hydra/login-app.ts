import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HydraAdmin, type ConsentRequest } from './admin.js';

/** A person who can log in, and the claims their access tokens carry (team, groups: what policies read). */
export interface LoginUser {
  username: string;
  password: string;
  claims: Record<string, unknown>;
}

export interface LoginAppOptions {
  hydraAdminUrl: string;
  users: LoginUser[];
  /**
   * Resources (RFC 8707) this authorization server issues tokens for. A request naming any other
   * resource is refused at consent, so a client cannot get a token for a service nobody registered.
   */
  resources: string[];
  port?: number;
  host?: string;
}

const MAX_FORM_BYTES = 8 * 1024;

function digest(s: string): Buffer { return createHash('sha256').update(s, 'utf8').digest(); }

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** RFC 8707 `resource` parameters of the original authorization request (repeatable). */
export function requestedResources(req: ConsentRequest): string[] {
  let url: URL;
  try { url = new URL(req.request_url); } catch { return [...req.requested_access_token_audience]; }
  return [...new Set([...url.searchParams.getAll('resource'), ...req.requested_access_token_audience])];
}

/**
 * What consent grants: the requested scopes and, as the access token's audience, the resources the
 * client asked for. Hydra itself ignores `resource`; mapping it to the granted audience here is
 * what puts the MCP server's URL into the token's `aud`, which Tollgate checks.
 */
export function consentDecision(req: ConsentRequest, user: LoginUser, allowed: readonly string[]):
  { ok: true; scope: string[]; audience: string[]; claims: Record<string, unknown> } | { ok: false; error: string; description: string } {
  const resources = requestedResources(req);
  if (resources.length === 0) return { ok: false, error: 'invalid_target', description: 'name the protected resource with the "resource" parameter (RFC 8707)' };
  const unknown = resources.filter((r) => !allowed.includes(r));
  if (unknown.length > 0) return { ok: false, error: 'invalid_target', description: `no tokens are issued for ${unknown.join(', ')}` };
  return { ok: true, scope: req.requested_scope, audience: resources, claims: { ...user.claims } };
}

function loginPage(challenge: string, message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Tollgate sign-in</title></head><body>
<h1>Sign in</h1>${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="challenge" value="${escapeHtml(challenge)}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Tollgate's login and consent app for Hydra: a username/password form against a users list, and
 * consent granted for the configured resources. It is for tests and `tollgate up --idp hydra`; in
 * production Hydra sits behind the organisation's own login (or Tollgate trusts the enterprise IdP
 * directly, docs/identity.md).
 */
export class LoginConsentApp {
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(o: LoginAppOptions): Promise<LoginConsentApp> {
    if (o.users.length === 0) throw new Error('the login app needs at least one user');
    if (o.resources.length === 0) throw new Error('the login app needs at least one resource to issue tokens for');
    const admin = new HydraAdmin(o.hydraAdminUrl);
    const users = new Map(o.users.map((u) => [u.username, u]));
    const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://login.invalid');
      const send = (status: number, body: string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
        res.end(body);
      };
      const redirect = (to: string): void => { res.writeHead(302, { location: to, 'cache-control': 'no-store' }); res.end(); };
      if (req.method === 'GET' && url.pathname === '/login') {
        const challenge = url.searchParams.get('login_challenge') ?? '';
        if (!challenge) return send(400, '<p>missing login_challenge</p>');
        const lr = await admin.loginRequest(challenge);
        if (lr.skip && users.has(lr.subject)) return redirect(await admin.acceptLogin(challenge, lr.subject));
        return send(200, loginPage(challenge, ''));
      }
      if (req.method === 'POST' && url.pathname === '/login') {
        const form = await readForm(req);
        const challenge = form.get('challenge') ?? '';
        if (!challenge) return send(400, '<p>missing challenge</p>');
        const user = users.get(form.get('username') ?? '');
        // Compare against something even for an unknown user, so timing does not tell who exists.
        const ok = timingSafeEqual(digest(form.get('password') ?? ''), digest(user?.password ?? '\0no-such-user'));
        if (!user || !ok) return send(401, loginPage(challenge, 'Wrong username or password.'));
        return redirect(await admin.acceptLogin(challenge, user.username));
      }
      if (req.method === 'GET' && url.pathname === '/consent') {
        const challenge = url.searchParams.get('consent_challenge') ?? '';
        if (!challenge) return send(400, '<p>missing consent_challenge</p>');
        const cr = await admin.consentRequest(challenge);
        const user = users.get(cr.subject);
        if (!user) return redirect(await admin.rejectConsent(challenge, 'access_denied', 'unknown subject'));
        const d = consentDecision(cr, user, o.resources);
        if (!d.ok) return redirect(await admin.rejectConsent(challenge, d.error, d.description));
        await admin.allowAudiences(cr.client.client_id, d.audience);
        return redirect(await admin.acceptConsent(challenge, {
          grant_scope: d.scope, grant_access_token_audience: d.audience,
          session: { access_token: d.claims, id_token: d.claims },
        }));
      }
      if (req.method === 'GET' && url.pathname === '/healthz') return send(200, 'ok');
      send(404, '<p>not found</p>');
    };
    const server = createServer((req, res) => {
      handler(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`login app: ${(e as Error).message}`);
      });
    });
    const host = o.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(o.port ?? 0, host, resolve); });
    const port = (server.address() as AddressInfo).port;
    return new LoginConsentApp(server, `http://${host}:${port}`);
  }

  get loginUrl(): string { return `${this.url}/login`; }
  get consentUrl(): string { return `${this.url}/consent`; }

  close(): Promise<void> {
    return new Promise((resolve) => { this.server.close(() => resolve()); this.server.closeAllConnections(); });
  }
}
