import { readFile, writeFile } from 'node:fs/promises';
import { DEFAULT_CONTROL_PLANE, DEFAULT_ENVOY_IMAGE, DEFAULT_SHARED_AUTHZ } from '../k8s/annotations.js';
import type { FailurePolicy } from '../k8s/admission.js';
import { defaultAuthzImage, type InjectOptions } from '../k8s/mutate.js';
import { SIDECAR_MODES, type SidecarMode } from '../k8s/sidecars.js';
import { WebhookServer, type WebhookOptions } from '../k8s/webhook.js';
import { injectYaml, type DocumentReport } from '../k8s/yaml-docs.js';
import { parseHostPort } from '../util/net.js';
import { parseCommandArgs, parseDuration } from './args.js';
import { UsageError, type Command } from './types.js';

const cp = `${DEFAULT_CONTROL_PLANE.host}:${DEFAULT_CONTROL_PLANE.port}`;
const shared = `${DEFAULT_SHARED_AUTHZ.host}:${DEFAULT_SHARED_AUTHZ.port}`;

export const INJECTION_FLAGS = `Sidecar flags (offline and webhook):
  --controlplane HOST:PORT   Control plane ADS endpoint the Envoy bootstrap points at
                             (default ${cp})
  --envoy-image IMAGE        Envoy sidecar image (default ${DEFAULT_ENVOY_IMAGE})
  --authz-image IMAGE        authz sidecar image (default ${defaultAuthzImage()})
  --no-authz                 No authz sidecar: pods use the shared authz Service unless they
                             annotate tollgate.dev/authz: "sidecar"
  --shared-authz HOST:PORT   The shared authz Service (default ${shared})
  --workload-certs URL       Give Envoy a workload certificate for mTLS xDS: an init container
                             trades the pod's projected service-account token for one at URL
                             (the control plane's https://…/v1/certificates; docs/security.md),
                             and tollgate-identity-renew renews it at half its lifetime
  --mesh-ca-configmap NAME   ConfigMap with the mesh CA as ca.crt (default tollgate-mesh-ca)
  --sidecar-mode native|containers
                             native (default): init containers with restartPolicy: Always
                             (Kubernetes 1.29+). containers: plain containers after the MCP
                             server's, for clusters before 1.29 (no start/stop ordering, and a
                             Job's pod never completes while its sidecars run)`;

const HELP = `Usage:
  tollgate inject -f FILE|- [-o FILE] [sidecar flags]
  tollgate inject webhook --cert FILE --key FILE [--listen HOST:PORT] [sidecar flags]

Offline: reads Kubernetes YAML (any number of documents), adds the Tollgate sidecars to every Pod
and to the pod template of every Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob and PodTemplate (also inside a List), and writes the result.
Other documents are copied unchanged, byte for byte. Pods annotated tollgate.dev/inject: "false"
and pods already injected are left alone. Unlike the webhook, no namespace label is needed.
A report of what was injected goes to stderr. A pod or workload with a field the API server would
refuse (an unquoted label or annotation value such as tollgate.dev/inject: false, a container
port outside 1-65535, a container or volume without a name) stops the run with the document
and the field named, and nothing is written.

  -f, --filename FILE|-      Input YAML file, or - for standard input (required)
  -o, --output FILE          Write here instead of standard output
  --namespace NS             Namespace for objects that name none (node ids, metadata);
                             default "default"

webhook: runs the mutating admission webhook over HTTPS (POST /mutate, GET /healthz), as
deployed by manifests/base. It reloads the certificate files when they change.

  --cert FILE                PEM certificate (chain) for the webhook's Service name (required)
  --key FILE                 PEM private key (required)
  --listen HOST:PORT         Listen address (default :8443, all interfaces)
  --failure-policy Fail|Ignore
                             When injection fails for an internal reason: Fail (default) refuses
                             the pod, Ignore admits it without sidecars, with a warning. Invalid
                             pods (bad annotations or fields, port clashes) are refused either way.
  --reload-interval DURATION How often to re-read --cert/--key (default 30s; 0 disables)

${INJECTION_FLAGS}

Annotations that steer injection are listed in docs/kubernetes.md.
`;

export const injectionOptions = {
  controlplane: { type: 'string' },
  'envoy-image': { type: 'string' },
  'authz-image': { type: 'string' },
  'no-authz': { type: 'boolean' },
  'shared-authz': { type: 'string' },
  'workload-certs': { type: 'string' },
  'mesh-ca-configmap': { type: 'string' },
  'sidecar-mode': { type: 'string' },
} as const;

export interface InjectionFlagValues {
  controlplane?: string;
  'envoy-image'?: string;
  'authz-image'?: string;
  'no-authz'?: boolean;
  'shared-authz'?: string;
  'workload-certs'?: string;
  'mesh-ca-configmap'?: string;
  'sidecar-mode'?: string;
}

function hostPort(flag: string, v: string): { host: string; port: number } {
  try {
    const hp = parseHostPort(v, '');
    if (!hp.host) throw new Error('a host is required');
    return hp;
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message} (expected HOST:PORT)`);
  }
}

export function toInjectOptions(v: InjectionFlagValues): InjectOptions {
  const o: InjectOptions = {};
  if (v.controlplane !== undefined) o.controlPlane = hostPort('controlplane', v.controlplane);
  if (v['shared-authz'] !== undefined) o.sharedAuthz = hostPort('shared-authz', v['shared-authz']);
  if (v['envoy-image'] !== undefined) o.envoyImage = v['envoy-image'];
  if (v['authz-image'] !== undefined) o.authzImage = v['authz-image'];
  if (v['no-authz']) o.defaultAuthz = 'shared';
  if (v['mesh-ca-configmap'] !== undefined && v['workload-certs'] === undefined) throw new UsageError('--mesh-ca-configmap goes with --workload-certs');
  if (v['workload-certs'] !== undefined) {
    let u: URL;
    try { u = new URL(v['workload-certs']); } catch { throw new UsageError(`--workload-certs: "${v['workload-certs']}" is not a URL`); }
    if (u.protocol !== 'https:') throw new UsageError('--workload-certs must be an https:// URL (the token it carries must not travel in clear)');
    o.workloadCerts = { url: u.href, ...(v['mesh-ca-configmap'] ? { caConfigMap: v['mesh-ca-configmap'] } : {}) };
  }
  const mode = v['sidecar-mode'];
  if (mode !== undefined) {
    if (!(SIDECAR_MODES as readonly string[]).includes(mode)) throw new UsageError(`--sidecar-mode must be ${SIDECAR_MODES.join(' or ')}, not "${mode}"`);
    o.sidecarMode = mode as SidecarMode;
  }
  for (const [flag, image] of [['envoy-image', o.envoyImage], ['authz-image', o.authzImage]] as const) {
    if (image !== undefined && (image === '' || /\s/.test(image))) throw new UsageError(`--${flag}: "${image}" is not an image reference`);
  }
  return o;
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function report(docs: DocumentReport[]): string {
  const lines: string[] = [];
  for (const d of docs) {
    for (const p of d.pods) {
      const what = `${d.kind ?? '?'} ${d.name ?? '(unnamed)'}${d.kind === 'List' ? ` ${p.at}` : ''}`;
      if (p.result.injected) {
        const plan = p.result.plan;
        lines.push(`injected ${what}: server ${plan.server}, MCP on :${plan.mcpPort}${plan.mcpPath} -> :${plan.upstreamPort}, authz ${plan.authz.mode}`);
      } else {
        lines.push(`skipped  ${what}: ${p.result.reason}`);
      }
    }
  }
  if (lines.length === 0) lines.push('no Pod or workload template found; output equals input');
  return lines.map((l) => `tollgate inject: ${l}\n`).join('');
}

async function runOffline(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    filename: { type: 'string', short: 'f' },
    output: { type: 'string', short: 'o' },
    namespace: { type: 'string' },
    ...injectionOptions,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.filename) throw new UsageError('-f FILE (or -f - for standard input) is required');
  const opts = toInjectOptions(values);
  if (values.namespace !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace)) throw new UsageError(`--namespace: "${values.namespace}" is not a valid namespace name`);
    opts.namespace = values.namespace;
  }
  let text: string;
  try {
    text = await readInput(values.filename);
  } catch (e) {
    throw new Error(`cannot read ${values.filename}: ${(e as Error).message}`, { cause: e });
  }
  const result = injectYaml(text, opts);
  if (values.output) await writeFile(values.output, result.output);
  else process.stdout.write(result.output);
  process.stderr.write(report(result.documents));
  return 0;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** The webhook runner's flags as WebhookOptions; `help` when --help was asked for. Throws UsageError. */
export function parseWebhookArgs(argv: string[]): WebhookOptions | 'help' {
  const { values } = parseCommandArgs(argv, {
    cert: { type: 'string' },
    key: { type: 'string' },
    listen: { type: 'string' },
    'failure-policy': { type: 'string' },
    'reload-interval': { type: 'string' },
    ...injectionOptions,
  });
  if (values.help) return 'help';
  if (!values.cert || !values.key) throw new UsageError('webhook needs --cert FILE and --key FILE');
  let listen: { host: string; port: number };
  try {
    listen = parseHostPort(values.listen ?? ':8443', '0.0.0.0');
  } catch (e) {
    throw new UsageError(`--listen: ${(e as Error).message}`);
  }
  const policy = values['failure-policy'] ?? 'Fail';
  if (policy !== 'Fail' && policy !== 'Ignore') throw new UsageError(`--failure-policy must be Fail or Ignore, not "${policy}"`);
  return {
    certFile: values.cert,
    keyFile: values.key,
    host: listen.host,
    port: listen.port,
    inject: toInjectOptions(values),
    failurePolicy: policy as FailurePolicy,
    reloadIntervalMs: values['reload-interval'] === undefined ? 30_000 : parseDuration(values['reload-interval']) * 1000,
  };
}

async function runWebhook(argv: string[]): Promise<number> {
  const opts = parseWebhookArgs(argv);
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const server = await WebhookServer.start(opts);
  process.stderr.write(`tollgate inject webhook: listening on ${server.url} (POST /mutate, GET /healthz), failure policy ${opts.failurePolicy}\n`);
  const signal = await waitForSignal();
  process.stderr.write(`tollgate inject webhook: ${signal}, shutting down\n`);
  await server.close();
  return 0;
}

export const injectCommand: Command = {
  name: 'inject',
  summary: 'Add the Envoy (and authz) sidecars to Kubernetes YAML, offline, or run the admission webhook',
  async run(argv: string[]): Promise<number> {
    if (argv[0] === 'webhook') return runWebhook(argv.slice(1));
    return runOffline(argv);
  },
};
