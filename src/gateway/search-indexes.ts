import { createHash } from 'node:crypto';
import type { ToolEntry } from '../discovery/catalog.js';
import type { Embedder } from '../discovery/embedder.js';
import { EmbeddingCache, ToolSearch, type SearchMode } from '../discovery/search.js';

/**
 * Search indexes shared by the gateway's sessions: callers who see the same tools (same team,
 * same policy) share one index; a changed list builds a new one, re-embedding only new texts.
 */
export class SearchIndexes {
  private readonly indexes = new Map<string, Promise<ToolSearch>>();
  private readonly cache = new EmbeddingCache();

  constructor(private readonly mode: SearchMode, private readonly embedder: () => Promise<Embedder | null>, private readonly max = 32) {}

  indexFor(tools: ToolEntry[]): Promise<ToolSearch> {
    const h = createHash('sha256');
    for (const t of [...tools].sort((a, b) => (a.server + a.name < b.server + b.name ? -1 : 1))) h.update(JSON.stringify(t)).update('\n');
    const key = h.digest('base64');
    let p = this.indexes.get(key);
    if (!p) {
      if (this.indexes.size >= this.max) {
        const oldest = this.indexes.keys().next().value!;
        const evicted = this.indexes.get(oldest)!;
        this.indexes.delete(oldest);
        // The evicted index's vectors live in the embedding worker: release them once searches
        // already running on it are done (a failed build has nothing to release).
        evicted.then((i) => i.close()).catch(() => undefined);
      }
      p = this.embedder().then((e) => ToolSearch.build(tools, e ? this.mode : 'bm25', e, this.cache));
      p.catch(() => this.indexes.delete(key));
      this.indexes.set(key, p);
    }
    return p;
  }
}
