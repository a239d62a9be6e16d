import { isObject } from '../../util/object.js';

/**
 * The parts of Hydra's admin API the login/consent app uses. Every response is checked for the
 * fields we read, so a Hydra that answers something else fails with a clear message.
 */

export interface LoginRequest {
  challenge: string;
  /** Hydra already authenticated this browser (remembered session): accept without a form. */
  skip: boolean;
  subject: string;
  client: { client_id: string; client_name?: string };
}

export interface ConsentRequest {
  challenge: string;
  skip: boolean;
  subject: string;
  requested_scope: string[];
  requested_access_token_audience: string[];
  /** The authorization request as the client sent it (it carries RFC 8707 `resource`). */
  request_url: string;
  client: { client_id: string; client_name?: string };
}

export interface ConsentGrant {
  grant_scope: string[];
  grant_access_token_audience: string[];
  session: { access_token: Record<string, unknown>; id_token: Record<string, unknown> };
}

function strList(v: unknown): string[] { return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []; }

export class HydraAdmin {
  constructor(private readonly adminUrl: string, private readonly timeoutMs = 5000) {}

  private async call(method: 'GET' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.adminUrl}${path}`, {
      method, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let doc: unknown;
    try { doc = JSON.parse(text); } catch { doc = null; }
    if (res.status !== 200 || !isObject(doc)) {
      const why = isObject(doc) ? String(doc.error_description ?? doc.error ?? text) : text.slice(0, 200);
      throw new Error(`Hydra admin ${method} ${path.split('?')[0]}: HTTP ${res.status}: ${why}`);
    }
    return doc;
  }

  async loginRequest(challenge: string): Promise<LoginRequest> {
    const d = await this.call('GET', `/admin/oauth2/auth/requests/login?login_challenge=${encodeURIComponent(challenge)}`);
    const client = isObject(d.client) ? d.client : {};
    return { challenge, skip: d.skip === true, subject: String(d.subject ?? ''), client: { client_id: String(client.client_id ?? ''), ...(typeof client.client_name === 'string' ? { client_name: client.client_name } : {}) } };
  }

  async acceptLogin(challenge: string, subject: string): Promise<string> {
    const d = await this.call('PUT', `/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(challenge)}`, { subject, remember: false });
    return redirectTo(d);
  }

  async consentRequest(challenge: string): Promise<ConsentRequest> {
    const d = await this.call('GET', `/admin/oauth2/auth/requests/consent?consent_challenge=${encodeURIComponent(challenge)}`);
    const client = isObject(d.client) ? d.client : {};
    return {
      challenge, skip: d.skip === true, subject: String(d.subject ?? ''),
      requested_scope: strList(d.requested_scope), requested_access_token_audience: strList(d.requested_access_token_audience),
      request_url: String(d.request_url ?? ''),
      client: { client_id: String(client.client_id ?? ''), ...(typeof client.client_name === 'string' ? { client_name: client.client_name } : {}) },
    };
  }

  async acceptConsent(challenge: string, grant: ConsentGrant): Promise<string> {
    const d = await this.call('PUT', `/admin/oauth2/auth/requests/consent/accept?consent_challenge=${encodeURIComponent(challenge)}`, { ...grant, remember: false });
    return redirectTo(d);
  }

  /**
   * Adds audiences to a client's allowed list. Hydra re-checks granted audiences against it on every
   * refresh, and a dynamically registered MCP client never names one itself.
   */
  async allowAudiences(clientId: string, audiences: string[]): Promise<void> {
    const path = `/admin/clients/${encodeURIComponent(clientId)}`;
    const current = strList((await this.call('GET', path)).audience);
    const missing = audiences.filter((a) => !current.includes(a));
    if (missing.length === 0) return;
    await this.call('PATCH', path, [{ op: 'replace', path: '/audience', value: [...current, ...missing] }]);
  }

  async rejectConsent(challenge: string, error: string, description: string): Promise<string> {
    const d = await this.call('PUT', `/admin/oauth2/auth/requests/consent/reject?consent_challenge=${encodeURIComponent(challenge)}`, { error, error_description: description, status_code: 400 });
    return redirectTo(d);
  }
}

function redirectTo(d: Record<string, unknown>): string {
  if (typeof d.redirect_to !== 'string' || d.redirect_to === '') throw new Error('Hydra admin answered without redirect_to');
  return d.redirect_to;
}
