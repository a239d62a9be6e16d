import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPinnedKeys, loadRegistryConfig } from '../registry/config.js';
import { newKeyPair } from '../registry/signature.js';
import { addEntry, findEntry, verifyRegistry, type EntryStatus } from '../registry/store.js';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';
import { unknownSubcommand } from './subcommands.js';

const USAGE = `Usage: tollgate registry <list|show|verify|add|keygen> [flags]

A catalogue of MCP servers in the official registry's server.json format, with a signed index
and a signature per entry (Ed25519, detached JWS). Keys are pinned in the registry config, outside
the registry directory. tollgate run NAME refuses entries that do not verify.

  list                       entries, versions and whether each verifies
  show NAME[@VERSION]        an entry's server.json and its verification
  verify                     check every entry; exit 1 if any fails
  add SERVER.JSON --key PEM  add or replace an entry, sign it and re-sign the index
  keygen --out DIR           make an Ed25519 key pair (registry.key.pem, registry.pub.pem)

  --config FILE     registry config (default $TOLLGATE_REGISTRY_CONFIG or ./tollgate-registry.yaml):
                      registry: ./registry
                      trusted_keys: [keys/registry.pub.pem]
  --registry DIR    registry directory (overrides the config)
  --trusted-key PEM pinned public key (repeatable; overrides the config)
  --json            machine-readable output
`;

function line(s: EntryStatus): string {
  return `${s.verified ? 'verified  ' : 'UNVERIFIED'}  ${s.name}@${s.version}${s.verified ? '' : `  — ${s.problems.join('; ')}`}`;
}

export const registryCommand: Command = {
  name: 'registry',
  summary: 'List, show, verify and sign entries of the signed MCP server registry',
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {
      config: { type: 'string' }, registry: { type: 'string' }, 'trusted-key': { type: 'string', multiple: true },
      key: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
    }, true);
    const [sub, ...rest] = positionals;
    if (values.help || !sub) { process.stdout.write(USAGE); return values.help ? 0 : 2; }
    if (sub === 'keygen') {
      if (!values.out) throw new UsageError('keygen needs --out DIR');
      mkdirSync(values.out, { recursive: true });
      const priv = join(values.out, 'registry.key.pem');
      if (existsSync(priv)) throw new UsageError(`${priv} exists; refusing to overwrite a signing key`);
      const pair = newKeyPair();
      writeFileSync(priv, pair.privatePem, { mode: 0o600 });
      writeFileSync(join(values.out, 'registry.pub.pem'), pair.publicPem);
      process.stdout.write(`wrote ${priv} (keep it secret) and ${join(values.out, 'registry.pub.pem')} (pin it in trusted_keys)\n`);
      return 0;
    }
    const cfg = loadRegistryConfig(values.config, { dir: values.registry, keys: values['trusted-key'] });
    if (sub === 'add') {
      if (rest.length !== 1 || !values.key) throw new UsageError('add needs SERVER.JSON and --key PRIVATE.pem');
      const r = await addEntry(cfg.dir, readFileSync(rest[0]!), readFileSync(values.key, 'utf8'));
      process.stdout.write(`added ${r.name}@${r.version} as ${r.file}; index re-signed\n`);
      return 0;
    }
    const keys = await loadPinnedKeys(cfg.trustedKeys);
    if (sub === 'list' || sub === 'verify') {
      const all = await verifyRegistry(cfg.dir, keys);
      if (values.json) process.stdout.write(JSON.stringify(all.map(({ entry: _e, ...s }) => s), null, 2) + '\n');
      else process.stdout.write(all.map(line).join('\n') + (all.length ? '\n' : `(no entries in ${cfg.dir})\n`));
      return sub === 'verify' && all.some((s) => !s.verified) ? 1 : 0;
    }
    if (sub === 'show') {
      if (rest.length !== 1) throw new UsageError('show needs NAME[@VERSION]');
      const spec = rest[0]!;
      const at = spec.lastIndexOf('@');
      if (at === spec.length - 1) throw new UsageError(`"${spec}" ends in "@" with no version: give NAME or NAME@VERSION`);
      const s = await findEntry(cfg.dir, keys, at > 0 ? spec.slice(0, at) : spec, at > 0 ? spec.slice(at + 1) : undefined);
      if (values.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      else process.stdout.write(`${line(s)}\nfile: ${join(cfg.dir, s.file)}\n${JSON.stringify(s.entry, null, 2)}\n`);
      return s.verified ? 0 : 1;
    }
    throw new UsageError(unknownSubcommand(sub, ['keygen', 'add', 'list', 'verify', 'show']));
  },
};
