import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubeTool } from './kube-cluster.js';

/** Rendering the shipped manifests with the real kustomize and helm (from .tools), for tests. */

export type RenderedObject = Record<string, unknown> & {
  kind: string; apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>; data?: Record<string, string>;
};

export const CHART = resolve('manifests', 'helm', 'tollgate');

export function runTool(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(bin, args, { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function yamlDocs(text: string): RenderedObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as RenderedObject).filter((o) => o && o.kind);
}

export async function kustomizeBuild(dir: string): Promise<RenderedObject[]> {
  const r = await runTool(kubeTool('kustomize'), ['build', dir]);
  if (r.code !== 0) throw new Error(`kustomize build ${dir}: ${r.stderr}`);
  return yamlDocs(r.stdout);
}

/** `helm template tollgate CHART` into tollgate-system for Kubernetes 1.34, plus `extra` flags; fails the test on an error. */
export async function helmTemplate(...extra: string[]): Promise<RenderedObject[]> {
  const r = await runTool(kubeTool('helm'), ['template', 'tollgate', CHART, '--namespace', 'tollgate-system', '--include-crds', '--kube-version', '1.34.0', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return yamlDocs(r.stdout);
}

export function findObject(objs: RenderedObject[], kind: string, name: string): RenderedObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
}

/** Labels the two tools add on their own (kustomize's instance label, Helm's chart labels). */
export function withoutToolLabels(o: RenderedObject): RenderedObject {
  const c = structuredClone(o);
  for (const k of ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance']) delete c.metadata.labels?.[k];
  return c;
}

export const objectId = (o: RenderedObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
