import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { readBundle, type BundleFiles } from '../bundle/archive.js';
import { buildPolicyBundle, formatProblem, PolicyBuildError, ENVOY_ENTRYPOINT } from '../policy/build.js';
import type { SigningKey } from '../bundle/keys.js';
import { contentDigest } from '../bundle/manifest.js';
import type { BundlePointer } from '../bundle/pointer.js';
import { BundlePublisher, type PublisherOptions } from './publisher.js';

/**
 * Policies that arrive as text (an MCPPolicy's spec.rego) rather than as a directory: built with
 * the same `opa build -t wasm` and checks as `tollgate controlplane`, signed, and published under
 * their own pointer key. A build that fails publishes nothing, so the revision in force keeps
 * serving, and the error names the module by the name the author gave it (`authz.rego:7:3: ...`).
 */

export interface InlineModule { name: string; content: string }

export interface InlinePolicy {
  modules: InlineModule[];
  /** data.json content (a JSON object), if any. */
  data?: string;
  entrypoint?: 'tollgate' | 'envoy';
}

export class InlinePolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InlinePolicyError';
  }
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.rego$/;

/** Builds the modules into bundle files; throws InlinePolicyError with file:line problems. */
export async function buildInlinePolicy(p: InlinePolicy): Promise<BundleFiles> {
  for (const m of p.modules) {
    // The CRD's pattern says the same; checked again because this writes files.
    if (!SAFE_NAME.test(m.name) || basename(m.name) !== m.name) throw new InlinePolicyError(`module name "${m.name}" must be a plain file name ending in .rego`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-inline-'));
  try {
    for (const m of p.modules) await writeFile(join(dir, m.name), m.content);
    if (p.data !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(p.data);
      } catch (e) {
        throw new InlinePolicyError(`data: not JSON: ${(e as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InlinePolicyError('data: must be a JSON object');
      await writeFile(join(dir, 'data.json'), p.data);
    }
    const opts = p.entrypoint === 'envoy' ? { entrypoints: [ENVOY_ENTRYPOINT] } : {};
    try {
      return await readBundle(await buildPolicyBundle(dir, opts));
    } catch (e) {
      if (!(e instanceof PolicyBuildError)) throw e;
      const problems = e.problems.map((x) => formatProblem({ ...x, file: x.file ? x.file.replace(dir + '/', '') : null }));
      throw new InlinePolicyError(problems.length ? problems.join('\n') : e.message.split(dir + '/').join(''));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Publishes built bundles, one publisher (pointer key) per policy, over one NATS connection. */
export class InlinePolicyPublisher {
  private readonly publishers = new Map<string, Promise<BundlePublisher>>();

  constructor(private readonly nc: NatsConnection, private readonly key: SigningKey, private readonly opts: Omit<PublisherOptions, 'pointerKey'> = {}) {}

  private publisher(pointerKey: string): Promise<BundlePublisher> {
    let p = this.publishers.get(pointerKey);
    if (!p) {
      p = BundlePublisher.open(this.nc, { ...this.opts, pointerKey });
      p.catch(() => this.publishers.delete(pointerKey));
      this.publishers.set(pointerKey, p);
    }
    return p;
  }

  /** Publishes unless the same content (signed with the same key) is already in force. */
  async publish(pointerKey: string, files: BundleFiles): Promise<{ pointer: BundlePointer; changed: boolean }> {
    const pub = await this.publisher(pointerKey);
    const cur = await pub.current();
    if (cur && cur.content_sha256 === contentDigest(files) && cur.kid === this.key.kid) return { pointer: cur, changed: false };
    return { pointer: await pub.publish(files, this.key), changed: true };
  }

  async current(pointerKey: string): Promise<BundlePointer | null> {
    return (await this.publisher(pointerKey)).current();
  }
}
