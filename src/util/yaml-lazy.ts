import { createRequire } from 'node:module';

/**
 * YAML.parse, with the library loaded at the first call. authz runs in every pod and most read no
 * YAML at all (flags, JSON data), so the parser's ~80 modules are paid only by those that do. A
 * synchronous require keeps callers synchronous.
 */
type YamlModule = typeof import('yaml');
let yaml: YamlModule | null = null;

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yaml.parse(text);
}
