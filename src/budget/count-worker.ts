import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Token counting on a worker thread, for counts nobody waits on (response accounting in ext_proc).
 *
 * Loading a BPE encoding is synchronous and heavy (o200k_base: ~0.2-0.8 s of CPU, ~70 MB), and
 * authz loads it only when first needed, to keep an idle sidecar small. Done on the main thread,
 * that first load stalls every Check in flight past Envoy's deadline (seen as 504s on the first
 * calls of a fresh sidecar under load). Here it stalls only the worker.
 *
 * The worker is plain JavaScript given as source, so it runs the same from TypeScript (tsx) and
 * from dist/; encodings are required by absolute path, resolved here. It is started on first use,
 * restarted after a crash, and does not keep the process alive.
 */

// process.getBuiltinModule, not require: a loader such as tsx may run eval'd code as an ES module.
const SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
const require = process.getBuiltinModule('node:module').createRequire(workerData.paths[Object.keys(workerData.paths)[0]]);
const loaded = new Map();
// Text from tools is data: special-token strings are counted as ordinary characters.
const PLAIN = { disallowedSpecial: new Set() };
parentPort.on('message', (m) => {
  try {
    const counts = {};
    for (const name of m.names) {
      let enc = loaded.get(name);
      if (!enc) { enc = require(workerData.paths[name]); loaded.set(name, enc); }
      counts[name] = enc.countTokens(m.text, PLAIN);
    }
    parentPort.postMessage({ id: m.id, counts });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Reply { id: number; counts?: Record<string, number>; error?: string }
interface Waiting { resolve: (c: Record<string, number>) => void; reject: (e: Error) => void }

export class TokenCountWorker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private readonly paths: Record<string, string>;

  /** `names`: the encodings this worker may load (gpt-tokenizer's `encoding/<name>` modules). */
  constructor(names: readonly string[]) {
    const require = createRequire(import.meta.url);
    this.paths = Object.fromEntries(names.map((n) => [n, require.resolve(`gpt-tokenizer/encoding/${n}`)]));
  }

  /** Exact counts of `text` in each encoding named. */
  count(text: string, names: readonly string[]): Promise<Record<string, number>> {
    for (const n of names) if (!(n in this.paths)) return Promise.reject(new Error(`unknown encoding ${n}`));
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Held while a count is awaited (a process with nothing else to do still gets its answer).
      if (this.waiting.size === 0) worker.ref();
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, text, names });
    });
  }

  /** Stops the thread; counts still waiting fail. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
    this.failAll(new Error('token counter closed'));
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(SOURCE, { eval: true, workerData: { paths: this.paths } });
    w.on('message', (r: Reply) => {
      const waiting = this.waiting.get(r.id);
      if (!waiting) return;
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) w.unref();
      if (r.counts) waiting.resolve(r.counts);
      else waiting.reject(new Error(`token counter: ${r.error ?? 'no result'}`));
    });
    const lost = (why: string): void => {
      if (this.worker === w) this.worker = null;
      this.failAll(new Error(`token counter ${why}`));
    };
    w.on('error', (e: Error) => lost(`failed: ${e.message}`));
    w.on('exit', (code) => lost(`exited (code ${code})`));
    // An idle counter never keeps the process alive. After the listeners: adding a 'message'
    // listener refs the worker's port again, which kept every process that counted running.
    w.unref();
    this.worker = w;
    return w;
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
