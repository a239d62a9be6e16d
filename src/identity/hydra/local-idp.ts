import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { HydraServer } from './server.js';
import { firstProblem, strictMapping } from '../../config/schema.js';
import { LoginConsentApp, type LoginUser } from './login-app.js';

/** The users file of `tollgate up --idp hydra` (docs/identity.md): who can sign in, with which claims. */
const UsersFile = strictMapping({
  users: z.array(strictMapping({
    username: z.string().min(1).max(128),
    password: z.string().min(8, 'must be at least 8 characters'),
    /** Copied into the access token (team and groups are what the example policies read). */
    claims: z.record(z.string(), z.unknown()).default({}),
  }, 'must be a mapping with username, password, claims')).min(1, 'list at least one user'),
});

export function parseUsersFile(text: string, source: string): LoginUser[] {
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new Error(`${source}: ${(e as Error).message}`); }
  const r = UsersFile.safeParse(doc);
  if (!r.success) {
    const [field, problem] = firstProblem(r.error);
    throw new Error(`${source}: ${field ? `${field}: ` : ''}${problem}`);
  }
  const names = r.data.users.map((u) => u.username);
  const dup = names.find((n, k) => names.indexOf(n) !== k);
  if (dup !== undefined) throw new Error(`${source}: user ${dup} is listed twice`);
  return r.data.users.map((u) => ({ username: u.username, password: u.password, claims: u.claims }));
}

/** First run: two demo users with random passwords, kept (0600) in the state directory. */
function defaultUsersFile(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const pw = (): string => randomBytes(9).toString('base64url');
    writeFileSync(path, toYaml({ users: [
      { username: 'alice', password: pw(), claims: { team: 'payments' } },
      { username: 'sam', password: pw(), claims: { team: 'support' } },
    ] }), { mode: 0o600 });
  }
  return path;
}

export interface LocalIdpOptions {
  stateDir: string;
  /** The governed MCP URLs tokens may be issued for (RFC 8707 resources). */
  resources: string[];
  /** Hydra's public port; its admin API takes the next port, the login app the one after. */
  port: number;
  usersFile?: string;
  echo?: boolean;
}

export interface LocalIdp {
  hydra: HydraServer;
  app: LoginConsentApp;
  usersFile: string;
  stop(): Promise<void>;
}

/** Hydra plus the login/consent app, for `tollgate up --idp hydra`. */
export async function startLocalIdp(o: LocalIdpOptions): Promise<LocalIdp> {
  const usersFile = o.usersFile ?? defaultUsersFile(join(o.stateDir, 'idp-users.yaml'));
  const users = parseUsersFile(readFileSync(usersFile, 'utf8'), usersFile);
  const app = await LoginConsentApp.start({ hydraAdminUrl: `http://127.0.0.1:${o.port + 1}`, users, resources: o.resources, port: o.port + 2 });
  try {
    const hydra = await HydraServer.start({
      stateDir: join(o.stateDir, 'hydra'), publicPort: o.port, adminPort: o.port + 1,
      loginUrl: app.loginUrl, consentUrl: app.consentUrl, database: 'file', echo: o.echo,
    });
    return { hydra, app, usersFile, stop: async () => { await hydra.stop(); await app.close(); } };
  } catch (e) {
    await app.close();
    throw e;
  }
}
