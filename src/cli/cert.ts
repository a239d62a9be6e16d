import { CERT_SDS_FILE, writeCertSdsFile } from '../envoy/bootstrap.js';
import { keepRenewing } from '../pki/renew.js';
import { certificatesUrlProblem, readTokenFile, requestWorkloadCertificate, type IssuedFiles } from '../pki/request.js';
import { readCaFile } from '../util/pem-ca.js';
import { join } from 'node:path';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';
import { dispatch } from './subcommands.js';

const USAGE = `Usage: tollgate cert request --url URL --ca FILE --token-file FILE --out DIR [--renew]

Gets this pod's workload certificate from the control plane (in a cluster; \`tollgate up\` issues
its own locally). Sends a fresh key's certificate request with the pod's projected
service-account token; the control plane checks the token with the API server and signs a
short-lived certificate for spiffe://<trust-domain>/ns/<namespace>/sa/<service account>.
Writes DIR/tls.crt, DIR/tls.key (0600) and DIR/ca.crt, and DIR/${CERT_SDS_FILE} (the file-based
SDS source through which Envoy follows the files as they are renewed). docs/security.md.

  --url URL          the control plane's https://…/v1/certificates (its --workload-certs);
                     https:// only, since the token goes with the request
  --ca FILE          mesh CA certificate (PEM) the control plane's certificate must chain to;
                     the only CA trusted. A file without a PEM certificate is refused (never
                     the system's CAs instead)
  --token-file FILE  projected service-account token with audience tollgate-controlplane
                     (must not be empty)
  --out DIR          where to write the files
  --renew            keep running and renew at half the certificate's remaining lifetime (a new
                     key each time, the token file re-read); a certificate already in DIR is
                     used until then. A failed renewal is logged and retried, never fatal.
                     Stops on SIGTERM.
  -h, --help         show this help
`;

export const certCommand: Command = {
  name: 'cert',
  summary: 'Get this pod\'s workload certificate from the control plane',
  async run(argv) {
    return dispatch({ command: 'cert', usage: USAGE, names: ['request'] }, argv, (_sub, rest) => request(rest));
  },
};

/** `tollgate cert request`. */
async function request(rest: string[]): Promise<number> {
  const { values } = parseCommandArgs(rest, { url: { type: 'string' }, ca: { type: 'string' }, 'token-file': { type: 'string' }, out: { type: 'string' }, renew: { type: 'boolean' } });
  if (values.help) { process.stdout.write(USAGE); return 0; }
  for (const f of ['url', 'ca', 'token-file', 'out'] as const) if (!values[f]) throw new UsageError(`--${f} is required`);
  const url = values.url as string;
  const badUrl = certificatesUrlProblem(url);
  if (badUrl) throw new UsageError(`--url must be an https:// URL such as https://HOST:PORT/v1/certificates: "${url}" ${badUrl}`);
  // All checked before connecting: the token is sent to no server but one the mesh CA vouches for.
  let ca: string;
  try { ca = readCaFile(values.ca as string, `--ca ${values.ca as string}`); } catch (e) { throw new UsageError((e as Error).message); }
  const tokenFile = values['token-file'] as string;
  try { readTokenFile(tokenFile); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(err.code ? `--token-file: ${err.message}` : `--token-file ${tokenFile} is empty`);
  }
  const req = { url, ca, tokenFile, outDir: values.out as string };
  // Renamed into place after the certificate files: the last event Envoy's watch sees.
  const sds = (f: IssuedFiles): Promise<void> => writeCertSdsFile(join(req.outDir, CERT_SDS_FILE), f);
  if (values.renew) {
    const stop = new AbortController();
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
    const log = (m: string): void => { process.stderr.write(`${new Date().toISOString()} cert ${m}\n`); };
    await keepRenewing(req, { onIssued: sds, log, signal: stop.signal });
    return 0;
  }
  const got = await requestWorkloadCertificate(req);
  await sds(got);
  process.stdout.write(`${got.spiffeId}: ${got.cert}, ${got.key}, ${got.ca}\n`);
  return 0;
}
