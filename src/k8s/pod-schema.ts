import { z } from 'zod';

/**
 * The shapes the injector reads, checked before it reads them. Objects come from YAML files
 * (`tollgate inject -f`), where nothing has checked them yet, and from the API server, which
 * decodes types but validates values (port ranges, required names) only after mutating admission.
 * Every object stays open: only the fields the injector uses are checked, the rest travel through.
 */

/** A field's position: `spec.containers[1].ports[0]`, `metadata.annotations["tollgate.dev/inject"]`. */
export type FieldPath = readonly (string | number)[];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(k))) out += `${out ? '.' : ''}${String(k)}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** A value as a message shows what was given: `"8080"`, `-1`, `null`, `a list`, `an object`. */
export function shown(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const expected = (what: string) => ({
  error: (iss: { input?: unknown }) => (iss.input === undefined ? `missing (expected ${what})` : `expected ${what}, got ${shown(iss.input)}`),
});

const PORT = expected('a port number, an integer from 1 to 65535');
const port = z.number(PORT).int(PORT).min(1, PORT).max(65535, PORT);
const str = z.string(expected('a string'));
const name = z.string(expected('a non-empty string')).min(1, expected('a non-empty string'));
/** Label and annotation values: Kubernetes stores strings only (the API server refuses others). */
const stringMap = z.record(z.string(), str, expected('an object of strings'));

export const objectMetaSchema = z.looseObject({
  name: str.nullish(),
  generateName: str.nullish(),
  namespace: str.nullish(),
  labels: stringMap.nullish(),
  annotations: stringMap.nullish(),
}, expected('an object'));

const containerPortSchema = z.looseObject({
  containerPort: port,
  name: str.nullish(),
  protocol: str.nullish(),
}, expected('an object'));

const containerSchema = z.looseObject({
  name,
  ports: z.array(containerPortSchema, expected('a list')).nullish(),
}, expected('an object'));

const volumeSchema = z.looseObject({ name }, expected('an object'));

/** `containers` may be missing or empty here: the injector says "has no containers" itself. */
export const podSpecSchema = z.looseObject({
  containers: z.array(containerSchema, expected('a list')).nullish(),
  initContainers: z.array(containerSchema, expected('a list')).nullish(),
  volumes: z.array(volumeSchema, expected('a list')).nullish(),
  hostNetwork: z.boolean(expected('true or false')).nullish(),
}, expected('an object'));

/** What is wrong with one field, and where. */
export interface FieldProblem {
  path: FieldPath;
  problem: string;
}

export function describeProblem(p: FieldProblem): string {
  return p.path.length ? `${formatPath(p.path)}: ${p.problem}` : p.problem;
}

/** The first problem zod found, with a hint for the common one: an unquoted label or annotation value. */
function firstProblem(schema: z.ZodType, value: unknown, at: FieldPath): FieldProblem | undefined {
  const r = schema.safeParse(value);
  if (r.success) return undefined;
  const issue = r.error.issues[0];
  if (!issue) return { path: at, problem: 'invalid' };
  const path = [...at, ...issue.path.map((k) => (typeof k === 'number' ? k : String(k)))];
  let problem = issue.message;
  const [kind, key] = path.slice(-2);
  if ((kind === 'annotations' || kind === 'labels') && typeof key === 'string' && issue.code === 'invalid_type') {
    // YAML reads unquoted false, 10001 or an empty value as a boolean, a number or null.
    const given = issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)[k], value);
    if (given === null || typeof given === 'boolean' || typeof given === 'number') {
      const quoted = JSON.stringify(given === null ? '' : String(given));
      problem += `: Kubernetes ${kind === 'labels' ? 'label' : 'annotation'} values are strings, so quote it in the YAML (${key}: ${quoted})`;
    }
  }
  return { path, problem };
}

/** Problems in `metadata` (what the opt-out and the other annotations are read from). */
export function metadataProblem(obj: unknown, at: FieldPath = []): FieldProblem | undefined {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { path: at, problem: `expected an object, got ${shown(obj)}` };
  return firstProblem(objectMetaSchema.nullish(), (obj as { metadata?: unknown }).metadata, [...at, 'metadata']);
}

/** Problems in the pod's `spec`: containers, their ports, init containers, volumes, hostNetwork. */
export function podSpecProblem(pod: unknown, at: FieldPath = []): FieldProblem | undefined {
  if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) return { path: at, problem: `expected an object, got ${shown(pod)}` };
  return firstProblem(podSpecSchema.nullish(), (pod as { spec?: unknown }).spec, [...at, 'spec']);
}

/** A field of a manifest has the wrong type or value; the message is `<path>: <problem>`. */
export class FieldError extends Error {
  constructor(readonly field: FieldProblem) {
    super(describeProblem(field));
    this.name = 'FieldError';
  }
}
