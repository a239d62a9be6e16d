import { decodeJwt } from 'jose';
import { mintDevToken, type DevClaims } from '../identity/issuer.js';
import { activeKey, isSigningAlg, loadKeyRing, loadOrCreateKeyRing, SIGNING_ALGS } from '../identity/keystore.js';
import { findMesh, meshFilePath } from '../mesh/mesh-file.js';
import { parseCommandArgs, parseDuration } from './args.js';
import { UsageError, type Command } from './types.js';

const DEFAULT_ISSUER = 'http://127.0.0.1:5556';
const DEFAULT_AUDIENCE = 'http://127.0.0.1:10000/mcp';
/** Longest --ttl: a dev token, and an expiry every JWT library (and Date) can still represent. */
const MAX_TTL_DAYS = 365;

const USAGE = `Usage: tollgate token --sub S [--team T] [--agent A] [--groups a,b] [--scope "s1 s2"]
                      [--act SUB]... [--ttl 1h] [--aud URL]... [--issuer URL] [--state DIR]

Mints a JWT from the local dev OIDC issuer, for calling the mesh that \`tollgate up\` runs. The
issuer does not need to be running: the token is signed with the issuer's key kept in
<state>/issuer/signing-keys.json. The issuer URL and the audience come from <state>/mesh.json,
which \`tollgate up\` writes, so a token is right for a mesh on any ports; --issuer and --aud
override them.

A new key is created (mode 0600) only in a state directory named with --state or
$TOLLGATE_STATE_DIR; \`tollgate up\` on that state dir then serves it, so tokens minted before it
starts are accepted. With neither, and no mesh or key in ./.state, the command fails instead of
creating a key no mesh serves.

The last line of output is the token alone, everything before it is a summary for people:
  TOKEN=$(npx tollgate token --sub alice --team payments | tail -1)

  --sub S          subject: the user or workload the token is for (required)
  --team T         "team" claim, which policies and budgets key on
  --agent A        "agent" claim: the agent (OAuth client) acting for the subject
  --groups a,b     "groups" claim, comma-separated
  --scope "s1 s2"  "scope" claim, space-separated OAuth scopes
  --act SUB        RFC 8693 "act" claim: SUB acts on behalf of the subject. Repeat for a
                   delegation chain, current actor first: --act agent-x --act orchestrator
  --ttl D          lifetime: 90s, 15m, 1h, 2d, from 1s to ${MAX_TTL_DAYS}d (default 1h)
  --aud URL        audience: the governed MCP resource (default: the mesh's, else ${DEFAULT_AUDIENCE});
                   repeat for several. authz refuses tokens for other audiences.
  --issuer URL     "iss" claim; must equal authz's identity.issuer (default: the mesh's, else
                   ${DEFAULT_ISSUER})
  --state DIR      state directory (default $TOLLGATE_STATE_DIR, else ./.state)
  --alg A          algorithm of the key if one has to be created: ${SIGNING_ALGS.join(', ')} (default ES256);
                   an existing key keeps its own
  --claim K=V      any other claim; V is read as JSON when it parses, else as a string. Repeatable.
  -h, --help       this text
`;

const OPTIONS = {
  sub: { type: 'string' },
  team: { type: 'string' },
  agent: { type: 'string' },
  groups: { type: 'string' },
  scope: { type: 'string' },
  act: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  aud: { type: 'string', multiple: true },
  issuer: { type: 'string' },
  state: { type: 'string' },
  alg: { type: 'string' },
  claim: { type: 'string', multiple: true },
} as const;

function nonEmpty(flag: string, v: string | undefined): string | undefined {
  if (v !== undefined && v.trim() === '') throw new UsageError(`--${flag} must not be empty`);
  return v;
}

function httpUrl(flag: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`--${flag} "${v}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--${flag} "${v}" must be an http(s) URL`);
  return v;
}

const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'iat']);

function extraClaims(pairs: string[] | undefined): Record<string, unknown> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--claim "${p}" must be KEY=VALUE`);
    const key = p.slice(0, eq);
    if (RESERVED.has(key)) throw new UsageError(`--claim cannot set "${key}": use the dedicated flag`);
    const raw = p.slice(eq + 1);
    try {
      out[key] = JSON.parse(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}

function humanDuration(sec: number): string {
  if (sec % 86400 === 0) return `${sec / 86400}d`;
  if (sec % 3600 === 0) return `${sec / 3600}h`;
  if (sec % 60 === 0) return `${sec / 60}m`;
  return `${sec}s`;
}

export const tokenCommand: Command = {
  name: 'token',
  summary: 'Mint a dev token from the local OIDC issuer',
  async run(argv) {
    const { values: v } = parseCommandArgs(argv, OPTIONS);
    if (v.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const sub = nonEmpty('sub', v.sub);
    if (sub === undefined) throw new UsageError('--sub is required');
    const ttlSec = Math.round(parseDuration(v.ttl ?? '1h'));
    if (!(ttlSec >= 1 && ttlSec <= MAX_TTL_DAYS * 86400)) throw new UsageError(`--ttl must be from 1s to ${MAX_TTL_DAYS}d, got "${v.ttl}"`);
    const alg = v.alg ?? 'ES256';
    if (!isSigningAlg(alg)) throw new UsageError(`--alg must be one of ${SIGNING_ALGS.join(', ')}`);
    const found = findMesh(nonEmpty('state', v.state), process.env);
    const stateDir = found.stateDir;
    const issuer = httpUrl('issuer', v.issuer ?? found.mesh?.endpoints.issuer ?? DEFAULT_ISSUER);
    const audience = (v.aud ?? [found.mesh?.audience ?? DEFAULT_AUDIENCE]).map((a) => httpUrl('aud', a));
    if (!found.explicit && !found.mesh && !(await loadKeyRing(stateDir))) {
      process.stderr.write(`tollgate token: no mesh and no issuer key in ${stateDir} (${meshFilePath(stateDir)} does not exist).\n` +
        'Run it where `tollgate up` runs, or give the mesh\'s state directory: --state DIR or TOLLGATE_STATE_DIR=DIR\n' +
        '(`tollgate up` prints the command). To create a key here for a mesh you start later, pass --state .state\n');
      return 1;
    }
    const split = (s: string, sep: string): string[] => s.split(sep).map((x) => x.trim()).filter((x) => x !== '');

    const claims: DevClaims = {
      sub,
      audience: audience.length === 1 ? (audience[0] as string) : audience,
      ttlSec,
      team: nonEmpty('team', v.team),
      agent: nonEmpty('agent', v.agent),
      groups: v.groups === undefined ? undefined : split(v.groups, ','),
      scopes: v.scope === undefined ? undefined : split(v.scope, ' '),
      act: v.act?.length ? v.act.map((a) => nonEmpty('act', a) as string) : undefined,
      extra: extraClaims(v.claim),
    };

    const { ring, created } = await loadOrCreateKeyRing(stateDir, alg);
    const token = await mintDevToken(stateDir, issuer, claims, alg);
    const exp = decodeJwt(token).exp ?? 0;
    const who = [`sub=${sub}`, `team=${claims.team ?? '-'}`, `agent=${claims.agent ?? '-'}`];
    if (claims.act) who.push(`act=${(claims.act as string[]).join('>')}`);
    const lines = [
      `token for ${who.join(' ')}, audience ${audience.join(' ')}`,
      `expires ${new Date(exp * 1000).toISOString()} (in ${humanDuration(ttlSec)}), issuer ${issuer}, key ${activeKey(ring).kid}`,
    ];
    if (created) lines.push(`created a new ${alg} signing key in ${ring.file}; tollgate up on the same state dir will serve it`);
    process.stdout.write(`${lines.join('\n')}\n${token}\n`);
    return 0;
  },
};
