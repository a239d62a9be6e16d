import { isAlias, isMap, isSeq, parseAllDocuments, type Document } from 'yaml';
import { jsonEqual, parsePointer, type PatchOp } from './jsonpatch.js';
import type { InjectOptions } from './mutate.js';
import { isRecord, type KubeObject } from './types.js';
import { injectObject, type ObjectInjection } from './workloads.js';

export interface DocumentReport {
  /** 0-based position in the stream. */
  index: number;
  kind?: string;
  name?: string;
  pods: ObjectInjection[];
}

export interface YamlInjection {
  output: string;
  documents: DocumentReport[];
}

const STRINGIFY = { lineWidth: 0 } as const;

/**
 * Applies `add` operations to the YAML syntax tree itself, so comments and key order in the
 * touched document survive. Returns false when the tree has a shape this cannot follow (aliases,
 * other ops); the caller then rebuilds the document from data.
 */
function patchYamlTree(doc: Document, ops: readonly PatchOp[]): boolean {
  for (const op of ops) {
    if (op.op !== 'add') return false;
    const tokens = parsePointer(op.path);
    const key = tokens.pop();
    if (key === undefined) return false;
    let node: unknown = doc.contents;
    for (const t of tokens) {
      if (isSeq(node)) node = node.items[Number(t)];
      else if (isMap(node)) node = node.get(t, true);
      else return false;
    }
    if (isAlias(node)) return false;
    const value = doc.createNode(op.value, { aliasDuplicateObjects: false });
    if (isSeq(node)) {
      if (key === '-') node.items.push(value);
      else node.items.splice(Number(key), 0, value);
    } else if (isMap(node)) {
      node.set(key, value);
    } else {
      return false;
    }
  }
  return true;
}

function describe(obj: KubeObject): string {
  return `${obj.kind ?? '(no kind)'} ${obj.metadata?.namespace ? obj.metadata.namespace + '/' : ''}${obj.metadata?.name ?? '(no name)'}`;
}

/**
 * Injects every Pod and workload template in a multi-document YAML stream. Documents with nothing
 * to inject are copied byte for byte; injected ones are re-rendered with their comments kept.
 * Throws on invalid YAML or on a pod that cannot be governed, naming the document.
 */
export function injectYaml(text: string, opts: InjectOptions = {}): YamlInjection {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error('input is not a YAML stream');
  const documents: DocumentReport[] = [];
  const pieces: string[] = [];
  docs.forEach((doc, i) => {
    const next = docs[i + 1];
    const start = i === 0 ? 0 : doc.range[0];
    const end = next ? next.range[0] : text.length;
    const original = text.slice(start, end);
    if (doc.errors.length > 0) throw new Error(`document ${i + 1}: invalid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    const data: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (!isRecord(data)) {
      pieces.push(original);
      return;
    }
    const obj = data as KubeObject;
    let res;
    try {
      res = injectObject(obj, opts);
    } catch (e) {
      throw new Error(`document ${i + 1} (${describe(obj)}): ${(e as Error).message}`, { cause: e });
    }
    documents.push({ index: i, kind: obj.kind, name: obj.metadata?.name, pods: res.pods });
    if (res.patch.length === 0) {
      pieces.push(original);
      return;
    }
    const viaTree: Document = doc.clone();
    if (!(patchYamlTree(viaTree, res.patch) && jsonEqual(viaTree.toJS(), res.object))) {
      viaTree.contents = viaTree.createNode(res.object, { aliasDuplicateObjects: false });
    }
    let rendered = viaTree.toString(STRINGIFY);
    if (i > 0 && !rendered.startsWith('---')) rendered = '---\n' + rendered;
    if (i > 0 && pieces.length > 0 && !(pieces[pieces.length - 1] as string).endsWith('\n')) pieces.push('\n');
    pieces.push(rendered);
  });
  return { output: pieces.join(''), documents };
}
